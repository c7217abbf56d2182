//! Which address a request really comes from.

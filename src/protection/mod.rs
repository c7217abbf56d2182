//! What protects the public operations before they run: rate limits, the
//! lock after failed logins, and the browser origins allowed to call.

pub mod origins;
pub mod rate_limit;
pub mod site_server;

//! The row cost of a document: how many rows it may ask for, counted
//! from the served schema's shapes and refused over a limit before it runs.
//!
//! A list or a page costs its size times (1 + what each item selects); any
//! other field costs 1 plus what it selects, so aliases add up and nesting
//! multiplies. Sizes come from a field's `first`/`last` argument (or its
//! default), and for lists without one from [`shapes::UNPAGED_LIST_SIZES`].
//! The count is a bound: fields under `@skip`/`@include` count as included.

mod count;
mod limit;
mod shapes;

pub use limit::too_costly;
pub use shapes::{CostModel, UNPAGED_LIST_SIZES};

#[cfg(test)]
mod tests;

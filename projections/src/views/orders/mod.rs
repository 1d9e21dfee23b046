//! `orders`: every order, its state, its price and its chain transactions.
//!
//! [`project`] builds it from the log; [`query`] answers from it (the API and the CLI call
//! these, and hold no SQL of their own against its tables).

mod project;
pub mod query;

pub use project::*;

//! `account_balances`: each account's balance per asset, and what moved it.
//!
//! [`project`] builds it from the log; [`query`] answers from it (the API and the CLI call
//! these, and hold no SQL of their own against its tables).

mod project;
pub mod query;

pub use project::*;

//! The projections' integration tests, one module per subject, in one test binary (a binary
//! links the whole crate and its dependencies; one per crate keeps the cold test build short).
//! Each test makes its own database, so the modules share nothing but the process.

mod audit;
mod canonical;
mod rebuild;
mod runtime;
mod views;

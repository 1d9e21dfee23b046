//! The API's integration tests, one module per subject, in one test binary (a binary links the
//! whole stack; one per crate keeps the cold test build short). `support` is their harness: an
//! API server on a free port over a fresh database and the chain simulator. Tests of the CLI run
//! the real `trx-energy` binary as a child process.

mod support;

mod admin_api;
mod audit_anchor;
mod cli;
mod connections;
mod http_api;
mod keys_cli;
mod order_idempotency;
mod projections_cli;
mod run_binary;
mod simulate_cli;
mod token_revocation;
mod tron_cli;

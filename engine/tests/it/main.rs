//! The engine's integration tests, one module per subject, in one test binary (a binary links
//! the whole crate and its dependencies; one per crate keeps the cold test build short). Each
//! test makes its own database (`TestDb`), so the modules share nothing but the process.

mod bad_input;
mod bus_properties;
mod command_bus;
mod command_fingerprint;
mod global_log;
mod migrations;
mod new_aggregates;
mod process_flow;
mod runner_wake;

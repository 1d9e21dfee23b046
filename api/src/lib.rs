//! `api`: the HTTP API and the pieces the `trx-energy` binary composes: settings, database
//! start-up, telemetry.

pub mod cli;
pub mod database;
pub mod http;
pub mod settings;
pub mod status;
pub mod telemetry;

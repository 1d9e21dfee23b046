//! `api`: the HTTP API and the `trx-energy` binary's pieces: the composition root (`app`), the
//! command line (`cli`), the settings, telemetry.

pub mod app;
pub mod cli;
pub mod http;
pub mod secret;
pub mod settings;
pub mod status;
pub mod store;
pub mod telemetry;

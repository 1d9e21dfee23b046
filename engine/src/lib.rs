//! `engine`: the domain of the energy-rental business (aggregates, commands, events, pricing)
//! and the event-store wiring around it (command bus over the postgres-es table, snapshots,
//! the never-skipping global-log reader). The `domain` module does no IO.

pub mod domain;
pub mod error;
pub mod log;
pub mod process;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::Error;

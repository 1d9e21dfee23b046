//! The event store: postgres-es's `events` table with our global-order columns, the command bus
//! that appends to it (idempotent, conflict-retrying, snapshotting), and the private cluster.

mod batcher;
pub mod bus;
pub mod cluster;
pub mod event_store;
mod group_append;
pub mod metadata;
pub mod migrate;
pub mod upcast;

pub use bus::{BusConfig, BusStats, CommandBus, Committed, Outcome};
pub use metadata::{derived_command_id, Actor, CommandMetadata};
pub use migrate::{migrate, MIGRATOR};

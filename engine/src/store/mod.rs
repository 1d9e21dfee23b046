//! The event store: postgres-es's `events` table with our global-order columns, the command bus
//! that appends to it (idempotent, conflict-retrying, snapshotting), and the private cluster.

pub mod cluster;
pub mod migrate;

pub use migrate::{migrate, MIGRATOR};

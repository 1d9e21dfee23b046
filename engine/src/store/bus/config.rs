//! The bus's tuning: retries, snapshot spacing, batch and group sizes, and how many aggregates
//! it keeps in memory.

/// Tuning of the bus.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// How many times a batch is decided and appended before giving up on a conflict.
    pub max_attempts: u32,
    /// At least this many events between snapshots.
    pub snapshot_every: u64,
    /// A state of S bytes is snapshotted every S / this many events, if that is more than
    /// `snapshot_every`: the bytes of snapshot written per event stay below this.
    pub snapshot_bytes_per_event: u64,
    /// At most this many queued commands are decided in one statement.
    pub max_batch: usize,
    /// At most this many append statements of this bus are in flight at once; appends queued
    /// meanwhile (of other aggregates) are written together in the next one (group commit).
    pub max_appends: usize,
    /// At most this many aggregates' appends are written in one statement.
    pub max_group: usize,
    /// Aggregates kept in memory; idle ones beyond this are dropped (and reloaded when needed).
    pub max_cached: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            snapshot_every: 100,
            snapshot_bytes_per_event: 2_048,
            max_batch: 500,
            max_appends: 4,
            max_group: 256,
            max_cached: 10_000,
        }
    }
}

//! What a bus counts, for tests and operators: cold loads, stale appends, state copies and
//! append statements.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one bus, for tests and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Aggregates loaded from the store (snapshot plus the events after it).
    pub cold_loads: u64,
    /// Appends that found the stream moved on by another process (the held state was then
    /// caught up and the batch decided again).
    pub stale_appends: u64,
    /// Copies made of a held state to decide a batch of several commands on (once per
    /// aggregate, and again after an append that failed or a catch-up).
    pub state_copies: u64,
    /// Statements that appended for this bus; fewer than the batches appended when concurrent
    /// commands on different aggregates were written together (group commit).
    pub append_statements: u64,
}

/// The running counts behind [`BusStats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    cold_loads: AtomicU64,
    stale_appends: AtomicU64,
    state_copies: AtomicU64,
}

impl Counters {
    pub fn cold_load(&self) {
        self.cold_loads.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stale_append(&self) {
        self.stale_appends.fetch_add(1, Ordering::Relaxed);
    }

    pub fn state_copy(&self) {
        self.state_copies.fetch_add(1, Ordering::Relaxed);
    }

    pub fn read(&self, append_statements: u64) -> BusStats {
        BusStats {
            cold_loads: self.cold_loads.load(Ordering::Relaxed),
            stale_appends: self.stale_appends.load(Ordering::Relaxed),
            state_copies: self.state_copies.load(Ordering::Relaxed),
            append_statements,
        }
    }
}

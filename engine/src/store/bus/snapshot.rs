//! Snapshots, off the command path. After a batch is committed, a copy of the state is
//! serialised and stored by a background task once
//! `max(snapshot_every, snapshot bytes / snapshot_bytes_per_event)` events have passed since the
//! last one, so a large state is snapshotted less often and the cost per command stays bounded.
//! A snapshot is only a cache of the committed events up to its version.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::PgPool;

use super::config::BusConfig;
use crate::domain::DomainAggregate;
use crate::error::Error;
use crate::store::event_store::{self, Loaded};

/// The snapshots of one aggregate in this process: whether one is being written, and the size
/// of the last one written.
#[derive(Debug, Default)]
pub(super) struct Snapshots {
    writing: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
}

impl Snapshots {
    /// Starts a background snapshot of the committed state `loaded` if enough events have passed
    /// since the last one and none is being written.
    pub fn maybe_take<A: DomainAggregate>(
        &self,
        pool: &PgPool,
        config: &BusConfig,
        aggregate_id: &str,
        loaded: &mut Loaded<A>,
    ) {
        let bytes = self
            .bytes
            .load(Ordering::Acquire)
            .max(loaded.snapshot_bytes);
        let interval = config
            .snapshot_every
            .max(bytes / config.snapshot_bytes_per_event.max(1))
            .max(1);
        if loaded.version < loaded.snapshot_version + interval
            || self.writing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        loaded.snapshot_version = loaded.version;
        let state = loaded.aggregate.clone();
        let version = loaded.version;
        let pool = pool.clone();
        let id = aggregate_id.to_string();
        let writing = self.writing.clone();
        let size = self.bytes.clone();
        tokio::spawn(async move {
            let result = match serde_json::to_string(&state) {
                Ok(json) => {
                    size.store(json.len() as u64, Ordering::Release);
                    event_store::write_snapshot(
                        &pool,
                        A::TYPE,
                        &id,
                        version,
                        A::STATE_SCHEMA,
                        &json,
                    )
                    .await
                }
                Err(e) => Err(Error::corrupt("snapshot", e)),
            };
            if let Err(e) = result {
                tracing::warn!(aggregate_type = A::TYPE, aggregate_id = %id, version, error = %e,
                    "snapshot not written; a later one will be");
            }
            writing.store(false, Ordering::Release);
        });
    }
}

//! The command bus: runs commands against aggregates stored in the postgres-es `events` table.
//!
//! - **One writer per aggregate in this process** ([`writer`]). Commands for the same aggregate
//!   queue up; the first caller to take the aggregate's lock decides every queued command in
//!   order on the in-memory state and appends all their events and command-log rows in one
//!   statement. Concurrent callers on one aggregate never conflict with each other, and a busy
//!   aggregate is written in batches. The batch runs in the caller's own future; if that caller
//!   goes away mid-batch, the commands it carried for others are queued again, not abandoned.
//! - **A pure plan per batch** ([`plan`]): decisions on the committed state (and its twin, for
//!   the later commands of a batch), the rows to append, and how the held state moves on once
//!   they are written. The held state is only ever the committed one.
//! - **Across processes**, the append is conditional on the stream still being at the version
//!   the decisions were made on; if another process moved it, the held state is brought up to
//!   date with the events appended since (`event_store::catch_up`, not a reload) and the batch
//!   decided again, a bounded number of times with jittered back-off.
//! - **Idempotent commands** ([`outcome`]). Every command id is written to `command_log` with its
//!   outcome in the same statement as its events. A repeated id (sequential or racing, in this
//!   process or another) gets the first outcome back and changes nothing.
//! - **Bounded loads** ([`snapshot`]). The state stays in memory between commands; after a
//!   restart it is read from our snapshot plus the events after it, and snapshots are taken off
//!   the command path.
//! - **Group commit**: appends of different aggregates ready at the same moment share one
//!   statement (`store::group_append`).

mod config;
mod outcome;
mod plan;
mod snapshot;
mod stats;
mod writer;

use std::sync::Arc;

use sqlx::PgPool;
use tracing::Instrument;

pub use config::BusConfig;
pub use outcome::{Committed, Outcome};
pub use stats::BusStats;

use crate::domain::{DomainAggregate, DomainCommand};
use crate::error::Error;
use crate::store::metadata::CommandMetadata;
use plan::Request;
use writer::{Freshness, Writers};

/// Runs commands for one aggregate type.
pub struct CommandBus<A: DomainAggregate> {
    writers: Writers<A>,
}

impl<A> CommandBus<A>
where
    A: DomainAggregate,
    A::Error: serde::de::DeserializeOwned + Send,
    A::Event: Send,
{
    pub fn new(pool: PgPool, services: A::Services) -> Self {
        Self::with_config(pool, services, BusConfig::default())
    }

    pub fn with_config(pool: PgPool, services: A::Services, config: BusConfig) -> Self {
        Self {
            writers: Writers::new(pool, services, config),
        }
    }

    /// Signals `appended` after every append of this bus, so readers of the log in this process
    /// can look at once instead of at their next poll.
    pub fn with_append_signal(mut self, appended: Arc<tokio::sync::Notify>) -> Self {
        self.writers.signal_appends_to(appended);
        self
    }

    /// Runs one command. `Ok` carries the domain's decision (accepted or rejected); `Err` is
    /// a failure to reach a decision (database down, conflicts beyond the bound, a reused id).
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        meta: CommandMetadata,
    ) -> Result<Outcome<A>, Error> {
        let span = tracing::info_span!(
            "command",
            aggregate_type = A::TYPE,
            aggregate_id,
            command_type = command.command_type(),
            command_id = %meta.command_id,
            correlation_id = %meta.correlation_id,
            actor = %meta.actor.subject,
        );
        async move {
            if let Some(named) = command.names_aggregate() {
                if named != aggregate_id {
                    return Err(Error::WrongAggregate {
                        command_type: command.command_type(),
                        named,
                        aggregate_type: A::TYPE,
                        aggregate_id: aggregate_id.to_string(),
                    });
                }
            }
            let result = self
                .writers
                .execute(aggregate_id, Request { command, meta })
                .await;
            match &result {
                Ok(o) if o.result.is_ok() => {
                    tracing::debug!(duplicate = o.duplicate, "command accepted")
                }
                Ok(o) => tracing::info!(duplicate = o.duplicate, "command rejected"),
                Err(e) => tracing::warn!(error = %e, "command failed"),
            }
            result
        }
        .instrument(span)
        .await
    }

    /// The current state of an aggregate and its version: the state held in memory, brought up
    /// to date with whatever other processes appended since (one indexed query), or loaded.
    /// Reads go through the same lock as writes, so they see every command that returned before.
    pub async fn load(&self, aggregate_id: &str) -> Result<(A, u64), Error> {
        self.writers
            .read(aggregate_id, Freshness::Current, |a, v| (a.clone(), v))
            .await
    }

    /// The state held in memory (loaded if absent), without asking the store for newer events:
    /// for choices where a slightly old view is harmless because the command that follows is
    /// decided on the current state anyway (e.g. ranking wallets by free capacity).
    pub async fn peek(&self, aggregate_id: &str) -> Result<(A, u64), Error> {
        self.writers
            .read(aggregate_id, Freshness::Held, |a, v| (a.clone(), v))
            .await
    }

    /// Like [`peek`](Self::peek), reading the state in place instead of cloning it (a wallet's
    /// state holds every active reservation).
    pub async fn peek_with<T>(
        &self,
        aggregate_id: &str,
        read: impl FnOnce(&A, u64) -> T,
    ) -> Result<T, Error> {
        self.writers.read(aggregate_id, Freshness::Held, read).await
    }

    /// The services the aggregate decides with now.
    pub fn services(&self) -> Arc<A::Services> {
        self.writers.services()
    }

    /// Changes the services the aggregate decides with (e.g. a new price table) in one step:
    /// `change` sees the current ones and returns the new ones, or `None` to keep them. Two
    /// updaters never lose each other's change.
    pub fn update_services(
        &self,
        change: impl FnOnce(&A::Services) -> Option<A::Services>,
    ) -> bool {
        self.writers.update_services(change)
    }

    pub fn pool(&self) -> &PgPool {
        self.writers.pool()
    }

    /// How often this bus loaded an aggregate cold, how often an append found its stream moved
    /// by another process, how many state copies it made and how many statements its appends
    /// took.
    pub fn stats(&self) -> BusStats {
        self.writers.stats()
    }
}

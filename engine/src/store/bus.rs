//! The command bus: runs commands against aggregates stored in the postgres-es `events` table.
//!
//! - **One writer per aggregate in this process.** Commands for the same aggregate queue up; the
//!   first caller to take the aggregate's lock decides every queued command in order on the
//!   in-memory state and appends all their events and command-log rows in one statement.
//!   Concurrent callers on one aggregate therefore never conflict with each other, and a busy
//!   aggregate is written in batches.
//! - **Across processes**, the append is conditional on the stream still being at the version
//!   the decisions were made on; if another process moved it, the state is reloaded and the
//!   batch decided again, a bounded number of times with jittered back-off.
//! - **Idempotent commands.** Every command id is written to `command_log` with its outcome in
//!   the same statement as its events. A repeated id (sequential or racing, in this process or
//!   another) gets the first outcome back and changes nothing.
//! - **Bounded loads.** The state stays in memory between commands; after a restart it is read
//!   from our snapshot plus the events after it. Snapshots are taken off the command path (a copy
//!   of the committed state, serialised and stored by a background task) every
//!   `max(snapshot_every, snapshot size / snapshot_bytes_per_event)` events, so a large state is
//!   snapshotted less often and the cost of snapshots per command stays bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, RwLock};
use std::time::Duration;

use cqrs_es::persist::EventUpcaster;
use cqrs_es::Aggregate;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::{oneshot, Mutex};
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::{DomainAggregate, DomainCommand};
use crate::error::Error;
use crate::log::LogPosition;
use crate::store::event_store::{self, AppendError, AppendResult, Loaded, LogRow, NewEvent};
use crate::store::metadata::CommandMetadata;
use crate::store::upcast::upcasters;

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
            max_cached: 10_000,
        }
    }
}

/// The outcome of one command.
#[derive(Debug, PartialEq)]
pub struct Outcome<A: Aggregate> {
    pub command_id: Uuid,
    /// True when this command id had been run before and this is its first outcome, replayed.
    pub duplicate: bool,
    pub result: Result<Committed<A::Event>, A::Error>,
}

impl<A: Aggregate> Clone for Outcome<A>
where
    A::Error: Clone,
{
    fn clone(&self) -> Self {
        Self {
            command_id: self.command_id,
            duplicate: self.duplicate,
            result: self.result.clone(),
        }
    }
}

impl<A: Aggregate> Outcome<A> {
    pub fn is_accepted(&self) -> bool {
        self.result.is_ok()
    }
}

/// What an accepted command wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed<E> {
    /// The aggregate's version after this command (its last event's sequence).
    pub version: u64,
    pub events: Vec<E>,
    /// The log position of each event, in order.
    pub positions: Vec<LogPosition>,
}

impl<E> Committed<E> {
    /// Where the command's last event sits in the global log (for read-your-writes).
    pub fn last_position(&self) -> Option<LogPosition> {
        self.positions.last().copied()
    }
}

/// The outcome as stored in `command_log.outcome`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredResult<E> {
    Accepted {
        first_sequence: u64,
        last_sequence: u64,
    },
    Rejected(E),
}

struct Pending<A: Aggregate> {
    command: A::Command,
    meta: CommandMetadata,
    reply: oneshot::Sender<Result<Outcome<A>, Error>>,
}

struct Writer<A: Aggregate> {
    queue: StdMutex<Vec<Pending<A>>>,
    state: Mutex<Option<Loaded<A>>>,
    /// A snapshot of this aggregate is being written by a background task.
    snapshotting: Arc<AtomicBool>,
    /// The size in bytes of the last snapshot written by this process.
    snapshot_bytes: Arc<AtomicU64>,
}

/// Runs commands for one aggregate type.
pub struct CommandBus<A: DomainAggregate> {
    pool: PgPool,
    services: RwLock<Arc<A::Services>>,
    writers: StdMutex<HashMap<String, Arc<Writer<A>>>>,
    upcasters: Vec<Box<dyn EventUpcaster>>,
    config: BusConfig,
    /// Signalled (to every task waiting right now) after each append.
    appended: Option<Arc<tokio::sync::Notify>>,
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
            pool,
            services: RwLock::new(Arc::new(services)),
            writers: StdMutex::new(HashMap::new()),
            upcasters: upcasters(),
            config,
            appended: None,
        }
    }

    /// Signals `appended` after every append of this bus, so readers of the log in this process
    /// can look at once instead of at their next poll.
    pub fn with_append_signal(mut self, appended: Arc<tokio::sync::Notify>) -> Self {
        self.appended = Some(appended);
        self
    }

    /// Changes the services the aggregate decides with (e.g. a new price table) in one step: `change` sees the current ones and returns the new
    /// ones, or `None` to keep them. Two updaters never lose each other's change.
    pub fn update_services(
        &self,
        change: impl FnOnce(&A::Services) -> Option<A::Services>,
    ) -> bool {
        let mut services = self.services.write().unwrap_or_else(|p| p.into_inner());
        match change(&services) {
            Some(new) => {
                *services = Arc::new(new);
                true
            }
            None => false,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
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
            let writer = self.writer(aggregate_id);
            let (tx, mut rx) = oneshot::channel();
            writer
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Pending {
                    command,
                    meta,
                    reply: tx,
                });
            loop {
                let mut state = writer.state.lock().await;
                if let Ok(result) = rx.try_recv() {
                    return log_outcome(result);
                }
                let batch: Vec<Pending<A>> = {
                    let mut q = writer.queue.lock().unwrap_or_else(|p| p.into_inner());
                    let n = q.len().min(self.config.max_batch);
                    q.drain(..n).collect()
                };
                if !batch.is_empty() {
                    self.run_batch(aggregate_id, &mut state, batch).await;
                    if let Some(loaded) = state.as_mut() {
                        self.maybe_snapshot(aggregate_id, loaded, &writer);
                    }
                }
                drop(state);
                if let Ok(result) = rx.try_recv() {
                    return log_outcome(result);
                }
            }
        }
        .instrument(span)
        .await
    }

    /// The current state of an aggregate and its version: the state held in memory, brought up
    /// to date with whatever other processes appended since (one indexed query), or loaded.
    /// Reads go through the same lock as writes, so they see every command that returned before.
    pub async fn load(&self, aggregate_id: &str) -> Result<(A, u64), Error> {
        let writer = self.writer(aggregate_id);
        let mut state = writer.state.lock().await;
        match state.as_mut() {
            None => {
                *state =
                    Some(event_store::load::<A>(&self.pool, aggregate_id, &self.upcasters).await?);
            }
            Some(loaded) => {
                if let Err(e) =
                    event_store::catch_up(&self.pool, aggregate_id, loaded, &self.upcasters).await
                {
                    *state = None;
                    return Err(e);
                }
            }
        }
        let loaded = state.as_ref().expect("state was just loaded");
        Ok((loaded.aggregate.clone(), loaded.version))
    }

    /// The state held in memory (loaded if absent), without asking the store for newer events:
    /// for choices where a slightly old view is harmless because the command that follows is
    /// decided on the current state anyway (e.g. ranking wallets by free capacity).
    pub async fn peek(&self, aggregate_id: &str) -> Result<(A, u64), Error> {
        let writer = self.writer(aggregate_id);
        let mut state = writer.state.lock().await;
        if state.is_none() {
            *state = Some(event_store::load::<A>(&self.pool, aggregate_id, &self.upcasters).await?);
        }
        let loaded = state.as_ref().expect("state was just loaded");
        Ok((loaded.aggregate.clone(), loaded.version))
    }

    /// Like [`peek`](Self::peek), reading the state in place instead of cloning it (a wallet's
    /// state holds every active reservation).
    pub async fn peek_with<T>(
        &self,
        aggregate_id: &str,
        read: impl FnOnce(&A, u64) -> T,
    ) -> Result<T, Error> {
        let writer = self.writer(aggregate_id);
        let mut state = writer.state.lock().await;
        if state.is_none() {
            *state = Some(event_store::load::<A>(&self.pool, aggregate_id, &self.upcasters).await?);
        }
        let loaded = state.as_ref().expect("state was just loaded");
        Ok(read(&loaded.aggregate, loaded.version))
    }

    fn writer(&self, aggregate_id: &str) -> Arc<Writer<A>> {
        let mut writers = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        if writers.len() >= self.config.max_cached && !writers.contains_key(aggregate_id) {
            writers.retain(|_, w| Arc::strong_count(w) > 1);
        }
        writers
            .entry(aggregate_id.to_string())
            .or_insert_with(|| {
                Arc::new(Writer {
                    queue: StdMutex::new(Vec::new()),
                    state: Mutex::new(None),
                    snapshotting: Arc::new(AtomicBool::new(false)),
                    snapshot_bytes: Arc::new(AtomicU64::new(0)),
                })
            })
            .clone()
    }

    /// The services the aggregate decides with now.
    pub fn services(&self) -> Arc<A::Services> {
        self.services
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Decides and appends a batch, replying to every command in it.
    async fn run_batch(
        &self,
        aggregate_id: &str,
        state: &mut Option<Loaded<A>>,
        mut batch: Vec<Pending<A>>,
    ) {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if state.is_none()
                && attempt == 1
                && batch.iter().all(|p| p.command.creates_aggregate())
            {
                // A new aggregate, most likely: decide on the empty state; a stream that exists
                // after all makes the append stale, and the next attempt loads it.
                *state = Some(Loaded::empty());
            }
            if state.is_none() {
                match event_store::load::<A>(&self.pool, aggregate_id, &self.upcasters).await {
                    Ok(loaded) => *state = Some(loaded),
                    Err(e) => return fail_all(batch, e),
                }
            }
            let loaded = state.as_mut().expect("state was just loaded");
            let plan = match self.decide(loaded, &batch) {
                Ok(plan) => plan,
                Err(e) => {
                    *state = None;
                    return fail_all(batch, e);
                }
            };
            let result = event_store::append(
                &self.pool,
                A::TYPE,
                aggregate_id,
                plan.base_version,
                &plan.events,
                &plan.log,
            )
            .await;
            match result {
                Ok(AppendResult::Written(positions)) => {
                    if let Some(appended) = &self.appended {
                        appended.notify_waiters();
                    }
                    return reply_all(batch, plan, &positions);
                }
                Ok(AppendResult::Stale) | Err(AppendError::Conflict) => {
                    // Another process appended: our state is behind. Reload and decide again.
                    *state = None;
                    tracing::debug!(attempt, "stream moved on; deciding the batch again");
                    if attempt >= self.config.max_attempts {
                        let attempts = attempt;
                        let id = aggregate_id.to_string();
                        return fail_all_with(batch, |_| Error::Conflict {
                            aggregate_type: A::TYPE,
                            aggregate_id: id.clone(),
                            attempts,
                        });
                    }
                    backoff(attempt).await;
                }
                Err(AppendError::DuplicateCommand) => {
                    // Some command ids of the batch were run before (possibly right now, by
                    // another process): answer those with their stored outcomes, retry the rest.
                    *state = None;
                    batch = match self.answer_duplicates(aggregate_id, batch).await {
                        Ok(rest) if rest.is_empty() => return,
                        Ok(rest) => rest,
                        Err((rest, e)) => return fail_all(rest, e),
                    };
                }
                Err(AppendError::Other(e)) => {
                    *state = None;
                    return fail_all(batch, e);
                }
            }
        }
    }

    /// Decides every command of the batch in order, applying accepted events to the cached
    /// state (which is dropped if the append then fails).
    fn decide(&self, loaded: &mut Loaded<A>, batch: &[Pending<A>]) -> Result<Plan<A>, Error> {
        let services = self.services();
        let base_version = loaded.version;
        let mut plan = Plan {
            base_version,
            events: Vec::new(),
            log: Vec::new(),
            decisions: Vec::with_capacity(batch.len()),
        };
        let mut first_of: HashMap<Uuid, usize> = HashMap::new();
        for (i, pending) in batch.iter().enumerate() {
            let id = pending.meta.command_id;
            if let Some(&first) = first_of.get(&id) {
                let same = batch[first]
                    .meta
                    .same_request(pending.meta.fingerprint.as_deref());
                plan.decisions.push(if same {
                    Decision::SameAs(first)
                } else {
                    Decision::Reused(first)
                });
                continue;
            }
            first_of.insert(id, i);
            let command_type = pending.command.command_type();
            match loaded.aggregate.decide(pending.command.clone(), &services) {
                Ok(events) => {
                    let first_sequence = loaded.version + 1;
                    let metadata = pending.meta.to_map();
                    let start = plan.events.len();
                    for event in &events {
                        loaded.version += 1;
                        plan.events
                            .push(NewEvent::new(loaded.version, event, &metadata)?);
                        loaded.aggregate.apply(event.clone());
                    }
                    let stored: StoredResult<A::Error> = StoredResult::Accepted {
                        first_sequence,
                        last_sequence: loaded.version,
                    };
                    plan.log.push(LogRow {
                        command_id: id,
                        command_type,
                        outcome: to_json(&stored)?,
                        fingerprint: pending.meta.fingerprint.clone(),
                    });
                    plan.decisions.push(Decision::Accepted {
                        version: loaded.version,
                        events,
                        range: start..plan.events.len(),
                    });
                }
                Err(error) => {
                    let stored: StoredResult<&A::Error> = StoredResult::Rejected(&error);
                    plan.log.push(LogRow {
                        command_id: id,
                        command_type,
                        outcome: to_json(&stored)?,
                        fingerprint: pending.meta.fingerprint.clone(),
                    });
                    plan.decisions.push(Decision::Rejected(error));
                }
            }
        }
        loaded.events_read = 0;
        Ok(plan)
    }

    /// Starts a background snapshot of the (committed) state if enough events have passed since
    /// the last one and none is being written.
    fn maybe_snapshot(&self, aggregate_id: &str, loaded: &mut Loaded<A>, writer: &Writer<A>) {
        let bytes = writer
            .snapshot_bytes
            .load(Ordering::Acquire)
            .max(loaded.snapshot_bytes);
        let interval = self
            .config
            .snapshot_every
            .max(bytes / self.config.snapshot_bytes_per_event.max(1))
            .max(1);
        if loaded.version < loaded.snapshot_version + interval
            || writer.snapshotting.swap(true, Ordering::AcqRel)
        {
            return;
        }
        loaded.snapshot_version = loaded.version;
        let state = loaded.aggregate.clone();
        let version = loaded.version;
        let pool = self.pool.clone();
        let id = aggregate_id.to_string();
        let busy = writer.snapshotting.clone();
        let size = writer.snapshot_bytes.clone();
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
            busy.store(false, Ordering::Release);
        });
    }

    /// Replies to the commands whose ids are already in the command log; returns the others.
    async fn answer_duplicates(
        &self,
        aggregate_id: &str,
        batch: Vec<Pending<A>>,
    ) -> Result<Vec<Pending<A>>, (Vec<Pending<A>>, Error)> {
        let ids: Vec<Uuid> = batch.iter().map(|p| p.meta.command_id).collect();
        let stored = match event_store::stored_outcomes(&self.pool, &ids).await {
            Ok(s) => s,
            Err(e) => return Err((batch, e)),
        };
        let mut rest = Vec::new();
        for pending in batch {
            let Some(row) = stored.get(&pending.meta.command_id) else {
                rest.push(pending);
                continue;
            };
            let answer = self.replay_outcome(aggregate_id, &pending, row).await;
            let _ = pending.reply.send(answer);
        }
        Ok(rest)
    }

    async fn replay_outcome(
        &self,
        aggregate_id: &str,
        pending: &Pending<A>,
        row: &event_store::StoredOutcome,
    ) -> Result<Outcome<A>, Error> {
        let command_id = pending.meta.command_id;
        if !pending.meta.same_request(row.fingerprint.as_deref()) {
            return Err(Error::CommandIdReused {
                command_id,
                used_for: format!("another {} request", row.command_type),
            });
        }
        if row.aggregate_type != A::TYPE
            || row.aggregate_id != aggregate_id
            || row.command_type != pending.command.command_type()
        {
            return Err(Error::CommandIdReused {
                command_id,
                used_for: format!(
                    "{} on {} {}",
                    row.command_type, row.aggregate_type, row.aggregate_id
                ),
            });
        }
        let stored: StoredResult<A::Error> = serde_json::from_value(row.outcome.clone())
            .map_err(|e| Error::corrupt("command outcome", e))?;
        let result = match stored {
            StoredResult::Rejected(error) => Err(error),
            StoredResult::Accepted {
                first_sequence,
                last_sequence,
            } => {
                let events = if last_sequence >= first_sequence {
                    event_store::events_between::<A>(
                        &self.pool,
                        aggregate_id,
                        first_sequence,
                        last_sequence,
                        &self.upcasters,
                    )
                    .await?
                } else {
                    Vec::new()
                };
                let (events, positions) = events.into_iter().unzip();
                Ok(Committed {
                    version: last_sequence,
                    events,
                    positions,
                })
            }
        };
        Ok(Outcome {
            command_id,
            duplicate: true,
            result,
        })
    }
}

struct Plan<A: Aggregate> {
    base_version: u64,
    events: Vec<NewEvent>,
    log: Vec<LogRow>,
    decisions: Vec<Decision<A>>,
}

enum Decision<A: Aggregate> {
    Accepted {
        version: u64,
        events: Vec<A::Event>,
        range: std::ops::Range<usize>,
    },
    Rejected(A::Error),
    /// The same command id as an earlier command of this batch.
    SameAs(usize),
    /// The same command id as an earlier command of this batch, with another fingerprint.
    Reused(usize),
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::corrupt("value to store", e))
}

fn reply_all<A: DomainAggregate>(batch: Vec<Pending<A>>, plan: Plan<A>, positions: &[LogPosition]) {
    let mut answers: Vec<Outcome<A>> = Vec::with_capacity(batch.len());
    let mut reused: Vec<usize> = Vec::new();
    for (i, decision) in plan.decisions.into_iter().enumerate() {
        let command_id = batch[i].meta.command_id;
        let outcome = match decision {
            Decision::Accepted {
                version,
                events,
                range,
            } => Outcome {
                command_id,
                duplicate: false,
                result: Ok(Committed {
                    version,
                    events,
                    positions: positions[range].to_vec(),
                }),
            },
            Decision::Rejected(error) => Outcome {
                command_id,
                duplicate: false,
                result: Err(error),
            },
            Decision::SameAs(first) => {
                let mut again = answers[first].clone();
                again.duplicate = true;
                again
            }
            Decision::Reused(first) => {
                reused.push(i);
                let mut again = answers[first].clone();
                again.duplicate = true;
                again
            }
        };
        answers.push(outcome);
    }
    for (i, (pending, answer)) in batch.into_iter().zip(answers).enumerate() {
        let answer = if reused.contains(&i) {
            Err(Error::CommandIdReused {
                command_id: pending.meta.command_id,
                used_for: format!("another {} request", pending.command.command_type()),
            })
        } else {
            Ok(answer)
        };
        let _ = pending.reply.send(answer);
    }
}

fn fail_all<A: Aggregate>(batch: Vec<Pending<A>>, error: Error) {
    let text = error.to_string();
    let mut first = Some(error);
    fail_all_with(batch, |_| {
        first
            .take()
            .unwrap_or_else(|| Error::BatchFailed(text.clone()))
    });
}

fn fail_all_with<A: Aggregate>(batch: Vec<Pending<A>>, mut make: impl FnMut(usize) -> Error) {
    for (i, pending) in batch.into_iter().enumerate() {
        let _ = pending.reply.send(Err(make(i)));
    }
}

fn log_outcome<A: Aggregate>(result: Result<Outcome<A>, Error>) -> Result<Outcome<A>, Error> {
    match &result {
        Ok(o) if o.result.is_ok() => tracing::debug!(duplicate = o.duplicate, "command accepted"),
        Ok(o) => tracing::info!(duplicate = o.duplicate, "command rejected"),
        Err(e) => tracing::warn!(error = %e, "command failed"),
    }
    result
}

async fn backoff(attempt: u32) {
    let cap_ms = 2u64.saturating_pow(attempt.min(8)).min(200);
    let ms = rand::thread_rng().gen_range(1..=cap_ms.max(2));
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

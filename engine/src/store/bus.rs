//! The command bus: runs commands against aggregates stored in the postgres-es `events` table.
//!
//! - **One writer per aggregate in this process.** Commands for the same aggregate queue up; the
//!   first caller to take the aggregate's lock decides every queued command in order on the
//!   in-memory state and appends all their events and command-log rows in one statement.
//!   Concurrent callers on one aggregate therefore never conflict with each other, and a busy
//!   aggregate is written in batches.
//! - **Across processes**, the append is conditional on the stream still being at the version
//!   the decisions were made on; if another process moved it, the held state is brought up to
//!   date with the events appended since (`event_store::catch_up`, not a reload) and the batch
//!   decided again, a bounded number of times with jittered back-off. The held state is only
//!   ever the committed one: a batch's events are applied to it after its append succeeds. A
//!   batch of several commands, each of which must see the events of the ones before, is decided
//!   on a second copy (the twin), made once and then kept in step by applying every written
//!   batch to both, so a busy aggregate pays one more `apply` per event, not a copy per batch.
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
use crate::store::group_append::{AppendRequest, GroupAppender};
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
    state: Arc<Mutex<Held<A>>>,
    /// A snapshot of this aggregate is being written by a background task.
    snapshotting: Arc<AtomicBool>,
    /// The size in bytes of the last snapshot written by this process.
    snapshot_bytes: Arc<AtomicU64>,
}

/// What a writer holds of its aggregate.
struct Held<A: Aggregate> {
    /// The committed state and its version (`None` until loaded, or after a failed catch-up).
    loaded: Option<Loaded<A>>,
    /// A second copy of the committed state, on which batches of several commands are decided.
    twin: Option<Twin<A>>,
}

/// A copy of the committed state as it was at `version`; of use only while that is still the
/// committed version (anything that moves the committed state on without it leaves it behind).
struct Twin<A> {
    version: u64,
    aggregate: A,
}

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

/// Runs commands for one aggregate type.
pub struct CommandBus<A: DomainAggregate> {
    core: Arc<Core<A>>,
}

/// What a bus shares with the tasks that run its batches; its methods are the bus's (`Deref`).
pub struct Core<A: DomainAggregate> {
    pool: PgPool,
    appender: GroupAppender,
    services: RwLock<Arc<A::Services>>,
    writers: StdMutex<HashMap<String, Arc<Writer<A>>>>,
    upcasters: Vec<Box<dyn EventUpcaster>>,
    config: BusConfig,
    /// Signalled (to every task waiting right now) after each append.
    appended: Option<Arc<tokio::sync::Notify>>,
    cold_loads: AtomicU64,
    stale_appends: AtomicU64,
    state_copies: AtomicU64,
}

impl<A: DomainAggregate> std::ops::Deref for CommandBus<A> {
    type Target = Core<A>;

    fn deref(&self) -> &Core<A> {
        &self.core
    }
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
        let appender = GroupAppender::new(pool.clone(), config.max_appends, config.max_group);
        let core = Core {
            pool,
            appender,
            services: RwLock::new(Arc::new(services)),
            writers: StdMutex::new(HashMap::new()),
            upcasters: upcasters(),
            config,
            appended: None,
            cold_loads: AtomicU64::new(0),
            stale_appends: AtomicU64::new(0),
            state_copies: AtomicU64::new(0),
        };
        Self {
            core: Arc::new(core),
        }
    }

    /// Signals `appended` after every append of this bus, so readers of the log in this process
    /// can look at once instead of at their next poll.
    pub fn with_append_signal(mut self, appended: Arc<tokio::sync::Notify>) -> Self {
        Arc::get_mut(&mut self.core)
            .expect("the append signal is set before the bus is shared")
            .appended = Some(appended);
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
                let held = writer.state.clone().lock_owned().await;
                if let Some(answer) = answered(&mut rx) {
                    return log_outcome(answer);
                }
                let batch: Vec<Pending<A>> = {
                    let mut q = writer.queue.lock().unwrap_or_else(|p| p.into_inner());
                    let n = q.len().min(self.config.max_batch);
                    q.drain(..n).collect()
                };
                if !batch.is_empty() {
                    // A batch of more than this caller's own command runs in a task of its
                    // own: if this caller goes away (an HTTP client hanging up drops its
                    // request), the batch still runs and answers the others. (A batch of one
                    // is this caller's: the queue is first in, first out, and its command is
                    // still in it.) Cancelling a batch at any await leaves the held state a
                    // committed one; an append it made is found by the next (stale, caught up).
                    let carries_others = batch.len() > 1;
                    let core = self.core.clone();
                    let id = aggregate_id.to_string();
                    let writer = writer.clone();
                    let run = async move {
                        let mut held = held;
                        core.run_batch(&id, &mut held, batch).await;
                        if let Some(loaded) = held.loaded.as_mut() {
                            core.maybe_snapshot(&id, loaded, &writer);
                        }
                    };
                    if carries_others {
                        let _ = tokio::spawn(run.in_current_span()).await;
                    } else {
                        run.await;
                    }
                } else {
                    drop(held);
                }
                if let Some(answer) = answered(&mut rx) {
                    return log_outcome(answer);
                }
            }
        }
        .instrument(span)
        .await
    }
}

impl<A> Core<A>
where
    A: DomainAggregate,
    A::Error: serde::de::DeserializeOwned + Send,
    A::Event: Send,
{
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

    /// How often this bus loaded an aggregate cold, how often an append found its stream moved
    /// by another process, and how many statements its appends took.
    pub fn stats(&self) -> BusStats {
        BusStats {
            cold_loads: self.cold_loads.load(Ordering::Relaxed),
            stale_appends: self.stale_appends.load(Ordering::Relaxed),
            state_copies: self.state_copies.load(Ordering::Relaxed),
            append_statements: self.appender.statements(),
        }
    }

    /// Loads an aggregate from the store: its snapshot plus the events after it.
    async fn load_cold(&self, aggregate_id: &str) -> Result<Loaded<A>, Error> {
        self.cold_loads.fetch_add(1, Ordering::Relaxed);
        event_store::load::<A>(&self.pool, aggregate_id, &self.upcasters).await
    }

    /// Brings the held state up to date with what other processes appended since its version;
    /// drops it (to be loaded afresh) if that fails.
    async fn catch_up(&self, aggregate_id: &str, state: &mut Option<Loaded<A>>) {
        let Some(loaded) = state.as_mut() else {
            return;
        };
        match event_store::catch_up(&self.pool, aggregate_id, loaded, &self.upcasters).await {
            Ok(events) => tracing::debug!(events, "caught up with other writers"),
            Err(e) => {
                tracing::warn!(error = %e, "catching up failed; the aggregate will be reloaded");
                *state = None;
            }
        }
    }

    /// The current state of an aggregate and its version: the state held in memory, brought up
    /// to date with whatever other processes appended since (one indexed query), or loaded.
    /// Reads go through the same lock as writes, so they see every command that returned before.
    pub async fn load(&self, aggregate_id: &str) -> Result<(A, u64), Error> {
        let writer = self.writer(aggregate_id);
        let mut held = writer.state.lock().await;
        let state = &mut held.loaded;
        match state.as_mut() {
            None => {
                *state = Some(self.load_cold(aggregate_id).await?);
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
        let mut held = writer.state.lock().await;
        let state = &mut held.loaded;
        if state.is_none() {
            *state = Some(self.load_cold(aggregate_id).await?);
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
        let mut held = writer.state.lock().await;
        let state = &mut held.loaded;
        if state.is_none() {
            *state = Some(self.load_cold(aggregate_id).await?);
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
                    state: Arc::new(Mutex::new(Held {
                        loaded: None,
                        twin: None,
                    })),
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
    async fn run_batch(&self, aggregate_id: &str, held: &mut Held<A>, mut batch: Vec<Pending<A>>) {
        let Held {
            loaded: state,
            twin,
        } = held;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if state.is_none()
                && attempt == 1
                && batch.iter().all(|p| p.command.creates_aggregate())
            {
                // A new aggregate, most likely: decide on the empty state; a stream that exists
                // after all makes the append stale, and the held (empty) state is caught up with it.
                *state = Some(Loaded::empty());
            }
            if state.is_none() {
                match self.load_cold(aggregate_id).await {
                    Ok(loaded) => *state = Some(loaded),
                    Err(e) => return fail_all(batch, e),
                }
            }
            let loaded = state.as_mut().expect("state was just loaded");
            let mut plan = match self.decide(loaded, twin, &batch) {
                Ok(plan) => plan,
                Err(e) => return fail_all(batch, e),
            };
            let result = self
                .appender
                .append(AppendRequest {
                    aggregate_type: A::TYPE,
                    aggregate_id: aggregate_id.to_string(),
                    expected_version: plan.base_version,
                    events: std::mem::take(&mut plan.events),
                    log: std::mem::take(&mut plan.log),
                })
                .await;
            match result {
                Ok(AppendResult::Written(positions)) => {
                    let decisions = plan.commit(loaded, twin);
                    if let Some(appended) = &self.appended {
                        appended.notify_waiters();
                    }
                    return reply_all(batch, decisions, &positions);
                }
                Ok(AppendResult::Stale) | Err(AppendError::Conflict) => {
                    // Another process appended: the held state (still the committed one the
                    // batch was decided on) is behind. Catch it up and decide again.
                    self.stale_appends.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(attempt, "stream moved on; deciding the batch again");
                    if attempt >= self.config.max_attempts {
                        // Leave the held state current for the next command.
                        self.catch_up(aggregate_id, state).await;
                        let attempts = attempt;
                        let id = aggregate_id.to_string();
                        return fail_all_with(batch, |_| Error::Conflict {
                            aggregate_type: A::TYPE,
                            aggregate_id: id.clone(),
                            attempts,
                        });
                    }
                    backoff(attempt).await;
                    self.catch_up(aggregate_id, state).await;
                }
                Err(AppendError::DuplicateCommand) => {
                    // Some command ids of the batch were run before (possibly right now, by
                    // another process, which then appended too): answer those with their
                    // stored outcomes, catch up, and decide the rest again.
                    batch = match self.answer_duplicates(aggregate_id, batch).await {
                        Ok(rest) if rest.is_empty() => return,
                        Ok(rest) => rest,
                        Err((rest, e)) => return fail_all(rest, e),
                    };
                    self.catch_up(aggregate_id, state).await;
                }
                Err(AppendError::Other(e)) => {
                    // Nothing known to be written: the held state is still a committed one (if
                    // the append did commit, the next append finds the stream moved).
                    return fail_all(batch, e);
                }
            }
        }
    }

    /// Decides every command of the batch in order, leaving the held state as it is: a command
    /// is decided on it directly until one is accepted; a later one, which must see the batch's
    /// earlier events, is decided on the twin (taken out of `twin` if it is at the held
    /// version, else copied from the held state), with those events applied. The held state
    /// takes the batch's events in [`Plan::commit`], after the append.
    fn decide(
        &self,
        loaded: &Loaded<A>,
        twin: &mut Option<Twin<A>>,
        batch: &[Pending<A>],
    ) -> Result<Plan<A>, Error> {
        let services = self.services();
        let mut plan = Plan {
            base_version: loaded.version,
            version: loaded.version,
            events: Vec::new(),
            log: Vec::new(),
            decisions: Vec::with_capacity(batch.len()),
            copy: None,
            unapplied: Vec::new(),
        };
        let mut version = loaded.version;
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
            if !plan.unapplied.is_empty() {
                let copy = plan.copy.get_or_insert_with(|| match twin.take() {
                    Some(t) if t.version == loaded.version => t.aggregate,
                    _ => {
                        self.state_copies.fetch_add(1, Ordering::Relaxed);
                        loaded.aggregate.clone()
                    }
                });
                for event in plan.unapplied.drain(..) {
                    copy.apply(event);
                }
            }
            let current = plan.copy.as_ref().unwrap_or(&loaded.aggregate);
            match current.decide(pending.command.clone(), &services) {
                Ok(events) => {
                    let first_sequence = version + 1;
                    let metadata = pending.meta.to_map();
                    let start = plan.events.len();
                    for event in &events {
                        version += 1;
                        plan.events.push(NewEvent::new(version, event, &metadata)?);
                    }
                    plan.unapplied.extend(events.iter().cloned());
                    let stored: StoredResult<A::Error> = StoredResult::Accepted {
                        first_sequence,
                        last_sequence: version,
                    };
                    plan.log.push(LogRow {
                        command_id: id,
                        command_type,
                        outcome: to_json(&stored)?,
                        fingerprint: pending.meta.fingerprint.clone(),
                    });
                    plan.decisions.push(Decision::Accepted {
                        version,
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
        plan.version = version;
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
    /// The version after the batch (`base_version` plus its events).
    version: u64,
    events: Vec<NewEvent>,
    log: Vec<LogRow>,
    decisions: Vec<Decision<A>>,
    /// The twin with the batch's earlier events applied, if a later command needed it.
    copy: Option<A>,
    /// Accepted events not yet applied to `copy` (or, without a copy, to anything).
    unapplied: Vec<A::Event>,
}

impl<A: Aggregate + PartialEq> Plan<A> {
    /// The batch is written: the held state takes its events and version, and so does the
    /// twin (the copy the batch was decided on, or the twin left in `twin` if it was in step).
    /// Returns the decisions to answer with.
    fn commit(self, loaded: &mut Loaded<A>, twin: &mut Option<Twin<A>>) -> Vec<Decision<A>> {
        let version = self.version;
        match self.copy {
            Some(mut copy) => {
                for event in self.unapplied {
                    copy.apply(event);
                }
                for decision in &self.decisions {
                    if let Decision::Accepted { events, .. } = decision {
                        for event in events {
                            loaded.aggregate.apply(event.clone());
                        }
                    }
                }
                *twin = Some(Twin {
                    version,
                    aggregate: copy,
                });
            }
            None => {
                // Every event of the batch is still unapplied.
                match twin {
                    Some(t) if t.version == self.base_version => {
                        for event in &self.unapplied {
                            t.aggregate.apply(event.clone());
                        }
                        t.version = version;
                    }
                    _ => *twin = None,
                }
                for event in self.unapplied {
                    loaded.aggregate.apply(event);
                }
            }
        }
        loaded.version = version;
        loaded.events_read = 0;
        debug_assert!(
            twin.as_ref()
                .is_none_or(|t| t.aggregate == loaded.aggregate),
            "the twin is in step with the held state"
        );
        self.decisions
    }
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

fn reply_all<A: DomainAggregate>(
    batch: Vec<Pending<A>>,
    decisions: Vec<Decision<A>>,
    positions: &[LogPosition],
) {
    let mut answers: Vec<Outcome<A>> = Vec::with_capacity(batch.len());
    let mut reused: Vec<usize> = Vec::new();
    for (i, decision) in decisions.into_iter().enumerate() {
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

/// This command's answer, if its batch has given one. A batch that ended without answering (its
/// task panicked) is an error, not a wait that never ends.
fn answered<A: Aggregate>(
    rx: &mut oneshot::Receiver<Result<Outcome<A>, Error>>,
) -> Option<Result<Outcome<A>, Error>> {
    match rx.try_recv() {
        Ok(answer) => Some(answer),
        Err(oneshot::error::TryRecvError::Empty) => None,
        Err(oneshot::error::TryRecvError::Closed) => Some(Err(Error::BatchFailed(
            "the batch deciding this command ended without an answer; its outcome, if any, is in \
             the command log under the command's id"
                .into(),
        ))),
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

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use sqlx::postgres::PgPoolOptions;

    use super::*;
    use crate::domain::account::{Account, AccountCommand, AccountEvent};
    use crate::domain::ids::{AccountId, DepositId, OrderId};
    use crate::domain::{replay, Amount, Asset, DomainError};
    use crate::store::Actor;

    /// A bus whose pool never connects: `decide` and `commit` do no IO.
    fn bus() -> CommandBus<Account> {
        let pool = PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap();
        CommandBus::new(pool, ())
    }

    /// An open account holding 10 TRX, as held in memory at version 2.
    fn held() -> Loaded<Account> {
        let history = vec![
            AccountEvent::AccountOpened {
                account_id: AccountId::parse("tg:1").unwrap(),
                opened_at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
            },
            AccountEvent::FundsCredited {
                deposit_id: DepositId::parse(&"ab".repeat(32)).unwrap(),
                asset: Asset::Trx,
                amount: Amount::new(10_000_000).unwrap(),
                available_after: 10_000_000,
                reserved_after: 0,
            },
        ];
        Loaded {
            aggregate: replay(history),
            version: 2,
            events_read: 2,
            from_snapshot: false,
            snapshot_version: 0,
            snapshot_bytes: 0,
        }
    }

    fn order(n: u32) -> OrderId {
        OrderId::parse(format!("ord-{n}")).unwrap()
    }

    fn reserve(n: u32, sun: u64) -> AccountCommand {
        AccountCommand::ReserveFunds {
            order_id: order(n),
            asset: Asset::Trx,
            amount: Amount::new(sun).unwrap(),
        }
    }

    fn pending(commands: Vec<AccountCommand>) -> Vec<Pending<Account>> {
        commands
            .into_iter()
            .map(|command| Pending {
                command,
                meta: CommandMetadata::new(Actor::new("test", "bot")),
                reply: oneshot::channel().0,
            })
            .collect()
    }

    fn accepted_events(decisions: &[Decision<Account>]) -> Vec<AccountEvent> {
        decisions
            .iter()
            .flat_map(|d| match d {
                Decision::Accepted { events, .. } => events.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_batch_leaves_the_held_state_alone_until_its_append_is_committed() {
        let bus = bus();
        let before = held();
        let mut loaded = before.clone();
        let mut twin = None;
        let batch = pending(vec![
            reserve(1, 6_000_000),
            reserve(2, 6_000_000),
            reserve(3, 4_000_000),
            AccountCommand::CaptureFunds { order_id: order(1) },
        ]);
        let plan = bus.decide(&loaded, &mut twin, &batch).unwrap();
        assert_eq!(
            loaded, before,
            "an unwritten decision never reaches the held state"
        );
        assert_eq!(plan.events.len(), 3);
        assert!(matches!(
            plan.decisions[1],
            Decision::Rejected(DomainError::InsufficientFunds {
                available: 4_000_000,
                ..
            })
        ));

        let events = accepted_events(&plan.decisions);
        plan.commit(&mut loaded, &mut twin);
        assert_eq!(loaded.version, 5);
        let mut expected = held().aggregate;
        for event in events {
            expected.apply(event);
        }
        assert_eq!(loaded.aggregate, expected);
        assert_eq!(loaded.aggregate.balance(Asset::Trx).available, 0);
        assert!(
            loaded.aggregate.reservation(&order(1)).is_none(),
            "captured"
        );
        let twin = twin.expect("the copy the batch was decided on is kept");
        assert_eq!((twin.version, &twin.aggregate), (5, &expected));
    }

    #[tokio::test]
    async fn the_state_is_copied_once_and_then_kept_in_step_not_copied_per_batch() {
        let bus = bus();
        let mut loaded = held();
        let mut twin = None;
        let copies = |bus: &CommandBus<Account>| bus.stats().state_copies;

        // One command, or a refusal before an acceptance: decided on the held state itself.
        let plan = bus
            .decide(&loaded, &mut twin, &pending(vec![reserve(1, 1)]))
            .unwrap();
        assert!(plan.copy.is_none());
        let refused_first = pending(vec![reserve(2, 20_000_000), reserve(2, 1)]);
        let plan = bus.decide(&loaded, &mut twin, &refused_first).unwrap();
        assert!(plan.copy.is_none(), "a refusal writes no event to see");
        plan.commit(&mut loaded, &mut twin);
        assert_eq!(copies(&bus), 0);

        // The first batch of two acceptances copies the state; the next ones use the twin.
        for n in [3, 5, 7] {
            let batch = pending(vec![reserve(n, 1), reserve(n + 1, 1)]);
            bus.decide(&loaded, &mut twin, &batch)
                .unwrap()
                .commit(&mut loaded, &mut twin);
        }
        assert_eq!(copies(&bus), 1);
        // A single command keeps the twin in step.
        bus.decide(&loaded, &mut twin, &pending(vec![reserve(9, 1)]))
            .unwrap()
            .commit(&mut loaded, &mut twin);
        let t = twin.as_ref().unwrap();
        assert_eq!(
            (t.version, &t.aggregate),
            (loaded.version, &loaded.aggregate)
        );

        // A batch whose append fails takes the twin with it; the next batch copies again.
        let failed = bus
            .decide(
                &loaded,
                &mut twin,
                &pending(vec![reserve(10, 1), reserve(11, 1)]),
            )
            .unwrap();
        drop(failed);
        assert!(twin.is_none());
        let before = loaded.clone();
        bus.decide(
            &loaded,
            &mut twin,
            &pending(vec![reserve(10, 1), reserve(11, 1)]),
        )
        .unwrap()
        .commit(&mut loaded, &mut twin);
        assert_eq!(copies(&bus), 2);
        assert_eq!(loaded.version, before.version + 2);
        assert_eq!(twin.unwrap().aggregate, loaded.aggregate);
    }
}

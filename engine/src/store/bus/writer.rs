//! The writers: one per aggregate in this process, each a queue of commands and the state held
//! in memory behind a lock. Whoever takes the lock (the writer's turn) decides every queued
//! command in one batch and appends it in one conditional statement; the others find their
//! answers waiting and never touch the state.
//!
//! The batch runs inline, in the future of the caller that took the turn. If that future is
//! dropped mid-batch (an HTTP client hanging up), the commands it carried for others go back to
//! the front of the queue ([`Carried`](crate::store::batcher::Carried)), before the lock is let
//! go, and the next caller to take the turn decides them again. Nothing the dropped batch did
//! is lost or doubled: the held state is only ever the committed one (a batch's events reach it
//! after its append succeeded), and an append the dropped batch had sent is found by the next
//! one, as a stream that moved on (caught up) or as command ids already logged (answered from
//! the log).

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, RwLock};
use std::time::Duration;

use cqrs_es::persist::EventUpcaster;
use rand::Rng;
use sqlx::PgPool;
use tokio::sync::{oneshot, Mutex, Notify};

use super::config::BusConfig;
use super::outcome::{self, Outcome};
use super::plan::{self, Request, Twin};
use super::snapshot::Snapshots;
use super::stats::{BusStats, Counters};
use crate::domain::{DomainAggregate, DomainCommand};
use crate::error::Error;
use crate::store::batcher::{gone, Awaited, Batcher, Ticket};
use crate::store::event_store::{self, AppendError, AppendResult, Loaded};
use crate::store::group_append::{AppendRequest, GroupAppender};
use crate::store::upcast::upcasters;

/// What a command's caller is answered.
type Answer<A> = Result<Outcome<A>, Error>;

/// A queued command and where its answer goes.
struct Pending<A: DomainAggregate> {
    ticket: Ticket,
    request: Request<A>,
    reply: oneshot::Sender<Answer<A>>,
}

impl<A: DomainAggregate> AsRef<Request<A>> for Pending<A> {
    fn as_ref(&self) -> &Request<A> {
        &self.request
    }
}

impl<A: DomainAggregate> Awaited for Pending<A> {
    fn ticket(&self) -> Ticket {
        self.ticket
    }

    fn abandoned(&self) -> bool {
        gone(&self.reply)
    }
}

/// One aggregate's writer.
struct Writer<A: DomainAggregate> {
    queue: Batcher<Pending<A>>,
    held: Mutex<Held<A>>,
    snapshots: Snapshots,
}

/// What a writer holds of its aggregate.
struct Held<A> {
    /// The committed state and its version (`None` until loaded, or after a failed catch-up).
    loaded: Option<Loaded<A>>,
    /// A second copy of the committed state, on which batches of several commands are decided.
    twin: Option<Twin<A>>,
}

/// How current a read of the held state must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Freshness {
    /// Brought up to date with what other processes appended since (one indexed query).
    Current,
    /// As this process holds it (loaded if it holds nothing).
    Held,
}

/// The writers of one aggregate type, and what they share.
pub(super) struct Writers<A: DomainAggregate> {
    pool: PgPool,
    appender: GroupAppender,
    services: RwLock<Arc<A::Services>>,
    upcasters: Vec<Box<dyn EventUpcaster>>,
    config: BusConfig,
    counters: Counters,
    /// Signalled (to every task waiting right now) after each append.
    appended: Option<Arc<Notify>>,
    cache: StdMutex<HashMap<String, Arc<Writer<A>>>>,
}

impl<A> Writers<A>
where
    A: DomainAggregate,
    A::Error: serde::de::DeserializeOwned + Send,
    A::Event: Send,
{
    pub fn new(pool: PgPool, services: A::Services, config: BusConfig) -> Self {
        Self {
            appender: GroupAppender::new(pool.clone(), config.max_appends, config.max_group),
            pool,
            services: RwLock::new(Arc::new(services)),
            upcasters: upcasters(),
            config,
            counters: Counters::default(),
            appended: None,
            cache: StdMutex::new(HashMap::new()),
        }
    }

    pub fn signal_appends_to(&mut self, appended: Arc<Notify>) {
        self.appended = Some(appended);
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn services(&self) -> Arc<A::Services> {
        self.services
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

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

    pub fn stats(&self) -> BusStats {
        self.counters.read(self.appender.statements())
    }

    /// Queues the command and waits for its answer, deciding the batch it is in if this caller
    /// is the one to take the writer's turn.
    pub async fn execute(&self, aggregate_id: &str, request: Request<A>) -> Answer<A> {
        let writer = self.writer(aggregate_id);
        let (reply, mut answer) = oneshot::channel();
        let ticket = writer.queue.ticket();
        writer.queue.push(Pending {
            ticket,
            request,
            reply,
        });
        loop {
            // A free writer is taken at once, without waiting on the answer: its waker is then
            // never registered, so a batch that answers this caller does not wake it.
            let mut held = match writer.held.try_lock() {
                Ok(held) => held,
                Err(_) => tokio::select! {
                    biased;
                    got = &mut answer => return got.unwrap_or_else(|_| Err(unanswered())),
                    held = writer.held.lock() => held,
                },
            };
            if let Some(got) = answered(&mut answer) {
                return got;
            }
            // Declared after the lock, so dropped before it: what this batch has not answered
            // is queued again while the writer's turn is still ours.
            let mut batch = writer.queue.take(self.config.max_batch, ticket);
            if batch.is_empty() {
                // Neither answered nor queued: the batch that took it ended without answering.
                return Err(unanswered());
            }
            let held = &mut *held;
            let mut replies = Replies::new(ticket);
            self.run_batch(aggregate_id, held, batch.items(), &mut replies)
                .await;
            if let Some(loaded) = held.loaded.as_mut() {
                writer
                    .snapshots
                    .maybe_take(&self.pool, &self.config, aggregate_id, loaded);
            }
            if let Some(got) = replies.own {
                return got;
            }
        }
    }

    /// Reads the aggregate's state under its writer's lock (so a read sees every command that
    /// returned before it), loading it if this process holds nothing of it.
    pub async fn read<T>(
        &self,
        aggregate_id: &str,
        freshness: Freshness,
        read: impl FnOnce(&A, u64) -> T,
    ) -> Result<T, Error> {
        let writer = self.writer(aggregate_id);
        let mut held = writer.held.lock().await;
        let loaded = self
            .loaded(aggregate_id, &mut held.loaded, freshness)
            .await?;
        Ok(read(&loaded.aggregate, loaded.version))
    }

    /// The held state, loaded cold (snapshot plus the events after it) if there is none, and
    /// for [`Freshness::Current`] caught up with what other processes appended since. A failed
    /// catch-up drops the held state, to be loaded afresh next time.
    async fn loaded<'h>(
        &self,
        aggregate_id: &str,
        state: &'h mut Option<Loaded<A>>,
        freshness: Freshness,
    ) -> Result<&'h mut Loaded<A>, Error> {
        match state {
            None => {
                self.counters.cold_load();
                *state =
                    Some(event_store::load::<A>(&self.pool, aggregate_id, &self.upcasters).await?);
            }
            Some(loaded) if freshness == Freshness::Current => {
                match event_store::catch_up(&self.pool, aggregate_id, loaded, &self.upcasters).await
                {
                    Ok(events) => tracing::debug!(events, "caught up with other writers"),
                    Err(e) => {
                        *state = None;
                        return Err(e);
                    }
                }
            }
            Some(_) => {}
        }
        Ok(state.as_mut().expect("the state was just loaded"))
    }

    /// Brings the held state up to date after an append found the stream moved on; on failure
    /// it is dropped, and the next attempt loads it.
    async fn catch_up(&self, aggregate_id: &str, state: &mut Option<Loaded<A>>) {
        if state.is_some() {
            if let Err(e) = self.loaded(aggregate_id, state, Freshness::Current).await {
                tracing::warn!(error = %e, "catching up failed; the aggregate will be reloaded");
            }
        }
    }

    fn writer(&self, aggregate_id: &str) -> Arc<Writer<A>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= self.config.max_cached && !cache.contains_key(aggregate_id) {
            cache.retain(|_, w| Arc::strong_count(w) > 1);
        }
        if let Some(writer) = cache.get(aggregate_id) {
            return writer.clone();
        }
        let writer = Arc::new(Writer {
            queue: Batcher::new(),
            held: Mutex::new(Held {
                loaded: None,
                twin: None,
            }),
            snapshots: Snapshots::default(),
        });
        cache.insert(aggregate_id.to_string(), writer.clone());
        writer
    }

    /// Decides and appends a batch, answering every command in it (an answered command leaves
    /// `batch`). Retries on a stream another process moved, a bounded number of times.
    async fn run_batch(
        &self,
        aggregate_id: &str,
        held: &mut Held<A>,
        batch: &mut Vec<Pending<A>>,
        replies: &mut Replies<A>,
    ) {
        let Held {
            loaded: state,
            twin,
        } = held;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if state.is_none()
                && attempt == 1
                && batch.iter().all(|p| p.request.command.creates_aggregate())
            {
                // A new aggregate, most likely: decide on the empty state; a stream that exists
                // after all makes the append stale, and the held (empty) state is caught up with it.
                *state = Some(Loaded::empty());
            }
            let loaded = match self.loaded(aggregate_id, state, Freshness::Held).await {
                Ok(loaded) => loaded,
                Err(e) => return replies.fail_all(batch, e),
            };
            let mut plan = match plan::decide(loaded, twin, batch, &self.services()) {
                Ok(plan) => plan,
                Err(e) => return replies.fail_all(batch, e),
            };
            if plan.copied {
                self.counters.state_copy();
            }
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
                    let answers = plan::answers(batch, decisions, &positions);
                    for (pending, answer) in batch.drain(..).zip(answers) {
                        replies.send(pending, answer);
                    }
                    return;
                }
                Ok(AppendResult::Stale) | Err(AppendError::Conflict) => {
                    // Another process appended: the held state (still the committed one the
                    // batch was decided on) is behind. Catch it up and decide again.
                    self.counters.stale_append();
                    tracing::debug!(attempt, "stream moved on; deciding the batch again");
                    if attempt >= self.config.max_attempts {
                        // Leave the held state current for the next command.
                        self.catch_up(aggregate_id, state).await;
                        for pending in batch.drain(..) {
                            let conflict = Error::Conflict {
                                aggregate_type: A::TYPE,
                                aggregate_id: aggregate_id.to_string(),
                                attempts: attempt,
                            };
                            replies.send(pending, Err(conflict));
                        }
                        return;
                    }
                    backoff(attempt).await;
                    self.catch_up(aggregate_id, state).await;
                }
                Err(AppendError::DuplicateCommand) => {
                    // Some command ids of the batch were run before (possibly right now, by
                    // another process, which then appended too): answer those with their
                    // stored outcomes, catch up, and decide the rest again.
                    if let Err(e) = self.answer_duplicates(aggregate_id, batch, replies).await {
                        return replies.fail_all(batch, e);
                    }
                    if batch.is_empty() {
                        return;
                    }
                    self.catch_up(aggregate_id, state).await;
                }
                Err(AppendError::Other(e)) => {
                    // Nothing known to be written: the held state is still a committed one (if
                    // the append did commit, the next append finds the stream moved).
                    return replies.fail_all(batch, e);
                }
            }
        }
    }

    /// Answers the commands whose ids are already in the command log with their stored
    /// outcomes; the others stay in `batch`.
    async fn answer_duplicates(
        &self,
        aggregate_id: &str,
        batch: &mut Vec<Pending<A>>,
        replies: &mut Replies<A>,
    ) -> Result<(), Error> {
        let ids: Vec<_> = batch.iter().map(|p| p.request.meta.command_id).collect();
        let stored = event_store::stored_outcomes(&self.pool, &ids).await?;
        let mut i = 0;
        while i < batch.len() {
            let request = &batch[i].request;
            let Some(row) = stored.get(&request.meta.command_id) else {
                i += 1;
                continue;
            };
            let answer = outcome::replay::<A>(
                &self.pool,
                &self.upcasters,
                aggregate_id,
                request.command.command_type(),
                &request.meta,
                row,
            )
            .await;
            replies.send(batch.remove(i), answer);
        }
        Ok(())
    }
}

/// Where a batch's answers go: each command's own channel, except the answer of the caller
/// running the batch, which is kept for it to return. (Sent through its channel, that answer
/// would wake the caller's own running task, which tokio then hands to another worker thread
/// at its next await: a thread woken and a context switch per command.)
struct Replies<A: DomainAggregate> {
    mine: Ticket,
    own: Option<Answer<A>>,
}

impl<A: DomainAggregate> Replies<A> {
    fn new(mine: Ticket) -> Self {
        Self { mine, own: None }
    }

    fn send(&mut self, pending: Pending<A>, answer: Answer<A>) {
        if pending.ticket == self.mine {
            self.own = Some(answer);
        } else {
            let _ = pending.reply.send(answer);
        }
    }

    /// Answers every command of the batch with `error` (the first) or a note of it (the others).
    fn fail_all(&mut self, batch: &mut Vec<Pending<A>>, error: Error) {
        let text = error.to_string();
        let mut first = Some(error);
        for pending in batch.drain(..) {
            let error = first
                .take()
                .unwrap_or_else(|| Error::BatchFailed(text.clone()));
            self.send(pending, Err(error));
        }
    }
}

/// This command's answer, if its batch has given one.
fn answered<A: DomainAggregate>(answer: &mut oneshot::Receiver<Answer<A>>) -> Option<Answer<A>> {
    match answer.try_recv() {
        Ok(got) => Some(got),
        Err(oneshot::error::TryRecvError::Empty) => None,
        Err(oneshot::error::TryRecvError::Closed) => Some(Err(unanswered())),
    }
}

/// A batch that ended without answering (it panicked) is an error, not a wait without end.
fn unanswered() -> Error {
    Error::BatchFailed(
        "the batch deciding this command ended without an answer; its outcome, if any, is in \
         the command log under the command's id"
            .into(),
    )
}

async fn backoff(attempt: u32) {
    let cap_ms = 2u64.saturating_pow(attempt.min(8)).min(200);
    let ms = rand::thread_rng().gen_range(1..=cap_ms.max(2));
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

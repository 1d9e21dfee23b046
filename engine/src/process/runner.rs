//! Runs a process manager (a `Reactor`) on the global log: one owner across processes (a session
//! advisory lock on a dedicated connection; a standby polls for it), batches read below the
//! transaction horizon, every command of a batch decided before the checkpoint moves, and the
//! scheduler rows the batch produced written in the checkpoint's transaction.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;

use crate::error::Error;
use crate::log::{load_checkpoint, save_checkpoint, GlobalLogReader, LogPosition, TypedEvent};
use crate::process::scheduler::{self, ScheduledStep};

/// What a batch asks of the scheduler and of the chain workers, applied with the checkpoint.
#[derive(Debug, Default)]
pub struct Effects {
    pub schedule: Vec<ScheduledStep>,
    pub unschedule: Vec<(String, String)>,
    pub chain_tasks: Vec<ChainTaskChange>,
}

/// An order that has (or no longer has) work for a pool wallet's chain worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainTaskChange {
    /// `phase` is `delegate` or `reclaim`.
    Open {
        order_id: String,
        wallet: String,
        phase: &'static str,
    },
    Close {
        order_id: String,
    },
}

impl Effects {
    /// Nothing to write besides the checkpoint.
    pub fn is_empty(&self) -> bool {
        self.schedule.is_empty() && self.unschedule.is_empty() && self.chain_tasks.is_empty()
    }

    pub fn open_chain_task(&mut self, order_id: &str, wallet: String, phase: &'static str) {
        self.chain_tasks.push(ChainTaskChange::Open {
            order_id: order_id.to_string(),
            wallet,
            phase,
        });
    }
    pub fn close_chain_task(&mut self, order_id: &str) {
        self.chain_tasks.push(ChainTaskChange::Close {
            order_id: order_id.to_string(),
        });
    }

    pub fn schedule(&mut self, step: ScheduledStep) {
        self.schedule.push(step);
    }
    pub fn unschedule(&mut self, step: &str, aggregate_id: &str) {
        self.unschedule
            .push((step.to_string(), aggregate_id.to_string()));
    }
}

/// A process manager: reacts to events by sending commands.
pub trait Reactor: Send + Sync + 'static {
    /// Stable: it names the checkpoint and the ownership lock.
    fn name(&self) -> &'static str;

    /// Handles one event. An `Err` (no decision reached, e.g. the database is down) makes the
    /// runner retry the whole batch later; it never skips the event.
    fn react(
        &self,
        event: &TypedEvent,
        effects: &mut Effects,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Signalled when the log may have grown (e.g. [`crate::process::Buses::appended`]): an idle
    /// runner looks at once instead of at its next poll. Only a shortcut: polling continues, so
    /// a missed signal (or an append by another process) costs at most `idle_max`.
    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }
}

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub batch_size: i64,
    pub idle_min: Duration,
    pub idle_max: Duration,
    pub standby_retry: Duration,
    /// Events of different aggregates handled at once within a batch.
    pub concurrency: usize,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            batch_size: 200,
            idle_min: Duration::from_millis(5),
            idle_max: Duration::from_millis(250),
            standby_retry: Duration::from_secs(1),
            concurrency: 64,
        }
    }
}

/// How often an owner makes sure its lock connection is still alive (a dead one has released
/// the lock; a standby takes over within `standby_retry`). Work done meanwhile is repeated
/// harmlessly by the next owner: every reaction and chain step is idempotent.
const OWNERSHIP_CHECK: Duration = Duration::from_millis(100);

async fn connect(pool: &PgPool) -> Result<PgConnection, Error> {
    Ok(PgConnection::connect_with(&pool.connect_options()).await?)
}

/// Sleeps until `d` has passed or `wake` fires; true when shutdown is signalled.
async fn pause_or_wake(
    shutdown: &mut watch::Receiver<bool>,
    d: Duration,
    wake: Option<std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>>,
) -> (bool, bool) {
    let Some(wake) = wake else {
        return (pause(shutdown, d).await, false);
    };
    if *shutdown.borrow() {
        return (true, false);
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => (*shutdown.borrow(), false),
        _ = shutdown.changed() => (true, false),
        _ = wake => (*shutdown.borrow(), true),
    }
}

/// Sleeps, or returns early (true) when shutdown is signalled.
async fn pause(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

/// Takes a session advisory lock on its own connection, waiting as a standby until it gets it.
/// Returns `None` on shutdown.
pub async fn acquire_ownership(
    pool: &PgPool,
    key: &str,
    retry: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<PgConnection>, Error> {
    let mut conn = connect(pool).await?;
    loop {
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(key)
            .fetch_one(&mut conn)
            .await?;
        if got {
            tracing::info!(owner = key, "took ownership");
            return Ok(Some(conn));
        }
        if pause(shutdown, retry).await {
            return Ok(None);
        }
    }
}

/// Runs `pass` again and again as the one owner of `key` across processes (a standby waits for
/// the lock, and takes over when the owner's connection goes away), until shutdown. `pass`
/// says how long to pause before the next pass; the pass in hand is finished before returning.
pub async fn run_owned<F, Fut>(
    pool: &PgPool,
    key: &str,
    standby_retry: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut pass: F,
) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Duration>,
{
    'own: loop {
        let Some(mut lock) = acquire_ownership(pool, key, standby_retry, &mut shutdown).await?
        else {
            return Ok(());
        };
        let mut checked = std::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            if checked.elapsed() >= OWNERSHIP_CHECK {
                if sqlx::query("SELECT 1").execute(&mut lock).await.is_err() {
                    tracing::warn!(owner = key, "lost the ownership connection; standing by");
                    continue 'own;
                }
                checked = std::time::Instant::now();
            }
            let wait = pass().await;
            if pause(&mut shutdown, wait).await {
                return Ok(());
            }
        }
    }
}

/// Runs `reactor` until shutdown. Returns after the batch in hand is checkpointed.
pub async fn run_reactor<R: Reactor>(
    pool: PgPool,
    reactor: Arc<R>,
    config: RunnerConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), Error> {
    let name = reactor.name();
    let lock_key = format!("process:{name}");
    let wake = reactor.wake();
    'own: loop {
        let Some(mut lock_conn) =
            acquire_ownership(&pool, &lock_key, config.standby_retry, &mut shutdown).await?
        else {
            return Ok(());
        };
        let reader = GlobalLogReader::new();
        let mut conn = connect(&pool).await?;
        let mut idle = config.idle_min;
        let mut failures = 0u32;
        let mut checked = std::time::Instant::now();
        // Where this owner stands: read from the database once, then kept (only this owner
        // moves it; a tool draining meanwhile only makes it re-handle events, idempotently).
        let mut at: Option<LogPosition> = None;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            // Still the owner? (A dead lock connection has released the lock.)
            if checked.elapsed() >= OWNERSHIP_CHECK {
                if sqlx::query("SELECT 1")
                    .execute(&mut lock_conn)
                    .await
                    .is_err()
                {
                    tracing::warn!(process = name, "lost the ownership connection; standing by");
                    continue 'own;
                }
                checked = std::time::Instant::now();
            }
            // Listen before reading, so an append signalled while the batch is read is not missed.
            let mut notified = wake.as_ref().map(|n| Box::pin(n.notified()));
            if let Some(n) = notified.as_mut() {
                n.as_mut().enable();
            }
            match run_batch(
                &reactor,
                &reader,
                &mut conn,
                config.batch_size,
                config.concurrency,
                &mut at,
            )
            .await
            {
                Ok(0) => {
                    failures = 0;
                    let (stop, woken) =
                        pause_or_wake(&mut shutdown, idle, notified.as_mut().map(|n| n.as_mut()))
                            .await;
                    if stop {
                        return Ok(());
                    }
                    // Woken: the new events may still be hidden behind a transaction that has
                    // not committed yet, so look again soon.
                    idle = if woken {
                        config.idle_min
                    } else {
                        (idle * 2).min(config.idle_max)
                    };
                }
                Ok(_) => {
                    failures = 0;
                    idle = config.idle_min;
                }
                Err(e) => {
                    at = None;
                    failures += 1;
                    let wait = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
                    tracing::warn!(process = name, error = %e, retry_in_ms = wait.as_millis() as u64,
                        "batch failed; it will be retried, never skipped");
                    if pause(&mut shutdown, wait).await {
                        return Ok(());
                    }
                    if conn.ping().await.is_err() {
                        conn = connect(&pool).await?;
                    }
                }
            }
        }
    }
}

/// Handles batches until none is left below the horizon, without taking ownership (for tools
/// and tests; a running owner would do the same work, idempotently). Returns the events handled.
pub async fn drain<R: Reactor>(pool: &PgPool, reactor: &Arc<R>) -> Result<usize, Error> {
    let reader = GlobalLogReader::new();
    let mut conn = connect(pool).await?;
    let mut total = 0;
    loop {
        match run_batch(reactor, &reader, &mut conn, 500, 64, &mut None).await? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

/// Handles a batch's events: those of one aggregate in log order, different aggregates'
/// concurrently (up to `concurrency` at once). Every event is handled before this returns, and
/// the first error fails the batch (which is then retried whole: reactions are idempotent).
async fn react_partitioned<R: Reactor>(
    reactor: &Arc<R>,
    batch: &[TypedEvent],
    concurrency: usize,
) -> Result<Effects, Error> {
    if concurrency <= 1 {
        let mut effects = Effects::default();
        for event in batch {
            reactor.react(event, &mut effects).await?;
        }
        return Ok(effects);
    }
    let mut partitions: Vec<Vec<&TypedEvent>> = Vec::new();
    let mut index: std::collections::HashMap<(&str, &str), usize> = Default::default();
    for event in batch {
        let key = (
            event.recorded.aggregate_type.as_str(),
            event.recorded.aggregate_id.as_str(),
        );
        let i = *index.entry(key).or_insert_with(|| {
            partitions.push(Vec::new());
            partitions.len() - 1
        });
        partitions[i].push(event);
    }
    // At most `concurrency` partitions at once, each starting as soon as a slot frees up.
    let slots = tokio::sync::Semaphore::new(concurrency);
    let results = futures::future::join_all(
        partitions
            .iter()
            .map(|events| react_in_order(&slots, reactor, events)),
    )
    .await;
    let mut all = Effects::default();
    for r in results {
        let e = r?;
        all.schedule.extend(e.schedule);
        all.unschedule.extend(e.unschedule);
        all.chain_tasks.extend(e.chain_tasks);
    }
    Ok(all)
}

async fn react_in_order<R: Reactor>(
    slots: &tokio::sync::Semaphore,
    reactor: &Arc<R>,
    events: &[&TypedEvent],
) -> Result<Effects, Error> {
    let _slot = slots
        .acquire()
        .await
        .map_err(|e| Error::BatchFailed(e.to_string()))?;
    let mut effects = Effects::default();
    for event in events {
        reactor.react(event, &mut effects).await?;
    }
    Ok(effects)
}

/// Handles one batch; returns how many events it held. `from` is where the reader stands, if
/// known (it is read from the checkpoint otherwise), and is moved past the batch.
async fn run_batch<R: Reactor>(
    reactor: &Arc<R>,
    reader: &GlobalLogReader,
    conn: &mut PgConnection,
    limit: i64,
    concurrency: usize,
    from: &mut Option<LogPosition>,
) -> Result<usize, Error> {
    let name = reactor.name();
    let at = match *from {
        Some(at) => at,
        None => load_checkpoint(conn, name).await?,
    };
    *from = Some(at);
    let batch = reader.read_typed_batch(conn, at, limit).await?;
    let Some(last) = batch.last().map(|e| e.recorded.position) else {
        return Ok(0);
    };
    let effects = react_partitioned(reactor, &batch, concurrency).await?;
    if effects.is_empty() {
        // Nothing to write with it: the checkpoint alone (one statement, atomic by itself).
        save_checkpoint(conn, name, last).await?;
    } else {
        let mut tx = conn.begin().await?;
        scheduler::apply(&mut tx, &effects).await?;
        save_checkpoint(&mut tx, name, last).await?;
        tx.commit().await?;
    }
    *from = Some(last);
    tracing::debug!(process = name, from = %at, to = %last, events = batch.len(), "batch done");
    Ok(batch.len())
}

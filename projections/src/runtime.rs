//! The projector runtime: one tokio task per worker (each projection, and the audit sequencer).
//!
//! A worker owns its job across processes through a session advisory lock taken on a dedicated
//! connection; it runs its batches on that same connection, so if the connection or the process
//! dies, the open batch rolls back and the lock is released together. A process that does not
//! get the lock stands by and tries again every second. Each batch is one transaction: read
//! after the checkpoint, below the transaction horizon; apply; save the checkpoint; commit.
//! When there is nothing to read the worker polls again after 5 ms, doubling up to 250 ms while
//! idle (no NOTIFY in the writers' transactions). An error in the data stops the worker (it
//! never skips an event); a lost connection is retried on a new one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::log::LogPosition;
use futures::future::BoxFuture;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::error::Error;
use crate::log::Reader;
use crate::metrics::{Metrics, WorkerState};
use crate::projection::{apply_batch, BatchResult, Projection, Target, LOCK_CLASS_SQL};

/// A unit of work the runtime drives: a projection, or the audit sequencer.
pub trait Worker: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// The checkpoint's reader name.
    fn reader(&self) -> String;
    /// The name its ownership lock is taken on.
    fn lock_name(&self) -> String;
    /// One batch in the caller's open transaction (which the runtime commits).
    fn batch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        limit: i64,
    ) -> BoxFuture<'a, Result<BatchResult, Error>>;
}

/// A projection driven on its live tables.
pub struct ProjectionWorker {
    projection: Arc<dyn Projection>,
    reader: Reader,
}

impl ProjectionWorker {
    pub fn new(projection: Arc<dyn Projection>) -> Self {
        Self {
            projection,
            reader: Reader::new(),
        }
    }
}

impl Worker for ProjectionWorker {
    fn name(&self) -> &'static str {
        self.projection.name()
    }

    fn reader(&self) -> String {
        Target::Live.reader(self.projection.name())
    }

    fn lock_name(&self) -> String {
        format!("projection:{}", self.projection.name())
    }

    fn batch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        limit: i64,
    ) -> BoxFuture<'a, Result<BatchResult, Error>> {
        Box::pin(apply_batch(
            conn,
            &self.reader,
            self.projection.as_ref(),
            Target::Live,
            limit,
            None,
        ))
    }
}

/// What a hook is told about a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchInfo {
    pub worker: &'static str,
    pub events: usize,
    pub first: Option<LogPosition>,
    pub last: LogPosition,
}

/// Called with the batch applied but not committed (tests use it to stop a projector there).
pub type BeforeCommit = Arc<dyn Fn(BatchInfo) -> BoxFuture<'static, ()> + Send + Sync>;
/// Called right after a batch committed (the benchmark measures lag with it).
pub type AfterCommit = Arc<dyn Fn(BatchInfo, Instant) + Send + Sync>;

/// Test and measurement seams; none by default.
#[derive(Clone, Default)]
pub struct Hooks {
    pub before_commit: Option<BeforeCommit>,
    pub after_commit: Option<AfterCommit>,
}

/// Tuning of the runtime.
#[derive(Clone)]
pub struct RuntimeConfig {
    /// Events per batch.
    pub batch_size: i64,
    /// First poll delay when the log is idle, doubled up to `idle_max`.
    pub idle_min: Duration,
    pub idle_max: Duration,
    /// How often a standby process tries to take ownership.
    pub standby_retry: Duration,
    /// How often lag and horizon figures are sampled.
    pub sample_every: Duration,
    /// How often the figures are logged at info level.
    pub log_every: Duration,
    /// A horizon held back longer than this is logged as a warning.
    pub horizon_warn_after: Duration,
    /// `application_name` of the runtime's connections (shows in `pg_stat_activity`).
    pub application_name: String,
    pub hooks: Hooks,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            idle_min: Duration::from_millis(5),
            idle_max: Duration::from_millis(250),
            standby_retry: Duration::from_secs(1),
            sample_every: Duration::from_secs(1),
            log_every: Duration::from_secs(60),
            horizon_warn_after: Duration::from_secs(5),
            application_name: "trx-energy projector".to_string(),
            hooks: Hooks::default(),
        }
    }
}

/// The running workers.
pub struct RuntimeHandle {
    pub metrics: Metrics,
    shutdown: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<Result<(), Error>>)>,
    monitor: JoinHandle<()>,
}

impl RuntimeHandle {
    /// Asks every worker to stop after its current batch, and waits for them. Returns the
    /// first worker error, if any worker had stopped on one.
    pub async fn shutdown(self) -> Result<(), Error> {
        let _ = self.shutdown.send(true);
        let mut first_error = None;
        for (name, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(join) => tracing::error!(worker = name, error = %join, "worker task panicked"),
            }
        }
        self.monitor.abort();
        first_error.map_or(Ok(()), Err)
    }

    /// Stops the tasks at once, wherever they are (an open batch is rolled back when its
    /// connection is dropped). Models a crash.
    pub fn abort(self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
        self.monitor.abort();
    }

    /// Waits until a worker ends on its own (only on an error: workers run until shutdown).
    pub async fn wait_any_failure(&mut self) -> (&'static str, Error) {
        loop {
            for (name, task) in &mut self.tasks {
                if task.is_finished() {
                    let name = *name;
                    let result = task.await;
                    let error = match result {
                        Ok(Ok(())) => continue,
                        Ok(Err(e)) => e,
                        Err(join) => Error::Busy(format!("worker task ended: {join}")),
                    };
                    return (name, error);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The projector runtime for a set of workers.
pub struct Runtime {
    pool: PgPool,
    workers: Vec<Arc<dyn Worker>>,
    config: RuntimeConfig,
}

impl Runtime {
    pub fn new(pool: PgPool, workers: Vec<Arc<dyn Worker>>, config: RuntimeConfig) -> Self {
        Self {
            pool,
            workers,
            config,
        }
    }

    /// Every projection and the audit sequencer.
    pub fn all(pool: PgPool, config: RuntimeConfig) -> Self {
        let mut workers: Vec<Arc<dyn Worker>> = crate::projection::all()
            .into_iter()
            .map(|p| Arc::new(ProjectionWorker::new(p)) as Arc<dyn Worker>)
            .collect();
        workers.push(Arc::new(crate::audit::Sequencer::new()));
        Self::new(pool, workers, config)
    }

    /// Starts one task per worker, and one that samples and logs the figures.
    pub fn spawn(self) -> RuntimeHandle {
        let metrics = Metrics::default();
        let (tx, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for worker in &self.workers {
            metrics.register(worker.name(), &worker.reader());
            let job = WorkerTask {
                pool: self.pool.clone(),
                worker: worker.clone(),
                config: self.config.clone(),
                metrics: metrics.clone(),
                shutdown: rx.clone(),
            };
            let span = tracing::info_span!("projector", worker = worker.name());
            tasks.push((worker.name(), tokio::spawn(job.run().instrument(span))));
        }
        let monitor = tokio::spawn(monitor(
            self.pool.clone(),
            metrics.clone(),
            self.config.clone(),
            rx,
        ));
        RuntimeHandle {
            metrics,
            shutdown: tx,
            tasks,
            monitor,
        }
    }
}

async fn monitor(
    pool: PgPool,
    metrics: Metrics,
    config: RuntimeConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_log = Instant::now();
    loop {
        let sampled = async {
            let mut conn = pool.acquire().await?;
            metrics.sample(&mut conn).await
        }
        .await;
        match sampled {
            Ok(()) => {
                let verbose = last_log.elapsed() >= config.log_every;
                if verbose {
                    last_log = Instant::now();
                }
                crate::metrics::log(&metrics.snapshot(), config.horizon_warn_after, verbose);
            }
            Err(e) => tracing::debug!(error = %e, "could not sample projection figures"),
        }
        if sleep_or_shutdown(config.sample_every, &mut shutdown).await {
            return;
        }
    }
}

/// Sleeps; true if shutdown was asked for meanwhile.
async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

struct WorkerTask {
    pool: PgPool,
    worker: Arc<dyn Worker>,
    config: RuntimeConfig,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
}

enum Owned {
    Yes,
    No,
}

impl WorkerTask {
    fn name(&self) -> &'static str {
        self.worker.name()
    }

    async fn connect(&self) -> Result<PgConnection, Error> {
        let options = (*self.pool.connect_options())
            .clone()
            .application_name(&format!("{} {}", self.config.application_name, self.name()));
        Ok(PgConnection::connect_with(&options).await?)
    }

    async fn try_own(&self, conn: &mut PgConnection) -> Result<Owned, Error> {
        let got: bool = sqlx::query_scalar(&format!(
            "SELECT pg_try_advisory_lock({LOCK_CLASS_SQL}, hashtext($1))"
        ))
        .bind(self.worker.lock_name())
        .fetch_one(conn)
        .await?;
        Ok(if got { Owned::Yes } else { Owned::No })
    }

    async fn run(mut self) -> Result<(), Error> {
        let mut conn: Option<PgConnection> = None;
        let mut standing_by = false;
        loop {
            if *self.shutdown.borrow() {
                self.metrics.set_state(self.name(), WorkerState::Stopped);
                return Ok(());
            }
            let c = match conn.as_mut() {
                Some(c) => c,
                None => match self.connect().await {
                    Ok(c) => conn.insert(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot connect; retrying");
                        self.metrics
                            .set_state(self.name(), WorkerState::Reconnecting);
                        let retry = self.config.standby_retry;
                        sleep_or_shutdown(retry, &mut self.shutdown).await;
                        continue;
                    }
                },
            };
            match self.try_own(c).await {
                Ok(Owned::Yes) => {}
                Ok(Owned::No) => {
                    if !standing_by {
                        tracing::info!("another process owns this worker; standing by");
                        standing_by = true;
                    }
                    self.metrics.set_state(self.name(), WorkerState::Standby);
                    let retry = self.config.standby_retry;
                    sleep_or_shutdown(retry, &mut self.shutdown).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lost the connection while taking ownership");
                    conn = None;
                    continue;
                }
            }
            standing_by = false;
            tracing::info!("took ownership");
            self.metrics.set_state(self.name(), WorkerState::Running);
            let Some(c) = conn.as_mut() else { continue };
            match self.drive(c).await {
                Ok(()) => {
                    // Shutdown: release ownership so a standby takes over at once.
                    let _ = sqlx::query(&format!(
                        "SELECT pg_advisory_unlock({LOCK_CLASS_SQL}, hashtext($1))"
                    ))
                    .bind(self.worker.lock_name())
                    .execute(&mut *c)
                    .await;
                    if let Some(c) = conn.take() {
                        let _ = c.close().await;
                    }
                    self.metrics.set_state(self.name(), WorkerState::Stopped);
                    tracing::info!("stopped");
                    return Ok(());
                }
                Err(e) if e.is_connection() => {
                    tracing::warn!(error = %e, "lost the database connection; the open batch was rolled back, reconnecting");
                    self.metrics
                        .set_state(self.name(), WorkerState::Reconnecting);
                    conn = None;
                    let retry = self.config.idle_max;
                    sleep_or_shutdown(retry, &mut self.shutdown).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "stopped on an error; it resumes from its checkpoint when restarted");
                    self.metrics
                        .set_state(self.name(), WorkerState::Failed(e.to_string()));
                    return Err(e);
                }
            }
        }
    }

    /// Runs batches until shutdown (Ok) or an error.
    async fn drive(&mut self, conn: &mut PgConnection) -> Result<(), Error> {
        let mut idle = self.config.idle_min;
        let mut last_applied = Instant::now();
        loop {
            if *self.shutdown.borrow() {
                return Ok(());
            }
            let span = tracing::info_span!(
                "projection.batch",
                worker = self.name(),
                from = tracing::field::Empty,
                to = tracing::field::Empty,
                events = tracing::field::Empty,
            );
            let applied = self.one_batch(conn).instrument(span).await?;
            if applied {
                idle = self.config.idle_min;
                last_applied = Instant::now();
            } else {
                if sleep_or_shutdown(idle, &mut self.shutdown).await {
                    return Ok(());
                }
                // Back off while the log is quiet; while events keep coming (a transaction in
                // flight often holds the horizon for a few milliseconds), stay quick.
                let cap = if last_applied.elapsed() < Duration::from_secs(1) {
                    self.config.idle_min * 2
                } else {
                    self.config.idle_max
                };
                idle = (idle * 2).min(cap);
            }
        }
    }

    async fn one_batch(&self, conn: &mut PgConnection) -> Result<bool, Error> {
        let mut tx = conn.begin().await?;
        let result = self.worker.batch(&mut tx, self.config.batch_size).await?;
        if result.events == 0 {
            tx.commit().await?;
            return Ok(false);
        }
        let span = tracing::Span::current();
        if let Some(first) = result.first {
            span.record("from", tracing::field::display(first));
        }
        span.record("to", tracing::field::display(result.position));
        span.record("events", result.events);
        let info = BatchInfo {
            worker: self.name(),
            events: result.events,
            first: result.first,
            last: result.position,
        };
        if let Some(hook) = &self.config.hooks.before_commit {
            hook(info).await;
        }
        tx.commit().await?;
        let committed = Instant::now();
        if let Some(hook) = &self.config.hooks.after_commit {
            hook(info, committed);
        }
        self.metrics
            .applied(self.name(), result.events, result.position);
        tracing::debug!(events = result.events, to = %result.position, "batch applied");
        Ok(true)
    }
}

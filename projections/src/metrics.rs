//! What the runtime knows about its workers, for logs now and the API's `/metrics` later:
//! per worker its state, checkpoint, events applied, and how far it is behind the head of the
//! log (in events and in seconds); and for the whole cluster, for how long the transaction
//! horizon has been held back by the oldest transaction that holds a transaction id.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::log::LogPosition;
use serde::Serialize;
use sqlx::PgConnection;

use crate::error::Error;

/// Where a worker stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum WorkerState {
    Starting,
    /// Another process owns it; this one retries every second.
    Standby,
    Running,
    /// Lost its connection; nothing of the open batch was committed.
    Reconnecting,
    /// Stopped on an error; it never skips the event it failed on.
    Failed(String),
    Stopped,
}

/// One worker's figures.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    pub name: String,
    /// The checkpoint's reader name in `reader_checkpoints`.
    pub reader: String,
    pub state: WorkerState,
    pub checkpoint: LogPosition,
    /// Events this process applied.
    pub events_applied: u64,
    pub batches: u64,
    /// Events recorded after the checkpoint (counted up to a cap of 1,000,000).
    pub events_behind: u64,
    /// Age of the oldest event after the checkpoint (0 when caught up).
    pub seconds_behind: f64,
    pub last_batch_at: Option<DateTime<Utc>>,
}

/// The oldest transaction holding a transaction id, which holds every reader's horizon.
#[derive(Debug, Clone, Serialize)]
pub struct HorizonHold {
    pub pid: i32,
    pub application_name: String,
    pub state: Option<String>,
    pub xact_start: Option<DateTime<Utc>>,
    pub query_start: Option<DateTime<Utc>>,
    pub held_seconds: f64,
}

/// A copy of every figure at one moment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MetricsSnapshot {
    pub workers: Vec<WorkerStatus>,
    /// `None` when no transaction holds an id (nothing holds the horizon).
    pub horizon: Option<HorizonHold>,
    pub sampled_at: Option<DateTime<Utc>>,
}

/// Shared, cheaply cloned handle on the figures.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    workers: BTreeMap<String, WorkerStatus>,
    horizon: Option<HorizonHold>,
    sampled_at: Option<DateTime<Utc>>,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub(crate) fn register(&self, name: &str, reader: &str) {
        self.with(|m| {
            m.workers.insert(
                name.to_string(),
                WorkerStatus {
                    name: name.to_string(),
                    reader: reader.to_string(),
                    state: WorkerState::Starting,
                    checkpoint: LogPosition::START,
                    events_applied: 0,
                    batches: 0,
                    events_behind: 0,
                    seconds_behind: 0.0,
                    last_batch_at: None,
                },
            );
        });
    }

    pub(crate) fn set_state(&self, name: &str, state: WorkerState) {
        self.with(|m| {
            if let Some(w) = m.workers.get_mut(name) {
                w.state = state;
            }
        });
    }

    pub(crate) fn applied(&self, name: &str, events: usize, position: LogPosition) {
        self.with(|m| {
            if let Some(w) = m.workers.get_mut(name) {
                w.events_applied += events as u64;
                w.batches += 1;
                w.checkpoint = position;
                w.last_batch_at = Some(Utc::now());
            }
        });
    }

    /// The figures now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.with(|m| MetricsSnapshot {
            workers: m.workers.values().cloned().collect(),
            horizon: m.horizon.clone(),
            sampled_at: m.sampled_at,
        })
    }

    /// One worker's figures.
    pub fn worker(&self, name: &str) -> Option<WorkerStatus> {
        self.with(|m| m.workers.get(name).cloned())
    }

    /// Reads lag and horizon figures from the database (cheap, bounded queries).
    pub async fn sample(&self, conn: &mut PgConnection) -> Result<(), Error> {
        let readers: Vec<(String, String)> = self.with(|m| {
            m.workers
                .values()
                .map(|w| (w.name.clone(), w.reader.clone()))
                .collect()
        });
        for (name, reader) in readers {
            let lag = lag(conn, &reader).await?;
            self.with(|m| {
                if let Some(w) = m.workers.get_mut(&name) {
                    w.checkpoint = w.checkpoint.max(lag.0);
                    w.events_behind = lag.1;
                    w.seconds_behind = lag.2;
                }
            });
        }
        let horizon = horizon(conn).await?;
        self.with(|m| {
            m.horizon = horizon;
            m.sampled_at = Some(Utc::now());
        });
        Ok(())
    }
}

/// A reader's checkpoint, how many events follow it, and the age of the first of them.
pub async fn lag(conn: &mut PgConnection, reader: &str) -> Result<(LogPosition, u64, f64), Error> {
    let at = engine::log::load_checkpoint(conn, reader).await?;
    let (behind, seconds): (i64, Option<f64>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM events \
                  WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
                  ORDER BY events.transaction_id, events.global_position LIMIT 1000000) s), \
                (SELECT extract(epoch FROM now() - recorded_at)::float8 FROM events \
                  WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
                  ORDER BY events.transaction_id, events.global_position LIMIT 1)",
    )
    .bind(at.transaction_id.to_string())
    .bind(at.global_position)
    .fetch_one(conn)
    .await?;
    Ok((at, behind as u64, seconds.unwrap_or(0.0).max(0.0)))
}

/// The oldest transaction in the cluster that holds a transaction id (other than ours), or a
/// prepared transaction: what `pg_snapshot_xmin(pg_current_snapshot())` waits for.
pub async fn horizon(conn: &mut PgConnection) -> Result<Option<HorizonHold>, Error> {
    type Row = (
        i32,
        Option<String>,
        Option<String>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<f64>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT pid, application_name, state, xact_start, query_start, \
                extract(epoch FROM now() - xact_start)::float8 \
         FROM pg_stat_activity \
         WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() \
         UNION ALL \
         SELECT 0, 'prepared transaction ' || gid, 'prepared', prepared, prepared, \
                extract(epoch FROM now() - prepared)::float8 \
         FROM pg_prepared_xacts \
         ORDER BY 6 DESC NULLS LAST LIMIT 1",
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(
        |(pid, application_name, state, xact_start, query_start, held)| HorizonHold {
            pid,
            application_name: application_name.unwrap_or_default(),
            state,
            xact_start,
            query_start,
            held_seconds: held.unwrap_or(0.0).max(0.0),
        },
    ))
}

/// Logs the figures: a warning for a horizon held longer than `warn_after`, and one line per
/// worker when `verbose`.
pub(crate) fn log(snapshot: &MetricsSnapshot, warn_after: Duration, verbose: bool) {
    if let Some(h) = &snapshot.horizon {
        if h.held_seconds >= warn_after.as_secs_f64() {
            tracing::warn!(
                pid = h.pid,
                application = %h.application_name,
                state = h.state.as_deref().unwrap_or(""),
                xact_start = ?h.xact_start,
                query_start = ?h.query_start,
                held_seconds = h.held_seconds,
                "a long-running transaction holds the log's horizon back: no reader gets events \
                 committed after it began until it ends"
            );
        }
    }
    if verbose {
        for w in &snapshot.workers {
            tracing::info!(
                worker = %w.name,
                state = ?w.state,
                checkpoint = %w.checkpoint,
                events_behind = w.events_behind,
                seconds_behind = w.seconds_behind,
                events_applied = w.events_applied,
                "projection status"
            );
        }
    }
}

//! What a projection is: a name, the view tables it owns, and how it applies a batch of events
//! (in log order) to those tables inside the caller's transaction. The runtime, the rebuild and
//! the tests all apply batches through [`apply_batch`], which also moves the checkpoint in the
//! same transaction, so each event takes effect exactly once.

use std::sync::Arc;

use engine::log::{load_checkpoint, save_checkpoint, LogPosition};
use futures::future::BoxFuture;
use sqlx::PgConnection;

use crate::error::Error;
use crate::log::{Event, Reader};
use crate::rows::RowCache;

/// Which copy of a projection's tables a batch is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The tables the finance team queries.
    Live,
    /// The shadow copy a rebuild fills from position zero (`<table>__rebuild`).
    Shadow,
}

/// The suffix of shadow tables.
pub const SHADOW_SUFFIX: &str = "__rebuild";

impl Target {
    /// The name of `table` in this copy.
    pub fn table(self, table: &str) -> String {
        match self {
            Target::Live => table.to_string(),
            Target::Shadow => format!("{table}{SHADOW_SUFFIX}"),
        }
    }

    /// The checkpoint (reader) name of `projection` in this copy.
    pub fn reader(self, projection: &str) -> String {
        match self {
            Target::Live => format!("projection:{projection}"),
            Target::Shadow => format!("projection:{projection}{SHADOW_SUFFIX}"),
        }
    }
}

/// A read model built from the global log.
pub trait Projection: Send + Sync + 'static {
    /// Stable name: checkpoints, locks and `trx-energy rebuild <name>` use it.
    fn name(&self) -> &'static str;

    /// The tables it writes (created by a migration), in dependency-free order.
    fn tables(&self) -> &'static [&'static str];

    /// Applies `events` (consecutive, in log order) to the `target` tables, in the caller's
    /// transaction. Must not commit, and must not skip an event it does not understand: an
    /// error stops the projection.
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        target: Target,
        events: &'a [Event],
        cache: &'a mut RowCache,
    ) -> BoxFuture<'a, Result<(), Error>>;
}

/// Every projection of the system, in a fixed order.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(crate::views::balances::AccountBalances),
        Arc::new(crate::views::orders::Orders),
        Arc::new(crate::views::deposits::Deposits),
        Arc::new(crate::views::wallets::WalletUtilisation),
        Arc::new(crate::views::daily::DailyFinance),
    ]
}

/// The names of every projection.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|p| p.name()).collect()
}

/// The projection called `name`.
pub fn by_name(name: &str) -> Result<Arc<dyn Projection>, Error> {
    all()
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| Error::UnknownProjection(name.to_string(), names().join(", ")))
}

/// Key pair of the session lock that makes one process the owner of a worker (projection or
/// audit sequencer). Two-key advisory locks, so they never collide with sqlx's migration lock.
pub(crate) const LOCK_CLASS_SQL: &str = "hashtext('trx-energy')";

/// Takes the per-projection transaction lock every batch of `projection` holds (live or shadow
/// writers alike), so a rebuild's swap or check never interleaves with a batch.
pub async fn lock_batches(conn: &mut PgConnection, projection: &str) -> Result<(), Error> {
    sqlx::query(&format!(
        "SELECT pg_advisory_xact_lock({LOCK_CLASS_SQL}, hashtext('projection-batch:' || $1))"
    ))
    .bind(projection)
    .execute(conn)
    .await?;
    Ok(())
}

/// Makes the open transaction's commit return before its WAL is flushed. Safe for derived data
/// (view rows, audit rows) written with their checkpoint: a crash can only lose the latest such
/// commits whole, rows and checkpoint together, and they are applied again; the events they come
/// from are committed durably by the writers. It shortens every batch, and so the time each
/// batch holds back the transaction horizon for the other readers.
pub async fn relax_commit(conn: &mut PgConnection) -> Result<(), Error> {
    sqlx::query("SELECT set_config('synchronous_commit', 'off', true)")
        .execute(conn)
        .await?;
    Ok(())
}

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchResult {
    pub events: usize,
    /// The checkpoint after the batch (unchanged when `events` is 0).
    pub position: LogPosition,
    pub first: Option<LogPosition>,
}

/// One batch of `projection` into `target`, in the caller's open transaction: takes the batch
/// lock (live target only; the shadow has a single writer, its rebuild), reads up to `limit` events after the checkpoint (below the transaction horizon, and not
/// past `until` when given), applies them, and saves the checkpoint. The caller commits.
pub async fn apply_batch(
    conn: &mut PgConnection,
    reader: &Reader,
    projection: &dyn Projection,
    target: Target,
    limit: i64,
    until: Option<LogPosition>,
) -> Result<BatchResult, Error> {
    if target == Target::Live {
        // Asynchronous commit (see `relax_commit`) and the batch lock, in one round trip.
        sqlx::query(&format!(
            "SELECT set_config('synchronous_commit', 'off', true), \
                    pg_advisory_xact_lock({LOCK_CLASS_SQL}, hashtext('projection-batch:' || $1))"
        ))
        .bind(projection.name())
        .execute(&mut *conn)
        .await?;
    } else {
        relax_commit(conn).await?;
    }
    let name = target.reader(projection.name());
    let at = load_checkpoint(conn, &name).await?;
    let mut events = reader.read(conn, at, limit).await?;
    if let Some(until) = until {
        events.retain(|e| e.position <= until);
    }
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(BatchResult {
            events: 0,
            position: at,
            first: None,
        });
    };
    let first = events.first().map(|e| e.position);
    projection
        .apply(conn, target, &events, &mut RowCache::none())
        .await?;
    save_checkpoint(conn, &name, last).await?;
    Ok(BatchResult {
        events: events.len(),
        position: last,
        first,
    })
}

//! Rebuilds: fill shadow tables (`<table>__rebuild`) from position zero while the live
//! projection keeps running, catch up, and swap them in atomically; or (`check`) compare a fresh
//! rebuild with the live tables and report the differences.
//!
//! 1. Take the rebuild lock of each projection (one rebuild at a time per projection).
//! 2. Create the shadow tables as copies of the live ones (columns, defaults, checks, primary
//!    key; the other indexes are added after the load) and forget the shadow checkpoints.
//! 3. Read the log once from the start, applying each batch to every shadow and saving their
//!    checkpoints in the same transaction, until the horizon.
//! 4. In one transaction that holds every projection's batch lock (so no live batch is in
//!    flight), bring the shadow and, for a check, the live tables to the same log position;
//!    then either compare them (`EXCEPT` both ways) or drop the live tables, rename the shadows
//!    into their place and move the live checkpoint to the shadow's position.
//!
//! A live projector blocked on the batch lock during the swap continues afterwards on the new
//! tables from the moved checkpoint.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::log::{load_checkpoint, save_checkpoint, LogPosition};
use sqlx::{Connection, PgConnection, PgPool};

use crate::error::Error;
use crate::log::{Event, Reader};
use crate::projection::{
    apply_batch, lock_batches, relax_commit, Projection, Target, LOCK_CLASS_SQL, SHADOW_SUFFIX,
};
use crate::rows::RowCache;

/// Tuning and mode of a rebuild.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// Events per shadow batch.
    pub batch_size: i64,
    /// Compare with the live tables instead of swapping.
    pub check: bool,
    /// Rows shown per difference.
    pub max_rows_shown: usize,
    /// Rows kept in memory while building (beyond it, rows are loaded from the shadow).
    pub cache_rows: usize,
    /// While the rows are in memory, write them (and the checkpoints) every this many events.
    pub flush_every: i64,
}

impl Default for RebuildOptions {
    fn default() -> Self {
        Self {
            batch_size: 5_000,
            check: false,
            max_rows_shown: 10,
            cache_rows: 2_000_000,
            flush_every: 1_000_000,
        }
    }
}

/// What the progress callback is told.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub events: u64,
    /// Events in the log (grows while commands keep arriving).
    pub total: u64,
    pub phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Building,
    Indexing,
    Swapping,
    Comparing,
    Done,
}

/// Rows of one table that are in one copy and not the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDifference {
    pub table: String,
    /// Rows in the live table that a rebuild does not produce.
    pub only_live: u64,
    /// Rows a rebuild produces that the live table does not have.
    pub only_rebuilt: u64,
    /// Up to `max_rows_shown` rows of each, as JSON.
    pub live_rows: Vec<String>,
    pub rebuilt_rows: Vec<String>,
}

/// The outcome of a rebuild.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    pub projections: Vec<&'static str>,
    /// Events applied to the shadows.
    pub events: u64,
    pub elapsed: Duration,
    /// The log position the tables were brought to.
    pub position: LogPosition,
    pub swapped: bool,
    /// Only for a check: empty when the live tables equal the rebuild.
    pub differences: Vec<TableDifference>,
    /// Where the build's time went: waiting for the reader, applying in memory, writing.
    pub waiting_for_reads: Duration,
    pub applying: Duration,
    pub writing: Duration,
}

impl RebuildReport {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

struct IndexDef {
    name: String,
    definition: String,
    primary: bool,
}

/// The indexes of a table, with their definitions rewritten for its shadow.
async fn shadow_indexes(conn: &mut PgConnection, table: &str) -> Result<Vec<IndexDef>, Error> {
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT c.relname::text, pg_get_indexdef(i.indexrelid), i.indisprimary \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = $1::regclass ORDER BY NOT i.indisprimary, c.relname",
    )
    .bind(table)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(name, def, primary)| {
            // "CREATE [UNIQUE] INDEX <name> ON <schema>.<table> USING …"
            let on = def
                .find(" ON ")
                .ok_or_else(|| Error::corrupt(format!("index {name}"), &def))?;
            let using = def
                .find(" USING ")
                .ok_or_else(|| Error::corrupt(format!("index {name}"), &def))?;
            let head =
                def[..on].replacen(&format!(" {name}"), &format!(" {name}{SHADOW_SUFFIX}"), 1);
            let definition = format!(
                "{head} ON {}{SHADOW_SUFFIX}{}",
                &def[on + 4..using],
                &def[using..]
            );
            Ok(IndexDef {
                name,
                definition,
                primary,
            })
        })
        .collect()
}

async fn prepare_shadows(
    conn: &mut PgConnection,
    projections: &[Arc<dyn Projection>],
) -> Result<Vec<String>, Error> {
    let mut tx = conn.begin().await?;
    let mut deferred = Vec::new();
    for p in projections {
        for table in p.tables() {
            let shadow = Target::Shadow.table(table);
            sqlx::query(&format!("DROP TABLE IF EXISTS {shadow}"))
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!(
                "CREATE TABLE {shadow} (LIKE {table} INCLUDING ALL EXCLUDING INDEXES)"
            ))
            .execute(&mut *tx)
            .await?;
            for index in shadow_indexes(&mut tx, table).await? {
                if index.primary {
                    sqlx::query(&index.definition).execute(&mut *tx).await?;
                    sqlx::query(&format!(
                        "ALTER TABLE {shadow} ADD CONSTRAINT {n}{SHADOW_SUFFIX} \
                         PRIMARY KEY USING INDEX {n}{SHADOW_SUFFIX}",
                        n = index.name
                    ))
                    .execute(&mut *tx)
                    .await?;
                } else {
                    deferred.push(index.definition);
                }
            }
        }
        sqlx::query("DELETE FROM reader_checkpoints WHERE reader = $1")
            .bind(Target::Shadow.reader(p.name()))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(deferred)
}

async fn drop_shadows(
    conn: &mut PgConnection,
    projections: &[Arc<dyn Projection>],
) -> Result<(), Error> {
    let mut tx = conn.begin().await?;
    for p in projections {
        for table in p.tables() {
            sqlx::query(&format!(
                "DROP TABLE IF EXISTS {}",
                Target::Shadow.table(table)
            ))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM reader_checkpoints WHERE reader = $1")
            .bind(Target::Shadow.reader(p.name()))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Applies `projection`'s events after its `target` checkpoint up to and including `until`.
async fn catch_up(
    conn: &mut PgConnection,
    reader: &Reader,
    projection: &dyn Projection,
    target: Target,
    until: LogPosition,
    batch: i64,
) -> Result<u64, Error> {
    let mut applied = 0;
    loop {
        let at = load_checkpoint(conn, &target.reader(projection.name())).await?;
        if at >= until {
            return Ok(applied);
        }
        let r = apply_batch(conn, reader, projection, target, batch, Some(until)).await?;
        if r.events == 0 {
            return Err(Error::Busy(format!(
                "{} could not reach log position {until} from {at}",
                projection.name()
            )));
        }
        applied += r.events as u64;
    }
}

async fn except_rows(conn: &mut PgConnection, a: &str, b: &str) -> Result<Vec<String>, Error> {
    let sql = format!(
        "SELECT to_jsonb(d)::text FROM (SELECT * FROM {a} EXCEPT SELECT * FROM {b}) d ORDER BY 1"
    );
    Ok(sqlx::query_scalar::<_, String>(&sql)
        .fetch_all(conn)
        .await?)
}

async fn compare(
    conn: &mut PgConnection,
    table: &str,
    max_rows: usize,
) -> Result<Option<TableDifference>, Error> {
    let shadow = Target::Shadow.table(table);
    let only_live = except_rows(conn, table, &shadow).await?;
    let only_rebuilt = except_rows(conn, &shadow, table).await?;
    if only_live.is_empty() && only_rebuilt.is_empty() {
        return Ok(None);
    }
    Ok(Some(TableDifference {
        table: table.to_string(),
        only_live: only_live.len() as u64,
        only_rebuilt: only_rebuilt.len() as u64,
        live_rows: only_live.into_iter().take(max_rows).collect(),
        rebuilt_rows: only_rebuilt.into_iter().take(max_rows).collect(),
    }))
}

async fn swap(conn: &mut PgConnection, table: &str) -> Result<(), Error> {
    let shadow = Target::Shadow.table(table);
    sqlx::query(&format!("DROP TABLE {table}"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("ALTER TABLE {shadow} RENAME TO {table}"))
        .execute(&mut *conn)
        .await?;
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = $1::regclass",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    for index in indexes {
        if let Some(base) = index.strip_suffix(SHADOW_SUFFIX) {
            sqlx::query(&format!("ALTER INDEX {index} RENAME TO {base}"))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Writes the rows changed in memory and the shadows' checkpoints, in one transaction.
async fn flush(
    conn: &mut PgConnection,
    projections: &[Arc<dyn Projection>],
    cache: &mut RowCache,
    last: LogPosition,
) -> Result<(), Error> {
    let mut tx = conn.begin().await?;
    relax_commit(&mut tx).await?;
    cache.flush(&mut tx).await?;
    for p in projections {
        save_checkpoint(&mut tx, &Target::Shadow.reader(p.name()), last).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn events_in_log(conn: &mut PgConnection) -> Result<u64, Error> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(conn)
        .await?;
    Ok(n as u64)
}

/// The first of `names` that a rebuild (in any process) is working on now, if any: for a caller
/// that wants to refuse early. Only a hint: [`rebuild`] itself takes the lock and is refused
/// with [`Error::Busy`] if it lost a race.
pub async fn rebuild_running(pool: &PgPool, names: &[&str]) -> Result<Option<String>, Error> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT n FROM unnest($1::text[]) AS n WHERE EXISTS ( \
           SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND l.classid = ({LOCK_CLASS_SQL})::oid AND l.objsubid = 2 \
             AND l.objid = hashtext('rebuild:' || n)::oid) \
         LIMIT 1"
    ))
    .bind(names)
    .fetch_optional(pool)
    .await?)
}

/// Rebuilds `projections` (swap), or checks them against the live tables (`options.check`).
pub async fn rebuild(
    pool: &PgPool,
    projections: &[Arc<dyn Projection>],
    options: &RebuildOptions,
    mut progress: impl FnMut(Progress),
) -> Result<RebuildReport, Error> {
    let started = Instant::now();
    let mut projections: Vec<Arc<dyn Projection>> = projections.to_vec();
    projections.sort_by_key(|p| p.name());
    projections.dedup_by_key(|p| p.name());
    let names: Vec<&'static str> = projections.iter().map(|p| p.name()).collect();
    let options_conn = (*pool.connect_options())
        .clone()
        .application_name("trx-energy rebuild");
    let mut conn = PgConnection::connect_with(&options_conn).await?;
    // `DROP TABLE IF EXISTS` of a missing shadow is not news.
    sqlx::query("SET client_min_messages = warning")
        .execute(&mut conn)
        .await?;
    // 1. One rebuild per projection at a time (the session lock goes with this connection).
    for name in &names {
        let got: bool = sqlx::query_scalar(&format!(
            "SELECT pg_try_advisory_lock({LOCK_CLASS_SQL}, hashtext('rebuild:' || $1))"
        ))
        .bind(name)
        .fetch_one(&mut conn)
        .await?;
        if !got {
            return Err(Error::Busy(format!("another rebuild of {name} is running")));
        }
    }
    let outcome = run(
        &mut conn,
        &options_conn,
        &projections,
        options,
        &mut progress,
        started,
    )
    .await;
    let cleanup = if options.check || outcome.is_err() {
        drop_shadows(&mut conn, &projections).await
    } else {
        Ok(())
    };
    // Release the rebuild locks before closing: the server ends the session (and drops its
    // locks) only after the connection is gone, which a rebuild right after this one could beat.
    let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    let report = outcome?;
    cleanup?;
    Ok(report)
}

async fn run(
    conn: &mut PgConnection,
    pool_options: &sqlx::postgres::PgConnectOptions,
    projections: &[Arc<dyn Projection>],
    options: &RebuildOptions,
    progress: &mut impl FnMut(Progress),
    started: Instant,
) -> Result<RebuildReport, Error> {
    let reader = Reader::new();
    let names: Vec<&'static str> = projections.iter().map(|p| p.name()).collect();
    // 2. Fresh shadows.
    let deferred_indexes = prepare_shadows(conn, projections).await?;
    // 3. One pass over the log for every shadow. A second connection reads the next batch while
    //    this one applies the current one; each batch commits with the shadows' checkpoints.
    let mut total = events_in_log(conn).await?;
    let mut events = 0u64;
    let mut last_total_check = Instant::now();
    progress(Progress {
        events,
        total,
        phase: Phase::Building,
    });
    let (tx_batches, mut batches) = tokio::sync::mpsc::channel::<Result<Vec<Event>, Error>>(2);
    let mut read_conn = PgConnection::connect_with(pool_options).await?;
    let batch_size = options.batch_size;
    let prefetch = tokio::spawn(async move {
        let reader = Reader::new();
        let mut at = LogPosition::START;
        loop {
            let batch = reader.read(&mut read_conn, at, batch_size).await;
            let done = match &batch {
                Ok(b) => match b.last() {
                    Some(e) => {
                        at = e.position;
                        false
                    }
                    None => true,
                },
                Err(_) => true,
            };
            if tx_batches.send(batch).await.is_err() || done {
                break;
            }
        }
        let _ = read_conn.close().await;
    });
    let mut cache = RowCache::for_rebuild(options.cache_rows);
    let mut unflushed: Option<LogPosition> = None;
    let mut since_flush = 0i64;
    let (mut waiting_for_reads, mut applying, mut writing) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    loop {
        let t = Instant::now();
        let Some(batch) = batches.recv().await else {
            break;
        };
        waiting_for_reads += t.elapsed();
        let batch = batch?;
        let Some(last) = batch.last().map(|e| e.position) else {
            break;
        };
        let t = Instant::now();
        if cache.in_memory() {
            // Memory only; written by the next flush.
            for p in projections {
                p.apply(conn, Target::Shadow, &batch, &mut cache).await?;
            }
            unflushed = Some(last);
            since_flush += batch.len() as i64;
            applying += t.elapsed();
            if since_flush >= options.flush_every {
                let t = Instant::now();
                flush(conn, projections, &mut cache, last).await?;
                writing += t.elapsed();
                unflushed = None;
                since_flush = 0;
            }
        } else {
            let mut tx = conn.begin().await?;
            relax_commit(&mut tx).await?;
            for p in projections {
                p.apply(&mut tx, Target::Shadow, &batch, &mut cache).await?;
                save_checkpoint(&mut tx, &Target::Shadow.reader(p.name()), last).await?;
            }
            tx.commit().await?;
            writing += t.elapsed();
        }
        events += batch.len() as u64;
        if last_total_check.elapsed() > Duration::from_secs(2) {
            total = events_in_log(conn).await?;
            last_total_check = Instant::now();
        }
        progress(Progress {
            events,
            total: total.max(events),
            phase: Phase::Building,
        });
    }
    if let Some(last) = unflushed {
        let t = Instant::now();
        flush(conn, projections, &mut cache, last).await?;
        writing += t.elapsed();
    }
    drop(cache);
    prefetch
        .await
        .map_err(|e| Error::Busy(format!("the rebuild's reader ended: {e}")))?;
    progress(Progress {
        events,
        total: events,
        phase: Phase::Indexing,
    });
    for definition in deferred_indexes {
        sqlx::query(&definition).execute(&mut *conn).await?;
    }
    // Statistics, so the live projector's first batches on the new tables plan index scans.
    for p in projections {
        for table in p.tables() {
            sqlx::query(&format!("ANALYZE {}", Target::Shadow.table(table)))
                .execute(&mut *conn)
                .await?;
        }
    }
    // 4. Bring both copies to one position under the batch locks, then compare or swap.
    progress(Progress {
        events,
        total: events,
        phase: if options.check {
            Phase::Comparing
        } else {
            Phase::Swapping
        },
    });
    let mut tx = conn.begin().await?;
    for name in &names {
        lock_batches(&mut tx, name).await?;
    }
    let mut positions = HashMap::new();
    let mut position = LogPosition::START;
    for p in projections {
        let live = load_checkpoint(&mut tx, &Target::Live.reader(p.name())).await?;
        let shadow = load_checkpoint(&mut tx, &Target::Shadow.reader(p.name())).await?;
        let target = live.max(shadow);
        events += catch_up(
            &mut tx,
            &reader,
            p.as_ref(),
            Target::Shadow,
            target,
            options.batch_size,
        )
        .await?;
        if options.check {
            catch_up(
                &mut tx,
                &reader,
                p.as_ref(),
                Target::Live,
                target,
                options.batch_size,
            )
            .await?;
        }
        positions.insert(p.name(), target);
        position = position.max(target);
    }
    let mut differences = Vec::new();
    if options.check {
        for p in projections {
            for table in p.tables() {
                if let Some(d) = compare(&mut tx, table, options.max_rows_shown).await? {
                    differences.push(d);
                }
            }
        }
        // The live catch-up above is the projector's own work; leave it to the projector.
        tx.rollback().await?;
    } else {
        for p in projections {
            for table in p.tables() {
                swap(&mut tx, table).await?;
            }
            save_checkpoint(&mut tx, &Target::Live.reader(p.name()), positions[p.name()]).await?;
            sqlx::query("DELETE FROM reader_checkpoints WHERE reader = $1")
                .bind(Target::Shadow.reader(p.name()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    progress(Progress {
        events,
        total: events,
        phase: Phase::Done,
    });
    Ok(RebuildReport {
        projections: names,
        events,
        elapsed: started.elapsed(),
        position,
        swapped: !options.check,
        differences,
        waiting_for_reads,
        applying,
        writing,
    })
}

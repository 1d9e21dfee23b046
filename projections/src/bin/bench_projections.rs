//! Benchmark of the projections and the audit chain (docs/projections.md has figures):
//!
//! ```sh
//! cargo run --release -p projections --features testing --bin bench-projections -- \
//!     --events 1000000 --rate 1000 --lag-seconds 20
//! ```
//!
//! On a fresh test database (DATABASE_URL's server, or the private test cluster) it generates
//! `--events` events of the real domain (accounts, deposits, orders with every outcome, pool
//! wallets) and bulk-inserts them, then reports in one run:
//! 1. the raw read rate of the events table (`COPY (SELECT …) TO STDOUT`, every column);
//! 2. a rebuild of every projection from position zero, in events per second and as a share of
//!    the raw read rate;
//! 3. the audit sequencer and `audit verify`, in events per second;
//! 4. projection lag (command committed → visible in every view) at p50/p99 while commands
//!    arrive through the command buses at `--rate` per second for `--lag-seconds`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::domain::{
    AccountCommand, AccountEvent, DepositCommand, DepositEvent, OrderCommand, OrderEvent,
    WalletCommand, WalletEvent,
};
use engine::log::LogPosition;
use engine::store::{Actor, CommandMetadata};
use engine::testing::TestDb;
use futures::StreamExt;
use projections::rebuild::{rebuild, RebuildOptions};
use projections::runtime::{BatchInfo, Hooks};
use projections::testing::{flow, insert_commits, rng, setup, Buses, Ctx, Exec, Sim};
use projections::{Runtime, RuntimeConfig};
use sqlx::{Connection, PgPool};
use tokio::sync::Semaphore;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Args {
    events: u64,
    rate: u64,
    lag_seconds: u64,
    clients: usize,
    batch_size: i64,
    keep: bool,
    /// `--only verify`: generate (or reuse), sequence and verify; no rebuild, no lag run.
    only_verify: bool,
    /// `--database NAME`: reuse a database a `--keep` run left (no generation).
    database: Option<String>,
    /// `--verify-runs N`: how many times `audit verify` runs (each is reported).
    verify_runs: u32,
    /// `--verify-parts N`: split verify's fast pass into exactly N ranges (default: verify's own
    /// choice).
    verify_parts: Option<usize>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        events: 1_000_000,
        rate: 1_000,
        lag_seconds: 20,
        clients: 64,
        batch_size: 5_000,
        keep: false,
        only_verify: false,
        database: None,
        verify_runs: 1,
        verify_parts: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => args.events = value()?.parse()?,
            "--rate" => args.rate = value()?.parse()?,
            "--lag-seconds" => args.lag_seconds = value()?.parse()?,
            "--clients" => args.clients = value()?.parse()?,
            "--batch-size" => args.batch_size = value()?.parse()?,
            "--keep" => args.keep = true,
            "--only" => match value()?.as_str() {
                "verify" => args.only_verify = true,
                other => return Err(format!("--only {other}: only `verify` is known").into()),
            },
            "--database" => args.database = Some(value()?),
            "--verify-runs" => args.verify_runs = value()?.parse()?,
            "--verify-parts" => args.verify_parts = Some(value()?.parse()?),
            "-h" | "--help" => {
                println!(
                    "bench-projections [--events N] [--rate COMMANDS_PER_S] [--lag-seconds S] \
                     [--clients N] [--batch-size N] [--keep] [--only verify] [--database NAME] \
                     [--verify-runs N] [--verify-parts N]\n\
                     --only verify   generate (or reuse), sequence and verify; skip the rebuild and \
                     the lag run\n\
                     --database NAME reuse a database a --keep run left (no generation; implies \
                     --keep)\n\
                     --verify-runs N run audit verify N times\n\
                     --verify-parts N split verify's fast pass into N ranges (default: its own \
                     choice)"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(args)
}

fn per_second(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Generates and inserts about `target` events; returns the number inserted.
async fn generate(pool: &PgPool, ctx: &Ctx, target: u64) -> Result<(u64, u64)> {
    let mut sim = Sim::new(ctx);
    let mut r = rng(2026);
    setup(&mut sim, ctx).await?;
    let mut conn = pool.acquire().await?;
    let mut inserted = 0u64;
    let mut flows = 0u64;
    let mut pending = 0u64;
    while inserted + pending < target {
        let before = sim.commits.len();
        flow(&mut sim, ctx, &mut r, flows).await?;
        flows += 1;
        pending += sim.commits[before..]
            .iter()
            .map(|c| c.events.len() as u64)
            .sum::<u64>();
        if pending >= 20_000 {
            let commits = sim.take();
            for chunk in commits.chunks(2_000) {
                inserted += insert_commits(&mut conn, chunk).await?.len() as u64;
            }
            pending = 0;
        }
    }
    let commits = sim.take();
    for chunk in commits.chunks(2_000) {
        inserted += insert_commits(&mut conn, chunk).await?.len() as u64;
    }
    Ok((inserted, flows))
}

async fn raw_read(pool: &PgPool) -> Result<(u64, u64, Duration)> {
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let mut stream = conn
        .copy_out_raw(
            "COPY (SELECT global_position, transaction_id, aggregate_type, aggregate_id, sequence, \
                          event_type, event_version, payload, metadata, recorded_at \
                   FROM events ORDER BY transaction_id, global_position) TO STDOUT",
        )
        .await?;
    let (mut bytes, mut rows) = (0u64, 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        rows += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    Ok((rows, bytes, started.elapsed()))
}

/// The ceiling of a parallel read: the events up to the end of the log, every column `verify`
/// reads, in `parts` log-order ranges on as many connections under one exported snapshot, binary
/// `COPY`, nothing done with the rows but counting them.
async fn raw_read_parallel(pool: &PgPool, parts: usize) -> Result<(u64, u64, Duration)> {
    let options = pool.connect_options();
    let mut first = sqlx::PgConnection::connect_with(&options).await?;
    sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL jit = off")
        .execute(&mut first)
        .await?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut first)
        .await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut first)
        .await?;
    let mut bounds = Vec::new();
    for i in 1..parts as i64 {
        let (tx, pos): (String, i64) = sqlx::query_as(
            "SELECT transaction_id::text, global_position FROM events \
             ORDER BY transaction_id, global_position OFFSET $1 LIMIT 1",
        )
        .bind(i * count / parts as i64)
        .fetch_one(&mut first)
        .await?;
        bounds.push(format!("('{tx}'::xid8, {pos})"));
    }
    let mut conns = vec![first];
    for _ in 1..parts {
        let mut c = sqlx::PgConnection::connect_with(&options).await?;
        sqlx::raw_sql(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '{snapshot}'; \
             SET LOCAL jit = off"
        ))
        .execute(&mut c)
        .await?;
        conns.push(c);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let mut conds = vec!["true".to_string()];
        if i > 0 {
            conds.push(format!(
                "(transaction_id, global_position) >= {}",
                bounds[i - 1]
            ));
        }
        if i + 1 < parts {
            conds.push(format!("(transaction_id, global_position) < {}", bounds[i]));
        }
        let sql = format!(
            "COPY (SELECT global_position, aggregate_type, aggregate_id, sequence, event_type, \
                          event_version, payload, metadata, recorded_at FROM events \
                   WHERE {} ORDER BY transaction_id, global_position) TO STDOUT (FORMAT binary)",
            conds.join(" AND ")
        );
        tasks.push(tokio::spawn(async move {
            let mut bytes = 0u64;
            let mut chunks = 0u64;
            {
                let mut stream = conn.copy_out_raw(&sql).await?;
                while let Some(chunk) = stream.next().await {
                    bytes += chunk?.len() as u64;
                    chunks += 1;
                }
            }
            Ok::<_, sqlx::Error>((bytes, chunks))
        }));
    }
    let (mut bytes, mut rows) = (0u64, 0u64);
    for t in tasks {
        let (b, c) = t.await??;
        bytes += b;
        // One CopyData message per row, and one for the trailer.
        rows += c.saturating_sub(1);
    }
    Ok((rows, bytes, started.elapsed()))
}

/// Commands through the buses, each recorded with its last log position and when it returned.
#[derive(Clone)]
struct Timed {
    buses: Buses,
    permits: Arc<Semaphore>,
    done: Arc<Mutex<Vec<(LogPosition, Instant)>>>,
}

fn meta() -> CommandMetadata {
    CommandMetadata::new(Actor::new("bench", "system"))
}

macro_rules! timed {
    ($self:ident, $bus:ident, $id:ident, $c:ident) => {{
        $self
            .permits
            .acquire()
            .await
            .map_err(|_| projections::Error::Busy("the pacing semaphore closed".into()))?
            .forget();
        let outcome = $self.buses.$bus.execute($id, $c, meta()).await?;
        let now = Instant::now();
        Ok(match outcome.result {
            Ok(committed) => {
                if let Some(p) = committed.last_position() {
                    $self
                        .done
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((p, now));
                }
                Some(committed.events)
            }
            Err(_) => None,
        })
    }};
}

impl Exec for Timed {
    async fn account(
        &mut self,
        id: &str,
        c: AccountCommand,
    ) -> std::result::Result<Option<Vec<AccountEvent>>, projections::Error> {
        timed!(self, account, id, c)
    }
    async fn order(
        &mut self,
        id: &str,
        c: OrderCommand,
    ) -> std::result::Result<Option<Vec<OrderEvent>>, projections::Error> {
        timed!(self, order, id, c)
    }
    async fn deposit(
        &mut self,
        id: &str,
        c: DepositCommand,
    ) -> std::result::Result<Option<Vec<DepositEvent>>, projections::Error> {
        timed!(self, deposit, id, c)
    }
    async fn wallet(
        &mut self,
        id: &str,
        c: WalletCommand,
    ) -> std::result::Result<Option<Vec<WalletEvent>>, projections::Error> {
        timed!(self, wallet, id, c)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A batch a worker committed: which worker, up to where, when.
type Committed = (&'static str, LogPosition, Instant);

struct LagReport {
    commands: usize,
    achieved_rate: f64,
    all: Vec<f64>,
    per_worker: Vec<(&'static str, f64)>,
}

async fn lag(pool: &PgPool, ctx: &Ctx, args: &Args) -> Result<LagReport> {
    let batches: Arc<Mutex<Vec<Committed>>> = Arc::default();
    let hooks = Hooks {
        before_commit: None,
        after_commit: Some({
            let batches = batches.clone();
            Arc::new(move |info: BatchInfo, at: Instant| {
                batches.lock().unwrap_or_else(|p| p.into_inner()).push((
                    info.worker,
                    info.last,
                    at,
                ));
            })
        }),
    };
    let runtime = Runtime::all(
        pool.clone(),
        RuntimeConfig {
            hooks,
            ..RuntimeConfig::default()
        },
    )
    .spawn();
    let permits = Arc::new(Semaphore::new(0));
    let timed = Timed {
        buses: Buses::new(pool, ctx),
        permits: permits.clone(),
        done: Arc::default(),
    };
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(args.lag_seconds);
    let pacer = {
        let permits = permits.clone();
        let rate = args.rate;
        tokio::spawn(async move {
            let tick = Duration::from_millis(10);
            let per_tick = (rate as f64 * tick.as_secs_f64()).max(1.0);
            let mut owed = 0.0;
            let mut interval = tokio::time::interval(tick);
            while Instant::now() < stop_at {
                interval.tick().await;
                owed += per_tick;
                let n = owed.floor();
                owed -= n;
                permits.add_permits(n as usize);
            }
        })
    };
    let mut clients = Vec::new();
    for c in 0..args.clients {
        let mut timed = timed.clone();
        let ctx = ctx.clone();
        clients.push(tokio::spawn(async move {
            let mut r = rng(7_000 + c as u64);
            let mut n = 10_000_000 + c as u64 * 1_000_000;
            while Instant::now() < stop_at {
                if flow(&mut timed, &ctx, &mut r, n).await.is_err() {
                    break;
                }
                n += 1;
            }
        }));
    }
    pacer.await?;
    permits.close();
    for c in clients {
        let _ = c.await;
    }
    let elapsed = started.elapsed();
    // Let the projectors finish what was committed.
    let done = timed.done.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let last = done.iter().map(|d| d.0).max().unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reached = {
            let b = batches.lock().unwrap_or_else(|p| p.into_inner());
            let workers = runtime.metrics.snapshot().workers.len();
            let mut at: HashMap<&str, LogPosition> = HashMap::new();
            for (w, p, _) in b.iter() {
                let e = at.entry(w).or_default();
                *e = (*e).max(*p);
            }
            at.len() == workers && at.values().all(|p| *p >= last)
        };
        if reached || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    runtime.shutdown().await?;

    let batches = batches.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut by_worker: HashMap<&'static str, Vec<(LogPosition, Instant)>> = HashMap::new();
    for (w, p, at) in batches {
        by_worker.entry(w).or_default().push((p, at));
    }
    let mut all = Vec::with_capacity(done.len());
    let mut per_worker_lags: HashMap<&'static str, Vec<f64>> = HashMap::new();
    for (position, returned) in &done {
        let mut slowest: f64 = 0.0;
        for (w, list) in &by_worker {
            // Batches of one worker commit in log order.
            let i = list.partition_point(|(p, _)| p < position);
            let Some((_, at)) = list.get(i) else {
                continue;
            };
            let ms = at.saturating_duration_since(*returned).as_secs_f64() * 1e3;
            per_worker_lags.entry(w).or_default().push(ms);
            slowest = slowest.max(ms);
        }
        all.push(slowest);
    }
    all.sort_by(|a, b| a.total_cmp(b));
    let mut per_worker: Vec<(&'static str, f64)> = per_worker_lags
        .into_iter()
        .map(|(w, mut v)| {
            v.sort_by(|a, b| a.total_cmp(b));
            (w, percentile(&v, 0.99))
        })
        .collect();
    per_worker.sort_by(|a, b| a.0.cmp(b.0));
    Ok(LagReport {
        commands: done.len(),
        achieved_rate: per_second(done.len() as u64, elapsed),
        all,
        per_worker,
    })
}

async fn run(mut args: Args) -> Result<()> {
    let (pool, name) = match &args.database {
        Some(name) => {
            args.keep = true;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(20)
                .connect_with(engine::testing::admin_options().database(name))
                .await?;
            (pool, name.clone())
        }
        None => {
            let db = TestDb::new().await;
            (db.pool, db.name)
        }
    };
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    println!(
        "bench-projections: {} events, PostgreSQL {version}, {} CPUs, database {name}",
        thousands(args.events as f64),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let ctx = Ctx::new("bench", 300, 8);

    if args.database.is_none() {
        let started = Instant::now();
        let (events, flows) = generate(&pool, &ctx, args.events).await?;
        sqlx::query("VACUUM ANALYZE events").execute(&pool).await?;
        println!(
            "generated and inserted {} events ({} flows) in {:.1} s",
            thousands(events as f64),
            thousands(flows as f64),
            started.elapsed().as_secs_f64()
        );
    }

    // Twice: the first read warms the cache, as the rebuild's will be.
    raw_read(&pool).await?;
    let (rows, bytes, took) = raw_read(&pool).await?;
    let raw_rate = per_second(rows, took);
    println!(
        "raw read   COPY (SELECT … FROM events ORDER BY transaction_id, global_position) TO STDOUT: \
         {} rows in {:.2} s = {} events/s ({:.0} MB/s)",
        thousands(rows as f64),
        took.as_secs_f64(),
        thousands(raw_rate),
        bytes as f64 / 1e6 / took.as_secs_f64()
    );

    for parts in [2, 4] {
        let (rows, bytes, took) = raw_read_parallel(&pool, parts).await?;
        println!(
            "raw read   {parts} log ranges in parallel, one snapshot, binary COPY, the columns verify \
             reads: {} rows in {:.2} s = {} events/s ({:.0} MB/s)",
            thousands(rows as f64),
            took.as_secs_f64(),
            thousands(per_second(rows, took)),
            bytes as f64 / 1e6 / took.as_secs_f64()
        );
    }

    let rebuild_rate = if args.only_verify {
        None
    } else {
        let options = RebuildOptions {
            batch_size: args.batch_size,
            ..RebuildOptions::default()
        };
        let report = rebuild(&pool, &projections::projection::all(), &options, |_| {}).await?;
        let rebuild_rate = report.events_per_second();
        println!(
            "rebuild --all (5 projections, batches of {}): {} events in {:.2} s = {} events/s = {:.0}% of the raw read rate",
            args.batch_size,
            thousands(report.events as f64),
            report.elapsed.as_secs_f64(),
            thousands(rebuild_rate),
            100.0 * rebuild_rate / raw_rate
        );
        println!(
            "  of which: waiting for the reader {:.2} s, applying in memory {:.2} s, writing rows {:.2} s",
            report.waiting_for_reads.as_secs_f64(),
            report.applying.as_secs_f64(),
            report.writing.as_secs_f64()
        );
        Some(rebuild_rate)
    };

    let mut conn = pool.acquire().await?.detach();
    let started = Instant::now();
    let sequenced = projections::audit::catch_up(&mut conn, Duration::from_secs(60)).await?;
    let took = started.elapsed();
    println!(
        "audit sequencer: {} events chained in {:.2} s = {} events/s",
        thousands(sequenced as f64),
        took.as_secs_f64(),
        thousands(per_second(sequenced, took))
    );
    conn.close().await?;
    let mut verify_rate: f64 = 0.0;
    for _ in 0..args.verify_runs.max(1) {
        let started = Instant::now();
        let verified = match args.verify_parts {
            Some(parts) => projections::audit::verify_in_parts(&pool, parts).await?,
            None => projections::audit::verify(&pool).await?,
        };
        let took = started.elapsed();
        let rate = per_second(verified.events, took);
        println!(
            "audit verify: {} events in {:.2} s = {} events/s ({})",
            thousands(verified.events as f64),
            took.as_secs_f64(),
            thousands(rate),
            if verified.is_ok() { "ok" } else { "FAILED" }
        );
        if !verified.is_ok() {
            for p in verified.problems.iter().take(5) {
                println!("  {p}");
            }
        }
        verify_rate = verify_rate.max(rate);
    }

    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    if let Some(rebuild_rate) = rebuild_rate {
        let lag = lag(&pool, &ctx, &args).await?;
        let p50 = percentile(&lag.all, 0.50);
        let p99 = percentile(&lag.all, 0.99);
        println!(
            "lag (command committed -> visible in every view) at {} commands/s asked, {:.0}/s achieved, \
             {} commands over {} s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            args.rate,
            lag.achieved_rate,
            thousands(lag.commands as f64),
            args.lag_seconds,
            p50,
            p99,
            lag.all.last().copied().unwrap_or(f64::NAN)
        );
        let per_worker: Vec<String> = lag
            .per_worker
            .iter()
            .map(|(w, p)| format!("{w} {p:.1}"))
            .collect();
        println!("lag p99 per worker (ms): {}", per_worker.join(", "));
        println!(
            "goals: rebuild >= 25% of raw read and >= 100,000 events/s: {}; lag p99 <= 100 ms at 1,000 commands/s: {}; verify >= 500,000 events/s: {}",
            verdict(rebuild_rate >= 0.25 * raw_rate && rebuild_rate >= 100_000.0),
            verdict(p99 <= 100.0 && lag.achieved_rate >= 0.95 * 1_000.0),
            verdict(verify_rate >= 500_000.0)
        );
    } else {
        println!(
            "goal: verify >= 500,000 events/s (best of {} runs): {}",
            args.verify_runs.max(1),
            verdict(verify_rate >= 500_000.0)
        );
    }

    pool.close().await;
    if !args.keep {
        let mut admin = sqlx::PgConnection::connect_with(&engine::testing::admin_options()).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
    } else {
        println!("kept database {name} (reuse it with --database {name})");
    }
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

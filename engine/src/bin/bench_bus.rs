//! Benchmark of the command bus on one hot aggregate: commands per second on an account with
//! `--prior-events` events already stored, with 1 and 8 concurrent writers, and the cost of
//! loading that account cold (snapshot plus tail) against a full postgres-es replay.
//! `--held N` leaves N reservations open on the account before the measured runs, so its live
//! state is large (as a pool wallet's is, with every active order's reservation);
//! `--snapshot-every N` and `--snapshot-bytes-per-event N` set the bus's snapshot spacing.
//!
//!     cargo run --release -p engine --features testing --bin bench-bus -- --prior-events 100000
//!
//! Uses `DATABASE_URL`'s server, or the private test cluster under `target/pg-test`. Creates a
//! database `trxbench_<time>` and drops it at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::EventStore;
use engine::domain::account::{Account, AccountCommand};
use engine::domain::ids::{AccountId, DepositId, OrderId};
use engine::domain::{Amount, Asset};
use engine::store::{Actor, BusConfig, CommandBus, CommandMetadata};
use postgres_es::PostgresEventRepository;
use sqlx::postgres::PgPoolOptions;
use sqlx::{ConnectOptions, Connection};

struct Args {
    prior_events: u64,
    commands: u64,
    writers: Vec<usize>,
    held: u64,
    bus: BusConfig,
}

fn parse_args() -> Args {
    let mut args = Args {
        prior_events: 100_000,
        commands: 5_000,
        writers: vec![1, 8],
        held: 0,
        bus: BusConfig::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--prior-events" => args.prior_events = value.parse().expect("--prior-events N"),
            "--commands" => args.commands = value.parse().expect("--commands N"),
            "--held" => args.held = value.parse().expect("--held N"),
            "--snapshot-every" => {
                args.bus.snapshot_every = value.parse().expect("--snapshot-every N")
            }
            "--snapshot-bytes-per-event" => {
                args.bus.snapshot_bytes_per_event =
                    value.parse().expect("--snapshot-bytes-per-event N")
            }
            "--writers" => {
                args.writers = value
                    .split(',')
                    .map(|w| w.parse().expect("--writers 1,8"))
                    .collect()
            }
            other => {
                panic!(
                    "unknown flag {other}; flags: --prior-events N --commands N --writers 1,8 \
                     --held N --snapshot-every N --snapshot-bytes-per-event N"
                )
            }
        }
    }
    args
}

fn meta() -> CommandMetadata {
    CommandMetadata::new(Actor::system("bench"))
}

fn deposit(n: u64) -> AccountCommand {
    AccountCommand::CreditDeposit {
        deposit_id: DepositId::parse(&format!("{n:064x}")).unwrap(),
        asset: Asset::Trx,
        amount: Amount::new(1_000_000).unwrap(),
    }
}

/// The n-th command of a stream that keeps a balance: a deposit, then reserve/capture pairs.
fn nth_command(n: u64) -> AccountCommand {
    let order = || OrderId::parse(format!("o-{}", n / 2)).unwrap();
    match n % 8 {
        0 => deposit(n),
        k if k % 2 == 1 => AccountCommand::ReserveFunds {
            order_id: OrderId::parse(format!("o-{}", n / 2 + 1)).unwrap(),
            asset: Asset::Trx,
            amount: Amount::new(1_000).unwrap(),
        },
        _ => AccountCommand::CaptureFunds { order_id: order() },
    }
}

async fn run_writers(
    bus: &Arc<CommandBus<Account>>,
    id: &str,
    start: u64,
    total: u64,
    writers: usize,
) -> (Duration, Vec<Duration>) {
    let per = total / writers as u64;
    let began = Instant::now();
    let tasks: Vec<_> = (0..writers as u64)
        .map(|w| {
            let bus = bus.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per as usize);
                for i in 0..per {
                    // Each writer has its own order ids; every command is a deposit or a
                    // reserve/capture of the writer's own order, so all are accepted.
                    let n = start + w * 10_000_000 + i;
                    let cmd = if i % 2 == 0 {
                        AccountCommand::ReserveFunds {
                            order_id: OrderId::parse(format!("b-{n}")).unwrap(),
                            asset: Asset::Trx,
                            amount: Amount::new(1_000).unwrap(),
                        }
                    } else {
                        AccountCommand::CaptureFunds {
                            order_id: OrderId::parse(format!("b-{}", n - 1)).unwrap(),
                        }
                    };
                    let t = Instant::now();
                    let out = bus.execute(&id, cmd, meta()).await.expect("decided");
                    assert!(out.is_accepted(), "{:?}", out.result);
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (began.elapsed(), all)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let admin = engine::testing::admin_options();
    let name = format!("trxbench_{}", Utc::now().timestamp());
    let mut conn = admin.connect().await.expect("connect");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let options = admin.clone().database(&name);
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .connect_with(options)
        .await
        .unwrap();
    engine::store::migrate(&pool).await.unwrap();

    let id = "tg:hot";
    let bus = Arc::new(CommandBus::<Account>::with_config(
        pool.clone(),
        (),
        args.bus.clone(),
    ));
    let open = AccountCommand::OpenAccount {
        account_id: AccountId::parse(id).unwrap(),
        at: Utc::now(),
    };
    bus.execute(id, open, meta()).await.unwrap();
    bus.execute(id, deposit(u64::MAX / 2), meta())
        .await
        .unwrap();

    // Seed the prior events, exactly `--prior-events` counting the two above: many concurrent
    // callers, so the bus writes them in batches. Every seeding command is accepted and appends
    // one event; each caller numbers its deposits and orders in a range of its own.
    let seeded_at = Instant::now();
    let seed_writers = 64u64;
    let to_seed = args
        .prior_events
        .checked_sub(2)
        .expect("--prior-events is at least 2 (the account's opening and first deposit)");
    let (per, extra) = (to_seed / seed_writers, to_seed % seed_writers);
    let mut tasks = Vec::new();
    for w in 0..seed_writers {
        let bus = bus.clone();
        let count = per + u64::from(w < extra);
        let first = w * (per + 1);
        tasks.push(tokio::spawn(async move {
            for i in 0..count {
                let n = (first + i) * 2 + 1_000_000_000;
                let cmd = match i % 3 {
                    0 => deposit(n),
                    1 => AccountCommand::ReserveFunds {
                        order_id: OrderId::parse(format!("s-{}", n - 2)).unwrap(),
                        asset: Asset::Trx,
                        amount: Amount::new(1_000).unwrap(),
                    },
                    _ => AccountCommand::CaptureFunds {
                        order_id: OrderId::parse(format!("s-{}", n - 4)).unwrap(),
                    },
                };
                let out = bus.execute(id, cmd, meta()).await.unwrap();
                assert!(out.is_accepted(), "{:?}", out.result);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let _ = nth_command(0);
    // Reservations left open through the measured runs.
    let held_writers = 16u64;
    let tasks: Vec<_> = (0..held_writers)
        .map(|w| {
            let bus = bus.clone();
            let count = args.held / held_writers + u64::from(w < args.held % held_writers);
            tokio::spawn(async move {
                for i in 0..count {
                    let reserve = AccountCommand::ReserveFunds {
                        order_id: OrderId::parse(format!("h-{w}-{i}")).unwrap(),
                        asset: Asset::Trx,
                        amount: Amount::new(1_000).unwrap(),
                    };
                    bus.execute(id, reserve, meta()).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let (state, version) = bus.load(id).await.unwrap();
    assert_eq!(
        version,
        args.prior_events + args.held,
        "seeded exactly --prior-events events (and --held reservations)"
    );
    let version = args.prior_events;
    let t = Instant::now();
    let copy = std::hint::black_box(state.clone());
    let copy_time = t.elapsed();
    drop(copy);
    let state_bytes = serde_json::to_string(&state).map(|j| j.len()).unwrap_or(0);
    println!("# command bus benchmark");
    println!(
        "prior events on the aggregate: {version} (seeded in {:.1?}), {} reservations held",
        seeded_at.elapsed(),
        args.held
    );
    println!(
        "its state: {state_bytes} bytes as JSON; one copy of it in memory: {:.1} µs",
        copy_time.as_secs_f64() * 1e6
    );
    println!();
    println!("| writers | commands | seconds | commands/s | p50 ms | p99 ms |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut start = 0;
    for &w in &args.writers {
        let (elapsed, mut lat) = run_writers(&bus, id, start, args.commands, w).await;
        start += 100_000_000;
        lat.sort();
        println!(
            "| {w} | {} | {:.2} | {:.0} | {:.2} | {:.2} |",
            lat.len(),
            elapsed.as_secs_f64(),
            lat.len() as f64 / elapsed.as_secs_f64(),
            pct(&lat, 0.5).as_secs_f64() * 1e3,
            pct(&lat, 0.99).as_secs_f64() * 1e3,
        );
    }

    // Cold loads: our snapshot plus tail, against postgres-es's full replay.
    let (_, version) = bus.load(id).await.unwrap();
    let t = Instant::now();
    let loaded =
        engine::store::event_store::load::<Account>(&pool, id, &engine::store::upcast::upcasters())
            .await
            .unwrap();
    let ours = t.elapsed();
    let t = Instant::now();
    let store: PersistedEventStore<PostgresEventRepository, Account> =
        PersistedEventStore::new_event_store(PostgresEventRepository::new(pool.clone()));
    let full = store.load_aggregate(id).await.unwrap().aggregate;
    let replay = t.elapsed();
    assert_eq!(loaded.aggregate, full, "snapshot load equals a full replay");
    // A small aggregate for comparison.
    let small = "tg:small";
    let open = AccountCommand::OpenAccount {
        account_id: AccountId::parse(small).unwrap(),
        at: Utc::now(),
    };
    bus.execute(small, open, meta()).await.unwrap();
    for n in 0..99 {
        bus.execute(small, deposit(5_000_000_000 + n), meta())
            .await
            .unwrap();
    }
    let t = Instant::now();
    let small_loaded = engine::store::event_store::load::<Account>(&pool, small, &[])
        .await
        .unwrap();
    let small_ms = t.elapsed();
    println!();
    println!("| cold load | events in stream | events read | from snapshot | ms |");
    println!("|---|---:|---:|---|---:|");
    println!(
        "| ours, hot aggregate | {version} | {} | {} | {:.1} |",
        loaded.events_read,
        loaded.from_snapshot,
        ours.as_secs_f64() * 1e3
    );
    println!(
        "| postgres-es full replay, hot aggregate | {version} | {version} | false | {:.1} |",
        replay.as_secs_f64() * 1e3
    );
    println!(
        "| ours, 100-event aggregate | {} | {} | {} | {:.1} |",
        small_loaded.version,
        small_loaded.events_read,
        small_loaded.from_snapshot,
        small_ms.as_secs_f64() * 1e3
    );
    let snap_bytes: i64 = sqlx::query_scalar(
        "SELECT pg_column_size(payload)::bigint FROM aggregate_snapshots WHERE aggregate_id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap_or(0);
    println!();
    println!("snapshot size of the hot aggregate: {snap_bytes} bytes (stored jsonb)");

    pool.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
}

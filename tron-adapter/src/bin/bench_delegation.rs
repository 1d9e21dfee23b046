//! Benchmark: time from an order being paid to its delegation being signed, recorded and
//! broadcast, at a steady rate of new orders, with the simulator's blocks every 3 s.
//!
//!     cargo run --release -p tron-adapter --features bench --bin bench-delegation -- --rates 10,100 --seconds 10
//!
//! Uses `DATABASE_URL`'s server or the private test cluster; creates and drops its own database.
//! The broadcast follows the recording of the signed bytes within the same step, so the time to
//! `DelegationSigned` (recorded_at, the database's clock) is reported, and the time the
//! simulator accepted the broadcast is checked against it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use engine::domain::account::AccountCommand;
use engine::domain::order::{OrderCommand, OrderPolicy};
use engine::domain::wallet::WalletCommand;
use engine::domain::{AccountId, Amount, Asset, DepositId, DurationTier, KeyRef, PriceTable};
use engine::process::{run_reactor, Buses, OrderFlow, RunnerConfig};
use engine::store::{Actor, CommandMetadata};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::ConnectOptions;
use tokio::sync::watch;
use tron_adapter::keys::sha256;
use tron_adapter::node::{NodeClient, NodeConfig};
use tron_adapter::simulator::{SimConfig, Simulator};
use tron_adapter::vault::{KeyVault, Keyring, MasterKey};
use tron_adapter::worker::{Allocator, ChainParams, ChainWorker, ChainWorkerConfig};
use tron_adapter::PrivateKey;

const TRX: u64 = 1_000_000;
const ACCOUNTS: usize = 50;
/// TRX each pool wallet stakes for energy: with the simulator's network totals, a 65,000-energy
/// order holds about 6,000 TRX, so three wallets serve about 10,000 orders at once (a minute at
/// 100 orders/s with 3-second blocks and 1-hour rentals, none reclaimed during the run).
const STAKE_TRX: u64 = 20_000_000;
/// TRX each pool wallet keeps unstaked to pay for bandwidth (as `trx-energy run` does on the
/// simulator): without it, a wallet's free daily bandwidth and its last TRX are gone after a few
/// transactions, every delegation fails with `BANDWITH_ERROR`, and each order is retried on every
/// wallet and then refunded — three times the work of the steady state being measured.
const SPARE_TRX: u64 = 1_000;

fn key(label: &str) -> PrivateKey {
    PrivateKey::from_bytes(&sha256(label.as_bytes())).expect("a valid key")
}

fn meta() -> CommandMetadata {
    CommandMetadata::new(Actor::system("bench"))
}

async fn sim_admin(base: &str, path: &str, body: serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/sim/{path}"))
        .body(body.to_string())
        .send()
        .await
        .expect("simulator reachable");
    assert!(r.status().is_success(), "/sim/{path}");
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn run_rate(rate: u64, seconds: u64) -> (usize, Vec<f64>) {
    let admin = engine::testing::admin_options();
    let name = format!("trxbench_deleg_{}_{rate}", Utc::now().timestamp());
    let mut conn = admin.connect().await.expect("connect");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    // As `trx-energy run` opens its pool (api/src/database.rs).
    let pool = PgPoolOptions::new()
        .max_connections(30)
        .test_before_acquire(false)
        .connect_with(admin.clone().database(&name))
        .await
        .unwrap();
    engine::store::migrate(&pool).await.unwrap();

    let sim = Simulator::start(SimConfig {
        port: 0,
        dev: true,
        block_interval: Some(Duration::from_millis(3_000)),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let client = NodeClient::new(NodeConfig::new(sim.base_url())).unwrap();
    let vault = Arc::new(KeyVault::new(
        pool.clone(),
        Keyring::new(MasterKey::generate()),
    ));
    let mut wallets = Vec::new();
    for i in 0..3 {
        let (address, _) = vault
            .store_wallet_key(&key(&format!("bench-pool-{i}")))
            .await
            .unwrap();
        sim_admin(
            sim.base_url(),
            "activate",
            json!({"address": address.to_base58(), "balance": (STAKE_TRX + SPARE_TRX) * TRX}),
        )
        .await;
        sim_admin(
            sim.base_url(),
            "stake",
            json!({"address": address.to_base58(), "amount": STAKE_TRX * TRX}),
        )
        .await;
        wallets.push(address);
    }
    let policy = OrderPolicy {
        prices: PriceTable::sample(),
        pool_wallets: wallets.iter().copied().collect::<BTreeSet<_>>(),
        ..OrderPolicy::default()
    };
    let buses = Buses::new(pool.clone(), policy);
    for address in &wallets {
        let id = address.to_base58();
        let register = WalletCommand::RegisterWallet {
            address: *address,
            key_ref: KeyRef::new(format!("vault:wallet:{}", address.to_hex())),
            at: Utc::now(),
        };
        buses.wallet.execute(&id, register, meta()).await.unwrap();
        let observe = WalletCommand::ObserveResources {
            staked_sun: STAKE_TRX * TRX,
            delegatable_sun: STAKE_TRX * TRX,
            energy_limit: 0,
            at: Utc::now(),
        };
        buses.wallet.execute(&id, observe, meta()).await.unwrap();
    }
    let mut receivers = Vec::new();
    for a in 0..ACCOUNTS {
        let id = format!("tg:{a}");
        let open = AccountCommand::OpenAccount {
            account_id: AccountId::parse(&id).unwrap(),
            at: Utc::now(),
        };
        buses.account.execute(&id, open, meta()).await.unwrap();
        let credit = AccountCommand::CreditDeposit {
            deposit_id: DepositId::parse(&format!("{:064x}", a + 1)).unwrap(),
            asset: Asset::Trx,
            amount: Amount::new(1_000_000 * TRX).unwrap(),
        };
        buses.account.execute(&id, credit, meta()).await.unwrap();
        let receiver = key(&format!("bench-receiver-{a}")).address();
        sim_admin(
            sim.base_url(),
            "activate",
            json!({"address": receiver.to_base58(), "balance": TRX}),
        )
        .await;
        receivers.push(receiver);
    }

    let (stop, rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    // The runners and the chain worker as `trx-energy run` configures them: they are woken by
    // this process's appends and hand-offs, and poll only as a fallback.
    let config = RunnerConfig::default();
    tasks.spawn(run_reactor(
        pool.clone(),
        Arc::new(OrderFlow::new(buses.clone())),
        config.clone(),
        rx.clone(),
    ));
    let params = Arc::new(ChainParams::new(
        client.clone(),
        wallets[0],
        Duration::from_secs(60),
    ));
    let worker = ChainWorker::new(
        buses.clone(),
        client.clone(),
        vault.clone(),
        ChainWorkerConfig::default(),
    );
    let allocator = Arc::new(
        Allocator::new(buses.clone(), client.clone(), params).with_wake(worker.wake_handle()),
    );
    tasks.spawn(run_reactor(
        pool.clone(),
        allocator,
        config.clone(),
        rx.clone(),
    ));
    let r = rx.clone();
    let w = worker.clone();
    let chain = tokio::spawn(async move { w.run(r).await });
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A steady stream of orders.
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut placing = tokio::task::JoinSet::new();
    for n in 0..total {
        let due = start + interval.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
        let buses = buses.clone();
        let a = (n as usize) % ACCOUNTS;
        let receiver = receivers[a];
        placing.spawn(async move {
            let cmd = OrderCommand::PlaceOrder {
                account_id: AccountId::parse(format!("tg:{a}")).unwrap(),
                receiver,
                energy: 65_000,
                duration: DurationTier::OneHour,
                asset: Asset::Trx,
                max_price: None,
                at: Utc::now(),
            };
            buses
                .order
                .execute(&format!("order-{n}"), cmd, meta())
                .await
                .unwrap();
        });
    }
    while placing.join_next().await.is_some() {}
    // Wait until every order has been signed (bounded).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let signed: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT aggregate_id) FROM events WHERE event_type = 'DelegationSigned'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if signed as u64 >= total || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    let _ = chain.await;
    let stage = |from: &'static str, to: &'static str| {
        let pool = pool.clone();
        async move {
            let rows: Vec<(f64,)> = sqlx::query_as(
                "SELECT (extract(epoch FROM (b.at - a.at)) * 1000)::float8 FROM \
                   (SELECT aggregate_id, min(recorded_at) AS at FROM events WHERE event_type = $1 GROUP BY 1) a \
                   JOIN (SELECT aggregate_id, min(recorded_at) AS at FROM events WHERE event_type = $2 GROUP BY 1) b \
                   USING (aggregate_id)",
            )
            .bind(from)
            .bind(to)
            .fetch_all(&pool)
            .await
            .unwrap();
            let mut ms: Vec<f64> = rows.into_iter().map(|r| r.0).collect();
            ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
            ms
        }
    };
    let ms = stage("OrderPaid", "DelegationSigned").await;
    let allocate = stage("OrderPaid", "DelegationRequested").await;
    let sign = stage("DelegationRequested", "DelegationSigned").await;
    // Failed attempts and refunds are work the steady state does not have: say so.
    let (failed, refunded): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE event_type = 'DelegationFailed'), \
                count(*) FILTER (WHERE event_type = 'OrderRefunded') FROM events",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    eprintln!(
        "  rate {rate}/s: paid→requested p50 {:.1} p99 {:.1} ms; requested→signed p50 {:.1} p99 {:.1} ms; \
         failed attempts {failed}, refunded {refunded}",
        pct(&allocate, 0.5),
        pct(&allocate, 0.99),
        pct(&sign, 0.5),
        pct(&sign, 0.99)
    );
    pool.close().await;
    sim.shutdown().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    (total as usize, ms)
}

#[tokio::main]
async fn main() {
    let mut rates = vec![10u64, 100];
    let mut seconds = 10u64;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--rates" => {
                rates = value
                    .split(',')
                    .map(|r| r.parse().expect("--rates 10,100"))
                    .collect()
            }
            "--seconds" => seconds = value.parse().expect("--seconds N"),
            other => panic!("unknown flag {other}; flags: --rates 10,100 --seconds N"),
        }
    }
    println!("# paid → delegation signed, recorded and broadcast (simulator blocks every 3 s)");
    println!();
    println!("| orders/s | orders | delegated | p50 ms | p99 ms | max ms |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for rate in rates {
        let (total, ms) = run_rate(rate, seconds).await;
        println!(
            "| {rate} | {total} | {} | {:.1} | {:.1} | {:.1} |",
            ms.len(),
            pct(&ms, 0.5),
            pct(&ms, 0.99),
            ms.last().copied().unwrap_or(f64::NAN)
        );
    }
}

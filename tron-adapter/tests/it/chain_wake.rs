//! The allocator wakes the wallet's chain worker in this process when it hands over a task; a
//! worker that misses the wake (no handle shared, or another process allocated) still finds the
//! task at its tick.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{activate, key, stake, TRX};
use engine::domain::account::AccountCommand;
use engine::domain::order::{OrderCommand, OrderPolicy, OrderStatus};
use engine::domain::wallet::WalletCommand;
use engine::domain::{AccountId, Amount, Asset, DepositId, DurationTier, KeyRef, PriceTable};
use engine::process::{run_reactor, Buses, OrderFlow, RunnerConfig};
use engine::store::{Actor, CommandMetadata};
use engine::testing::TestDb;
use tokio::sync::watch;
use tron_adapter::simulator::SimConfig;
use tron_adapter::vault::{KeyVault, Keyring, MasterKey};
use tron_adapter::worker::{Allocator, ChainParams, ChainWorker, ChainWorkerConfig};

fn meta() -> CommandMetadata {
    CommandMetadata::new(Actor::new("bot", "bot"))
}

/// Places one order and runs the order flow, the allocator (sharing the worker's wake handle or
/// not) and the chain worker with `tick`, until the order's delegation is signed.
async fn one_order_signed(share_wake: bool, tick: Duration) {
    let db = TestDb::new().await;
    let (sim, client) = common::start(SimConfig::for_tests()).await;
    let vault = Arc::new(KeyVault::new(
        db.pool.clone(),
        Keyring::new(MasterKey::generate()),
    ));
    let (wallet, _) = vault.store_wallet_key(&key("wake-pool")).await.unwrap();
    activate(&sim, &wallet, 401_000).await;
    stake(&sim, &wallet, 400_000).await;
    let policy = OrderPolicy {
        prices: PriceTable::sample(),
        pool_wallets: [wallet].into_iter().collect::<BTreeSet<_>>(),
        ..OrderPolicy::default()
    };
    let buses = Buses::new(db.pool.clone(), policy);
    let id = wallet.to_base58();
    let register = WalletCommand::RegisterWallet {
        address: wallet,
        key_ref: KeyRef::new(format!("vault:wallet:{}", wallet.to_hex())),
        at: Utc::now(),
    };
    buses.wallet.execute(&id, register, meta()).await.unwrap();
    let observe = WalletCommand::ObserveResources {
        staked_sun: 400_000 * TRX as u64,
        delegatable_sun: 400_000 * TRX as u64,
        energy_limit: 0,
        at: Utc::now(),
    };
    buses.wallet.execute(&id, observe, meta()).await.unwrap();
    let account = "tg:1";
    let open = AccountCommand::OpenAccount {
        account_id: AccountId::parse(account).unwrap(),
        at: Utc::now(),
    };
    buses.account.execute(account, open, meta()).await.unwrap();
    let credit = AccountCommand::CreditDeposit {
        deposit_id: DepositId::parse(&"ef".repeat(32)).unwrap(),
        asset: Asset::Trx,
        amount: Amount::new(100 * TRX as u64).unwrap(),
    };
    buses
        .account
        .execute(account, credit, meta())
        .await
        .unwrap();
    let receiver = key("wake-receiver").address();
    activate(&sim, &receiver, 1).await;

    let (stop, rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let config = RunnerConfig {
        idle_max: Duration::from_millis(20),
        ..RunnerConfig::default()
    };
    let worker = ChainWorker::new(
        buses.clone(),
        client.clone(),
        vault.clone(),
        ChainWorkerConfig {
            tick,
            confirm_poll: Duration::from_millis(10),
            ..ChainWorkerConfig::default()
        },
    );
    let params = Arc::new(ChainParams::new(
        client.clone(),
        wallet,
        Duration::from_secs(60),
    ));
    let mut allocator = Allocator::new(buses.clone(), client.clone(), params);
    if share_wake {
        allocator = allocator.with_wake(worker.wake_handle());
    }
    let flow = Arc::new(OrderFlow::new(buses.clone()));
    tasks.spawn(run_reactor(
        db.pool.clone(),
        flow,
        config.clone(),
        rx.clone(),
    ));
    tasks.spawn(run_reactor(
        db.pool.clone(),
        Arc::new(allocator),
        config,
        rx.clone(),
    ));
    let w = worker.clone();
    let r = rx.clone();
    let chain = tokio::spawn(async move { w.run(r).await });
    // The worker has looked at its (empty) task list and waits for a wake or its tick.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let place = OrderCommand::PlaceOrder {
        account_id: AccountId::parse(account).unwrap(),
        receiver,
        energy: 65_000,
        duration: DurationTier::OneHour,
        asset: Asset::Trx,
        max_price: None,
        at: Utc::now(),
    };
    assert!(buses
        .order
        .execute("o-wake", place, meta())
        .await
        .unwrap()
        .is_accepted());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = buses.order.load("o-wake").await.unwrap().0.status();
        if !matches!(
            status,
            OrderStatus::Placed | OrderStatus::Paid | OrderStatus::DelegationRequested
        ) {
            assert!(
                matches!(status, OrderStatus::DelegationSigned | OrderStatus::Active),
                "{status:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never signed: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    while tasks.join_next().await.is_some() {}
    let _ = chain.await;
}

/// The worker's tick is an hour: only the allocator's wake can get the order signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allocator_wakes_the_wallet_worker_when_it_hands_over_a_task() {
    one_order_signed(true, Duration::from_secs(3_600)).await;
}

/// No wake reaches the worker: its tick finds the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_misses_the_wake_finds_the_task_at_its_tick() {
    one_order_signed(false, Duration::from_millis(20)).await;
}

//! 200 orders across 20 accounts and 3 pool wallets, with faults injected into about one node
//! call in ten, the real runners (process managers, allocator, chain worker) running as tasks:
//! every order ends completed, refunded, cancelled or rejected; money is conserved to the sun;
//! no delegation is left on the chain.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::{activate, admin, key, stake, TRX};
use engine::domain::account::AccountCommand;
use engine::domain::order::{CancelledBy, OrderCommand, OrderPolicy, OrderStatus};
use engine::domain::wallet::WalletCommand;
use engine::domain::{AccountId, Amount, Asset, DepositId, DurationTier, KeyRef, PriceTable};
use engine::process::scheduler::run_due;
use engine::process::{run_reactor, Buses, OrderFlow, RunnerConfig};
use engine::store::{Actor, CommandMetadata};
use engine::testing::TestDb;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::sync::watch;
use tron_adapter::node::Finality;
use tron_adapter::simulator::SimConfig;
use tron_adapter::tx::Resource;
use tron_adapter::vault::{KeyVault, Keyring, MasterKey};
use tron_adapter::worker::{Allocator, ChainParams, ChainWorker, ChainWorkerConfig};

const ACCOUNTS: usize = 20;
const ORDERS: usize = 200;

fn meta() -> CommandMetadata {
    CommandMetadata::new(Actor::new("bot", "bot"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_orders_with_faults_all_end_settled_with_money_conserved_and_nothing_left_lent()
{
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let db = TestDb::new().await;
    let (sim, client) = common::start(SimConfig::for_tests()).await;
    let vault = Arc::new(KeyVault::new(
        db.pool.clone(),
        Keyring::new(MasterKey::generate()),
    ));
    let mut wallets = Vec::new();
    for i in 0..3 {
        let (address, _) = vault
            .store_wallet_key(&key(&format!("soak-pool-{i}")))
            .await
            .unwrap();
        activate(&sim, &address, 401_000).await;
        stake(&sim, &address, 400_000).await;
        wallets.push(address);
    }
    let policy = OrderPolicy {
        prices: PriceTable::sample(),
        pool_wallets: wallets.iter().copied().collect::<BTreeSet<_>>(),
        ..OrderPolicy::default()
    };
    let buses = Buses::new(db.pool.clone(), policy);
    for address in &wallets {
        let id = address.to_base58();
        let register = WalletCommand::RegisterWallet {
            address: *address,
            key_ref: KeyRef::new(format!("vault:wallet:{}", address.to_hex())),
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
    }
    // Accounts and their receivers; deposits of 40–80 TRX (some cannot pay for every order).
    let mut deposited = 0u64;
    let mut receivers = Vec::new();
    for a in 0..ACCOUNTS {
        let id = format!("tg:{a}");
        let open = AccountCommand::OpenAccount {
            account_id: AccountId::parse(&id).unwrap(),
            at: Utc::now(),
        };
        buses.account.execute(&id, open, meta()).await.unwrap();
        let sun = rng.gen_range(40..=80) * TRX as u64;
        let credit = AccountCommand::CreditDeposit {
            deposit_id: DepositId::parse(&format!("{:064x}", a + 1)).unwrap(),
            asset: Asset::Trx,
            amount: Amount::new(sun).unwrap(),
        };
        assert!(buses
            .account
            .execute(&id, credit, meta())
            .await
            .unwrap()
            .is_accepted());
        deposited += sun;
        let receiver = key(&format!("soak-receiver-{a}")).address();
        activate(&sim, &receiver, 1).await;
        receivers.push(receiver);
    }

    // The runners, as `trx-energy run` starts them.
    let (stop, rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let fast = RunnerConfig {
        idle_max: Duration::from_millis(20),
        ..RunnerConfig::default()
    };
    let flow = Arc::new(OrderFlow::new(buses.clone()));
    tasks.spawn(run_reactor(db.pool.clone(), flow, fast.clone(), rx.clone()));
    let params = Arc::new(ChainParams::new(
        client.clone(),
        wallets[0],
        Duration::from_secs(60),
    ));
    let allocator = Arc::new(Allocator::new(buses.clone(), client.clone(), params));
    tasks.spawn(run_reactor(
        db.pool.clone(),
        allocator,
        fast.clone(),
        rx.clone(),
    ));
    let worker = ChainWorker::new(
        buses.clone(),
        client.clone(),
        vault.clone(),
        ChainWorkerConfig {
            tick: Duration::from_millis(10),
            confirm_poll: Duration::from_millis(10),
            wallet_refresh: Duration::from_millis(200),
            ..ChainWorkerConfig::default()
        },
    );
    let w = worker.clone();
    let r = rx.clone();
    let chain = tokio::spawn(async move { w.run(r).await });

    // Place the orders; cancel some at once.
    let mut ids = Vec::new();
    for n in 0..ORDERS {
        let a = n % ACCOUNTS;
        let id = format!("order-{n}");
        let cmd = OrderCommand::PlaceOrder {
            account_id: AccountId::parse(format!("tg:{a}")).unwrap(),
            receiver: receivers[a],
            energy: rng.gen_range(32_000..=66_000),
            duration: DurationTier::OneHour,
            asset: Asset::Trx,
            max_price: None,
            at: Utc::now(),
        };
        assert!(buses
            .order
            .execute(&id, cmd, meta())
            .await
            .unwrap()
            .is_accepted());
        if rng.gen_ratio(1, 20) {
            let cancel = OrderCommand::CancelOrder {
                by: CancelledBy::Customer,
                at: Utc::now(),
            };
            buses.order.execute(&id, cancel, meta()).await.unwrap();
        }
        ids.push(id);
        // About one node call in ten meets a fault.
        if n % 4 == 0 {
            let fault = match rng.gen_range(0..5) {
                0 => json!({"lose_broadcast_responses": 1}),
                1 => json!({"never_include": 1}),
                2 => json!({"http_5xx": 2}),
                3 => json!({"server_busy": 1}),
                _ => json!({"garbage": 1}),
            };
            admin(&sim, "faults", fault).await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // Let time pass: every active order's period ends; wait until every order is settled.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        run_due(&buses, Utc::now() + TimeDelta::hours(2), 500)
            .await
            .unwrap();
        let mut open = 0;
        for id in &ids {
            let status = buses.order.load(id).await.unwrap().0.status();
            if !matches!(
                status,
                OrderStatus::Completed
                    | OrderStatus::Refunded
                    | OrderStatus::Cancelled
                    | OrderStatus::Rejected
            ) {
                open += 1;
            }
        }
        let reserved: u64 = {
            let mut sum = 0;
            for a in 0..ACCOUNTS {
                sum += buses
                    .account
                    .load(&format!("tg:{a}"))
                    .await
                    .unwrap()
                    .0
                    .balance(Asset::Trx)
                    .reserved;
            }
            sum
        };
        if open == 0 && reserved == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} orders still open, {reserved} sun still reserved"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    chain.await.unwrap().unwrap();

    // Money: balances plus what was captured equal what was deposited, to the sun.
    let mut held = 0u64;
    let mut spent = 0u64;
    for a in 0..ACCOUNTS {
        let b = buses
            .account
            .load(&format!("tg:{a}"))
            .await
            .unwrap()
            .0
            .balance(Asset::Trx);
        held += b.available + b.reserved;
        spent += b.spent;
    }
    assert_eq!(held + spent, deposited);
    let mut outcomes = std::collections::BTreeMap::new();
    let mut captured = 0u64;
    for id in &ids {
        let (order, _) = buses.order.load(id).await.unwrap();
        *outcomes.entry(format!("{:?}", order.status())).or_insert(0) += 1;
        if order.status() == OrderStatus::Completed {
            captured += order.placement().unwrap().quote.price.units();
        }
    }
    eprintln!("outcomes: {outcomes:?}");
    assert_eq!(
        spent, captured,
        "only completed orders were charged: {outcomes:?}"
    );
    assert!(
        outcomes.get("Completed").copied().unwrap_or(0) > 100,
        "{outcomes:?}"
    );
    // The chain: nothing lent that no active order explains (none is active now).
    for wallet in &wallets {
        for receiver in &receivers {
            let lent: i64 = client
                .delegated_resources(wallet, receiver, Finality::Head)
                .await
                .unwrap()
                .iter()
                .map(|d| d.resource_balance(Resource::Energy))
                .sum();
            assert_eq!(lent, 0, "{wallet} still lends to {receiver}");
        }
        let (w, _) = buses.wallet.load(&wallet.to_base58()).await.unwrap();
        assert_eq!(w.reserved_sun(), 0);
    }
}

//! The deposit watcher against real PostgreSQL and the simulator over HTTP, with blocks produced
//! by hand so the boundaries are exact (solid after K = 3 blocks): deposits are detected on
//! inclusion, confirmed only from the solidified chain, credited once by the engine's
//! `DepositFlow`; a re-scan credits nothing twice; a reorganised-away, failed or foreign
//! payment is never credited; a standby watcher takes over from a stopped owner.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{admin, key, start, POLL_LIMIT};
use engine::domain::account::AccountCommand;
use engine::domain::deposit::DepositStatus;
use engine::domain::order::OrderPolicy;
use engine::domain::{AccountId, Asset, DepositRejection};
use engine::process::{drain, Buses, DepositFlow};
use engine::store::{Actor, CommandMetadata};
use engine::testing::TestDb;
use serde_json::json;
use tokio::sync::watch;
use tron_adapter::bip32::DepositSeed;
use tron_adapter::node::{Finality, NodeClient};
use tron_adapter::simulator::{SimConfig, SimHandle};
use tron_adapter::tx;
use tron_adapter::vault::{KeyVault, Keyring, MasterKey};
use tron_adapter::worker::deposits::{HEAD_CURSOR, SOLID_CURSOR};
use tron_adapter::worker::{DepositWatcher, DepositWatcherConfig, ScanReport};
use tron_adapter::TronAddress;

const K: u64 = 3;
const MASTER: &str = "3333333333333333333333333333333333333333333333333333333333333333";

struct World {
    db: TestDb,
    sim: SimHandle,
    client: NodeClient,
    buses: Arc<Buses>,
    flow: Arc<DepositFlow>,
    vault: KeyVault,
    watcher: DepositWatcher,
}

async fn world() -> World {
    let db = TestDb::new().await;
    let (sim, client) = start(SimConfig::manual()).await;
    assert_eq!(sim.shared().config.confirmations, K);
    let buses = Buses::new(db.pool.clone(), OrderPolicy::default());
    let vault = KeyVault::new(
        db.pool.clone(),
        Keyring::new(MasterKey::from_hex(MASTER).unwrap()),
    );
    vault
        .init_deposit_seed(&DepositSeed::from_bytes(&[7u8; 64]).unwrap())
        .await
        .unwrap();
    let watcher = watcher_for(&buses, &client, &sim);
    let flow = Arc::new(DepositFlow::new(buses.clone()));
    // Some history, so that nothing is built on the genesis block.
    sim.produce_blocks(K + 1);
    World {
        db,
        sim,
        client,
        buses,
        flow,
        vault,
        watcher,
    }
}

fn watcher_for(buses: &Arc<Buses>, client: &NodeClient, sim: &SimHandle) -> DepositWatcher {
    let mut config = DepositWatcherConfig::new(sim.usdt_contract());
    config.start_block = Some(0);
    config.poll_interval = Duration::from_millis(10);
    config.standby_retry = Duration::from_millis(20);
    DepositWatcher::new(buses.clone(), client.clone(), config)
}

impl World {
    /// Opens the account and gives it its deposit address.
    async fn customer(&self, id: &str) -> TronAddress {
        let open = AccountCommand::OpenAccount {
            account_id: AccountId::parse(id).unwrap(),
            at: Utc::now(),
        };
        let outcome = self
            .buses
            .account
            .execute(id, open, CommandMetadata::new(Actor::new("test", "admin")))
            .await
            .unwrap();
        assert!(outcome.is_accepted());
        self.vault.deposit_address(id).await.unwrap().address
    }

    /// The outside customer pays `to`; returns the txid.
    async fn pay(&self, to: &TronAddress, asset: &str, amount: u64) -> String {
        let paid = admin(
            &self.sim,
            "transfer",
            json!({"to": to.to_base58(), "asset": asset, "amount": amount}),
        )
        .await;
        paid["txid"].as_str().unwrap().to_string()
    }

    async fn scan(&self) -> ScanReport {
        self.watcher.scan_once().await.unwrap()
    }

    async fn status(&self, deposit_id: &str) -> DepositStatus {
        self.buses
            .deposit
            .load(deposit_id)
            .await
            .unwrap()
            .0
            .status()
    }

    /// Runs the deposit flow and reads the available balance.
    async fn available(&self, account: &str, asset: Asset) -> u64 {
        drain(&self.buses.pool().clone(), &self.flow).await.unwrap();
        let (account, _) = self.buses.account.load(account).await.unwrap();
        account.balance(asset).available
    }

    /// Runs the deposit flow until the available balance is `expected` (bounded).
    async fn wait_available(&self, account: &str, asset: Asset, expected: u64) {
        let deadline = tokio::time::Instant::now() + POLL_LIMIT;
        loop {
            let now = self.available(account, asset).await;
            if now == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{account} {asset}: {now} available, waiting for {expected}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn count_events(&self, aggregate_type: &str, event_type: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_type = $1 AND event_type = $2",
        )
        .bind(aggregate_type)
        .bind(event_type)
        .fetch_one(&self.db.pool)
        .await
        .unwrap()
    }

    /// Produces blocks and scans until the block holding everything paid so far is solid.
    async fn solidify(&self) {
        self.sim.produce_blocks(K + 1);
        self.scan().await;
    }
}

#[tokio::test]
async fn a_trx_and_a_usdt_deposit_are_detected_on_inclusion_confirmed_after_k_blocks_and_credited_once(
) {
    let w = world().await;
    let address = w.customer("tg:1001").await;
    let trx = w.pay(&address, "TRX", 5_000_000).await;
    let usdt = w.pay(&address, "USDT", 25_000_000).await;
    let usdt_id = format!("{usdt}:0");

    // Pooled, not in a block yet: nothing.
    assert_eq!(w.scan().await.detected, 0);
    let included = w.sim.produce_blocks(1);

    let report = w.scan().await;
    assert_eq!((report.detected, report.confirmed), (2, 0));
    assert_eq!(w.status(&trx).await, DepositStatus::Detected);
    assert_eq!(w.status(&usdt_id).await, DepositStatus::Detected);
    let (deposit, _) = w.buses.deposit.load(&usdt_id).await.unwrap();
    let t = deposit.transfer().unwrap();
    assert_eq!(t.block_number, included);
    assert_eq!(t.log_index, Some(0));
    assert_eq!(t.amount.units(), 25_000_000);
    assert_eq!(t.to, address);
    assert_eq!(t.from, w.sim.customer());

    // K - 1 blocks on top: still not solid, nothing confirmed, nothing credited.
    w.sim.produce_blocks(K - 1);
    assert_eq!(w.scan().await.confirmed, 0);
    assert_eq!(w.status(&trx).await, DepositStatus::Detected);
    assert_eq!(w.available("tg:1001", Asset::Trx).await, 0);

    // The K-th block solidifies it.
    w.sim.produce_blocks(1);
    assert_eq!(w.sim.solid_number(), included);
    let report = w.scan().await;
    assert_eq!((report.detected, report.confirmed), (0, 2));
    let (deposit, _) = w.buses.deposit.load(&trx).await.unwrap();
    assert_eq!(deposit.confirmed_block(), Some(included));

    w.wait_available("tg:1001", Asset::Trx, 5_000_000).await;
    w.wait_available("tg:1001", Asset::Usdt, 25_000_000).await;
    assert_eq!(w.status(&trx).await, DepositStatus::Credited);
    assert_eq!(w.status(&usdt_id).await, DepositStatus::Credited);

    // More blocks and more passes change nothing.
    w.sim.produce_blocks(K);
    assert_eq!(
        w.scan().await,
        ScanReport {
            head_blocks: K,
            solid_blocks: K,
            ..ScanReport::default()
        }
    );
    assert_eq!(w.available("tg:1001", Asset::Trx).await, 5_000_000);
    assert_eq!(w.available("tg:1001", Asset::Usdt).await, 25_000_000);
    assert_eq!(w.count_events("account", "FundsCredited").await, 2);
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM pending_deposits")
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(pending, 0, "settled deposits are not pending");
}

#[tokio::test]
async fn scanning_the_same_blocks_twice_credits_nothing_twice() {
    let w = world().await;
    let address = w.customer("tg:1002").await;
    let trx = w.pay(&address, "TRX", 7_000_000).await;
    let usdt = w.pay(&address, "USDT", 3_000_000).await;
    w.sim.produce_blocks(1);
    w.scan().await;
    w.solidify().await;
    w.wait_available("tg:1002", Asset::Trx, 7_000_000).await;
    w.wait_available("tg:1002", Asset::Usdt, 3_000_000).await;

    // Both cursors back to the genesis block: every block is read again, by this watcher and
    // by another process's (its own buses, nothing cached).
    let other_buses = Buses::new(w.db.pool.clone(), OrderPolicy::default());
    let other = watcher_for(&other_buses, &w.client, &w.sim);
    for watcher in [&w.watcher, &other] {
        sqlx::query("UPDATE chain_cursors SET next_block = 0, last_block_id = NULL")
            .execute(&w.db.pool)
            .await
            .unwrap();
        let report = watcher.scan_once().await.unwrap();
        assert!(report.solid_blocks > 0 && report.head_blocks > 0);
        assert_eq!(
            (report.detected, report.confirmed, report.rejected),
            (0, 0, 0),
            "{report:?}"
        );
    }
    let other_flow = Arc::new(DepositFlow::new(other_buses.clone()));
    drain(&w.db.pool, &other_flow).await.unwrap();

    assert_eq!(w.available("tg:1002", Asset::Trx).await, 7_000_000);
    assert_eq!(w.available("tg:1002", Asset::Usdt).await, 3_000_000);
    assert_eq!(w.count_events("account", "FundsCredited").await, 2);
    assert_eq!(w.count_events("deposit", "DepositDetected").await, 2);
    assert_eq!(w.count_events("deposit", "DepositConfirmed").await, 2);
    assert_eq!(w.count_events("deposit", "DepositCredited").await, 2);
    assert_eq!(w.status(&trx).await, DepositStatus::Credited);
    assert_eq!(
        w.status(&format!("{usdt}:0")).await,
        DepositStatus::Credited
    );
    let cursors: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, next_block FROM chain_cursors ORDER BY name")
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    let head = w.sim.head_number() as i64;
    let solid = w.sim.solid_number() as i64;
    assert_eq!(
        cursors,
        vec![
            (HEAD_CURSOR.to_string(), head + 1),
            (SOLID_CURSOR.to_string(), solid + 1)
        ]
    );
}

#[tokio::test]
async fn a_deposit_reorganised_away_before_solidification_is_never_credited_and_is_rejected_as_vanished(
) {
    let w = world().await;
    let address = w.customer("tg:1003").await;
    let txid = w.pay(&address, "TRX", 9_000_000).await;
    let included = w.sim.produce_blocks(1);
    assert_eq!(w.scan().await.detected, 1);
    assert_eq!(w.status(&txid).await, DepositStatus::Detected);

    // Every unsolidified block is dropped; the transaction goes with it.
    let answer = admin(&w.sim, "faults", json!({"reorg": true})).await;
    assert!(answer["reorged_blocks"].as_u64().unwrap() >= 1);
    assert!(w.sim.head_number() < included);

    // The chain grows again without it, and the solid block passes the block it was in. While
    // it could still be included (not expired at the solid block's time), the deposit waits.
    w.sim.produce_blocks(K + 4);
    assert!(w.sim.solid_number() > included);
    let report = w.scan().await;
    assert_eq!((report.confirmed, report.rejected), (0, 0), "{report:?}");
    assert_eq!(w.status(&txid).await, DepositStatus::Detected);

    // Once the solid block's time is past its expiration, no block can take it: vanished.

    w.sim.advance_time(120_000);
    w.sim.produce_blocks(K + 1);
    let report = w.scan().await;
    assert_eq!((report.confirmed, report.rejected), (0, 1), "{report:?}");
    let (deposit, _) = w.buses.deposit.load(&txid).await.unwrap();
    assert_eq!(deposit.status(), DepositStatus::Rejected);
    assert_eq!(deposit.rejection(), Some(DepositRejection::Vanished));

    w.sim.produce_blocks(K + 1);
    w.scan().await;
    assert_eq!(w.available("tg:1003", Asset::Trx).await, 0);
    assert_eq!(w.count_events("account", "FundsCredited").await, 0);
    assert_eq!(w.count_events("deposit", "DepositConfirmed").await, 0);
}

#[tokio::test]
async fn a_deposit_reorganised_into_another_block_is_confirmed_from_that_block_once() {
    let w = world().await;
    let address = w.customer("tg:1007").await;
    let payer_key = key("deposit watcher: payer with its own key");
    let payer = payer_key.address();
    common::activate(&w.sim, &payer, 100).await;
    // Built on the solid block, so a reorganisation cannot take its reference away.
    let solid = w.client.now_block(Finality::Solid).await.unwrap();
    let head = w.client.now_block(Finality::Head).await.unwrap();
    let mut params = tx::TxParams::new(solid.ref_block(), head.timestamp);
    params.expiration = head.timestamp + 3_600_000;
    let raw = tx::build(
        tx::TxContract::new(common::transfer(&payer, &address, 6_000_000)),
        &params,
    )
    .unwrap();
    let signed = tx::SignedTransaction::sign(raw, &payer_key);
    let txid = signed.txid().to_hex();
    w.client.broadcast_hex(&signed).await.unwrap();
    let first_block = w.sim.produce_blocks(1);
    assert_eq!(w.scan().await.detected, 1);

    // Dropped with its block, put back in the pool, and included again in another block.
    admin(&w.sim, "faults", json!({"reorg": {"requeue": true}})).await;
    let second_block = w.sim.produce_blocks(1);
    assert_ne!(second_block, first_block);
    let info = common::wait_info(&w.client, &signed.txid(), Finality::Head).await;
    assert_eq!(info.block_number, second_block);

    // The head cursor had read past the new head: it goes back and reads the new blocks.
    let report = w.scan().await;
    assert!(report.rewound, "{report:?}");
    assert_eq!(w.status(&txid).await, DepositStatus::Detected);
    for _ in 0..2 * K {
        w.sim.produce_blocks(1);
        w.scan().await;
    }
    w.wait_available("tg:1007", Asset::Trx, 6_000_000).await;
    let (deposit, _) = w.buses.deposit.load(&txid).await.unwrap();
    assert_eq!(deposit.status(), DepositStatus::Credited);
    assert_eq!(deposit.confirmed_block(), Some(second_block));
    assert_eq!(w.count_events("account", "FundsCredited").await, 1);
    assert_eq!(w.count_events("deposit", "DepositRejected").await, 0);
}

#[tokio::test]
async fn a_failed_transaction_is_ignored() {
    let w = world().await;
    let address = w.customer("tg:1004").await;
    // More USDT than the customer has: included, reverted, fee burned, no Transfer log.
    let failed = w.pay(&address, "USDT", u64::MAX).await;
    w.sim.produce_blocks(1);
    let shown = w
        .client
        .transaction_info(
            &tron_adapter::tx::TxId(
                tron_adapter::hexstr::decode_array::<32>("txid", &failed).unwrap(),
            ),
            Finality::Head,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(!shown.succeeded(), "the payment is in a block, failed");
    assert_eq!(w.scan().await.detected, 0);
    w.solidify().await;
    assert_eq!(
        w.status(&format!("{failed}:0")).await,
        DepositStatus::New,
        "no deposit at all"
    );
    assert_eq!(w.count_events("deposit", "DepositDetected").await, 0);
    assert_eq!(w.available("tg:1004", Asset::Usdt).await, 0);
}

#[tokio::test]
async fn a_payment_to_an_address_that_is_not_ours_is_ignored() {
    let w = world().await;
    let ours = w.customer("tg:1005").await;
    let stranger = key("someone else's address").address();
    w.pay(&stranger, "TRX", 4_000_000).await;
    w.pay(&stranger, "USDT", 4_000_000).await;
    // One of ours in the same block is still seen.
    let mine = w.pay(&ours, "TRX", 2_000_000).await;
    w.sim.produce_blocks(1);
    let report = w.scan().await;
    assert_eq!(report.detected, 1);
    w.solidify().await;
    w.wait_available("tg:1005", Asset::Trx, 2_000_000).await;
    assert_eq!(w.count_events("deposit", "DepositDetected").await, 1);
    assert_eq!(w.status(&mine).await, DepositStatus::Credited);
    assert_eq!(w.available("tg:1005", Asset::Usdt).await, 0);
}

#[tokio::test]
async fn a_standby_watcher_takes_over_when_the_owner_stops() {
    let w = world().await;
    let address = w.customer("tg:1006").await;
    let other_buses = Buses::new(w.db.pool.clone(), OrderPolicy::default());
    let standby = watcher_for(&other_buses, &w.client, &w.sim);
    let owner = watcher_for(&w.buses, &w.client, &w.sim);

    let (stop_owner, owner_rx) = watch::channel(false);
    let (stop_standby, standby_rx) = watch::channel(false);
    let owner_task = tokio::spawn(async move { owner.run(owner_rx).await });
    let first = w.pay(&address, "TRX", 1_000_000).await;
    w.sim.produce_blocks(K + 1);
    w.wait_available("tg:1006", Asset::Trx, 1_000_000).await;
    assert_eq!(w.status(&first).await, DepositStatus::Credited);

    // The standby starts while the owner holds the lock, then the owner stops.
    let standby_task = tokio::spawn(async move { standby.run(standby_rx).await });
    stop_owner.send(true).unwrap();
    tokio::time::timeout(POLL_LIMIT, owner_task)
        .await
        .expect("the owner stops")
        .unwrap()
        .unwrap();

    let second = w.pay(&address, "TRX", 2_000_000).await;
    w.sim.produce_blocks(K + 1);
    w.wait_available("tg:1006", Asset::Trx, 3_000_000).await;
    assert_eq!(w.status(&second).await, DepositStatus::Credited);

    stop_standby.send(true).unwrap();
    tokio::time::timeout(POLL_LIMIT, standby_task)
        .await
        .expect("the standby stops")
        .unwrap()
        .unwrap();
    assert_eq!(w.count_events("account", "FundsCredited").await, 2);
}

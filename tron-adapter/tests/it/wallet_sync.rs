//! Wallet sync against real PostgreSQL and the simulator over HTTP: the stake and delegatable
//! capacity the chain reports reach the `Wallet` aggregate when they change (and only then), and
//! a wallet below its capacity or balance threshold raises an alert in the gauges.

use crate::common;

use std::sync::Arc;

use chrono::Utc;
use common::{activate, key, stake, start, TRX};
use engine::domain::order::OrderPolicy;
use engine::domain::wallet::WalletCommand;
use engine::domain::{KeyRef, TronAddress};
use engine::process::Buses;
use engine::store::{Actor, CommandMetadata};
use engine::testing::TestDb;
use tron_adapter::node::{energy_for_stake, Finality, NodeClient};
use tron_adapter::simulator::{SimConfig, SimHandle};
use tron_adapter::worker::{WalletSync, WalletSyncConfig};

const TRX_U: u64 = TRX as u64;

struct World {
    db: TestDb,
    sim: SimHandle,
    client: NodeClient,
    buses: Arc<Buses>,
    sync: WalletSync,
}

async fn world(config: WalletSyncConfig) -> World {
    let db = TestDb::new().await;
    let (sim, client) = start(SimConfig::manual()).await;
    let buses = Buses::new(db.pool.clone(), OrderPolicy::default());
    let sync = WalletSync::new(buses.clone(), client.clone(), config);
    World {
        db,
        sim,
        client,
        buses,
        sync,
    }
}

fn thresholds(capacity_trx: u64, balance_trx: u64) -> WalletSyncConfig {
    WalletSyncConfig {
        low_capacity_sun: capacity_trx * TRX_U,
        low_balance_sun: balance_trx * TRX_U,
        ..WalletSyncConfig::default()
    }
}

impl World {
    async fn register(&self, label: &str) -> TronAddress {
        let address = key(label).address();
        let register = WalletCommand::RegisterWallet {
            address,
            key_ref: KeyRef::new(format!("vault:{label}")),
            at: Utc::now(),
        };
        let outcome = self
            .buses
            .wallet
            .execute(
                &address.to_base58(),
                register,
                CommandMetadata::new(Actor::new("test", "admin")),
            )
            .await
            .unwrap();
        assert!(outcome.is_accepted());
        address
    }

    async fn observed_events(&self, wallet: &TronAddress) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_type = 'wallet' \
             AND aggregate_id = $1 AND event_type = 'ResourcesObserved'",
        )
        .bind(wallet.to_base58())
        .fetch_one(&self.db.pool)
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn wallet_sync_observes_the_stake_after_it_is_staked_and_records_only_changes() {
    let w = world(thresholds(100, 10)).await;
    let pool = w.register("sync pool 1").await;
    activate(&w.sim, &pool, 2_000).await;
    w.sim.produce_blocks(1);

    // Activated, nothing staked: the chain says what the wallet already holds (all zeros).
    let report = w.sync.sync_once().await.unwrap();
    assert_eq!((report.wallets, report.observed, report.failed), (1, 0, 0));
    assert_eq!(w.observed_events(&pool).await, 0);

    let staked = stake(&w.sim, &pool, 1_500).await;
    w.sim.produce_blocks(1);
    let report = w.sync.sync_once().await.unwrap();
    assert_eq!((report.wallets, report.observed), (1, 1));
    let (wallet, _) = w.buses.wallet.load(&pool.to_base58()).await.unwrap();
    assert_eq!(wallet.staked_sun(), 1_500 * TRX_U);
    assert_eq!(wallet.delegatable_sun(), 1_500 * TRX_U);
    let resource = w
        .client
        .account_resource(&pool, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(wallet.energy_limit(), resource.energy_limit as u64);
    assert_eq!(
        resource.energy_limit,
        energy_for_stake(
            1_500 * TRX,
            resource.total_energy_limit,
            resource.total_energy_weight
        )
    );
    assert_eq!(staked["EnergyLimit"].as_i64(), Some(resource.energy_limit));

    // Nothing changed on the chain: nothing recorded.
    let report = w.sync.sync_once().await.unwrap();
    assert_eq!(report.observed, 0);
    assert_eq!(w.observed_events(&pool).await, 1);

    // More stake: recorded again.
    stake(&w.sim, &pool, 200).await;
    w.sim.produce_blocks(1);
    assert_eq!(w.sync.sync_once().await.unwrap().observed, 1);
    let (wallet, _) = w.buses.wallet.load(&pool.to_base58()).await.unwrap();
    assert_eq!(wallet.staked_sun(), 1_700 * TRX_U);
    assert_eq!(w.observed_events(&pool).await, 2);

    let gauges = w.sync.gauges();
    let reading = gauges.reading(&pool.to_base58()).unwrap();
    assert!(reading.activated);
    assert_eq!(reading.balance_sun, 300 * TRX_U);
    assert!(!reading.low_capacity && !reading.low_balance);
    assert_eq!(
        gauges
            .observations
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn wallet_sync_raises_the_low_capacity_alert_when_capacity_is_below_the_threshold() {
    // Alert below 900 TRX of delegatable stake, or below 100 TRX of balance.
    let w = world(thresholds(900, 100)).await;
    let pool = w.register("sync pool low").await;
    activate(&w.sim, &pool, 1_000).await;
    stake(&w.sim, &pool, 600).await;
    w.sim.produce_blocks(1);

    let report = w.sync.sync_once().await.unwrap();
    assert_eq!((report.low_capacity, report.low_balance), (1, 0));
    let gauges = w.sync.gauges();
    let wallet = pool.to_base58();
    let reading = gauges.reading(&wallet).unwrap();
    assert!(reading.low_capacity);
    assert_eq!(reading.delegatable_sun, 600 * TRX_U);
    assert_eq!(gauges.low_capacity_wallets(), 1);
    let alerts = |g: &tron_adapter::worker::WalletGauges| {
        g.low_capacity_alerts
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(alerts(&gauges), 1);
    let metrics = gauges.render_prometheus();
    assert!(
        metrics.contains(&format!("trx_wallet_low_capacity{{wallet=\"{wallet}\"}} 1")),
        "{metrics}"
    );
    assert!(metrics.contains("trx_wallet_low_capacity_alerts_total 1"));

    // Still low on the next pass: the gauge stays, the alert is not raised again.
    w.sync.sync_once().await.unwrap();
    assert_eq!(alerts(&gauges), 1);
    assert_eq!(gauges.low_capacity_wallets(), 1);

    // Staked above the threshold: cleared. The balance falls below its threshold: alerted.
    stake(&w.sim, &pool, 350).await;
    w.sim.produce_blocks(1);
    let report = w.sync.sync_once().await.unwrap();
    assert_eq!((report.low_capacity, report.low_balance), (0, 1));
    let reading = gauges.reading(&wallet).unwrap();
    assert!(!reading.low_capacity && reading.low_balance);
    assert_eq!(reading.balance_sun, 50 * TRX_U);
    assert_eq!(gauges.low_capacity_wallets(), 0);
    assert_eq!(gauges.low_balance_wallets(), 1);
    assert_eq!(
        gauges
            .low_balance_alerts
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let metrics = gauges.render_prometheus();
    assert!(metrics.contains(&format!("trx_wallet_low_capacity{{wallet=\"{wallet}\"}} 0")));
    assert!(metrics.contains(&format!("trx_wallet_low_balance{{wallet=\"{wallet}\"}} 1")));
}

#[tokio::test]
async fn a_pool_wallet_that_is_not_activated_reads_as_empty_and_is_alerted() {
    let w = world(thresholds(1, 1)).await;
    let pool = w.register("sync pool never funded").await;
    let report = w.sync.sync_once().await.unwrap();
    assert_eq!((report.wallets, report.observed, report.failed), (1, 0, 0));
    assert_eq!((report.low_capacity, report.low_balance), (1, 1));
    let reading = w.sync.gauges().reading(&pool.to_base58()).unwrap();
    assert!(!reading.activated);
    assert_eq!(reading.staked_sun, 0);
}

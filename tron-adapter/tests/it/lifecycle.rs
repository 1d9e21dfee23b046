//! The order lifecycle end to end: real PostgreSQL, the simulator over HTTP, the process
//! managers, the wallet allocator and the chain worker — the happy path and the failure paths.

use crate::common;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::{activate, admin, key, stake, TRX};
use engine::domain::account::AccountCommand;
use engine::domain::order::{OrderCommand, OrderPolicy, OrderStatus};
use engine::domain::wallet::WalletCommand;
use engine::domain::{AccountId, Amount, Asset, DepositId, DurationTier, KeyRef, PriceTable};
use engine::process::scheduler::run_due;
use engine::process::{drain, Buses, OrderFlow};
use engine::store::{Actor, CommandMetadata};
use engine::testing::TestDb;
use serde_json::json;
use tron_adapter::node::{energy_for_stake, Finality, NodeClient};
use tron_adapter::simulator::{SimConfig, SimHandle};
use tron_adapter::vault::{KeyVault, Keyring, MasterKey};
use tron_adapter::worker::{Allocator, ChainParams, ChainWorker, ChainWorkerConfig};
use tron_adapter::TronAddress;

const ACCOUNT: &str = "tg:77";
const ENERGY: u64 = 65_000;

struct World {
    db: TestDb,
    sim: SimHandle,
    client: NodeClient,
    buses: Arc<Buses>,
    flow: Arc<OrderFlow>,
    allocator: Arc<Allocator>,
    worker: Arc<ChainWorker>,
    wallets: Vec<TronAddress>,
    receiver: TronAddress,
    vault: Arc<KeyVault>,
    policy: OrderPolicy,
}

fn meta() -> CommandMetadata {
    CommandMetadata::new(Actor::new("bot", "bot"))
}

impl World {
    /// A database, a simulator, pool wallets staked with `stakes` TRX each, an activated
    /// receiver (unless told otherwise) and a customer account holding 100 TRX.
    async fn new(stakes: &[i64], receiver_active: bool) -> Self {
        Self::with(SimConfig::for_tests(), stakes, receiver_active).await
    }

    async fn with(config: SimConfig, stakes: &[i64], receiver_active: bool) -> Self {
        let db = TestDb::new().await;
        let (sim, client) = common::start(config).await;
        let vault = Arc::new(KeyVault::new(
            db.pool.clone(),
            Keyring::new(MasterKey::generate()),
        ));
        let mut wallets = Vec::new();
        for (i, trx) in stakes.iter().enumerate() {
            let k = key(&format!("pool-{i}"));
            let (address, _) = vault.store_wallet_key(&k).await.unwrap();
            activate(&sim, &address, trx + 1_000).await;
            stake(&sim, &address, *trx).await;
            wallets.push(address);
        }
        let policy = OrderPolicy {
            prices: PriceTable::sample(),
            pool_wallets: wallets.iter().copied().collect::<BTreeSet<_>>(),
            ..OrderPolicy::default()
        };
        let buses = Buses::new(db.pool.clone(), policy.clone());
        for (address, trx) in wallets.iter().zip(stakes) {
            let id = address.to_base58();
            let register = WalletCommand::RegisterWallet {
                address: *address,
                key_ref: KeyRef::new(format!("vault:wallet:{}", address.to_hex())),
                at: Utc::now(),
            };
            buses.wallet.execute(&id, register, meta()).await.unwrap();
            let observe = WalletCommand::ObserveResources {
                staked_sun: (*trx * TRX) as u64,
                delegatable_sun: (*trx * TRX) as u64,
                energy_limit: 0,
                at: Utc::now(),
            };
            buses.wallet.execute(&id, observe, meta()).await.unwrap();
        }
        let receiver = key("receiver").address();
        if receiver_active {
            activate(&sim, &receiver, 1).await;
        }
        let probe = wallets.first().copied().unwrap_or(receiver);
        let params = Arc::new(ChainParams::new(
            client.clone(),
            probe,
            Duration::from_secs(60),
        ));
        let flow = Arc::new(OrderFlow::new(buses.clone()));
        let allocator = Arc::new(Allocator::new(buses.clone(), client.clone(), params));
        let config = ChainWorkerConfig {
            tick: Duration::from_millis(10),
            confirm_poll: Duration::from_millis(10),
            ..ChainWorkerConfig::default()
        };
        let worker = ChainWorker::new(buses.clone(), client.clone(), vault.clone(), config);
        let open = AccountCommand::OpenAccount {
            account_id: AccountId::parse(ACCOUNT).unwrap(),
            at: Utc::now(),
        };
        buses.account.execute(ACCOUNT, open, meta()).await.unwrap();
        let credit = AccountCommand::CreditDeposit {
            deposit_id: DepositId::parse(&"aa".repeat(32)).unwrap(),
            asset: Asset::Trx,
            amount: Amount::new(100 * TRX as u64).unwrap(),
        };
        buses
            .account
            .execute(ACCOUNT, credit, meta())
            .await
            .unwrap();
        Self {
            db,
            sim,
            client,
            buses,
            flow,
            allocator,
            worker,
            wallets,
            receiver,
            vault,
            policy,
        }
    }

    /// A new process: every in-memory state (aggregates, backoffs) is gone; the database and
    /// the chain remain.
    fn restart(&mut self) {
        self.buses = Buses::new(self.db.pool.clone(), self.policy.clone());
        let params = Arc::new(ChainParams::new(
            self.client.clone(),
            self.wallets[0],
            Duration::from_secs(60),
        ));
        self.flow = Arc::new(OrderFlow::new(self.buses.clone()));
        self.allocator = Arc::new(Allocator::new(
            self.buses.clone(),
            self.client.clone(),
            params,
        ));
        let config = ChainWorkerConfig {
            tick: Duration::from_millis(10),
            confirm_poll: Duration::from_millis(10),
            ..ChainWorkerConfig::default()
        };
        self.worker = ChainWorker::new(
            self.buses.clone(),
            self.client.clone(),
            self.vault.clone(),
            config,
        );
    }

    /// Runs the process managers (not the chain worker) until nothing is left to do.
    async fn settle_managers(&self) {
        for _ in 0..3 {
            drain(&self.db.pool, &self.flow).await.unwrap();
            drain(&self.db.pool, &self.allocator).await.unwrap();
        }
    }

    async fn count(&self, order: &str, event_type: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = $2",
        )
        .bind(order)
        .bind(event_type)
        .fetch_one(&self.db.pool)
        .await
        .unwrap()
    }

    /// Plays a worker that crashed right after recording: builds, signs and records a
    /// transaction for the order's current step, and sends nothing.
    async fn record_like_a_crashed_worker(
        &self,
        order: &str,
        reclaim: bool,
    ) -> tron_adapter::tx::SignedTransaction {
        let (o, _) = self.buses.order.load(order).await.unwrap();
        let d = o.delegation().unwrap();
        let receiver = o.placement().unwrap().receiver;
        let call = if reclaim {
            common::undelegate(&d.wallet, &receiver, d.delegate_sun as i64)
        } else {
            common::delegate(&d.wallet, &receiver, d.delegate_sun as i64, false, 0)
        };
        let mut params = self.client.reference().await.unwrap();
        params.expiration = params.timestamp + 60_000;
        let raw =
            tron_adapter::tx::build(tron_adapter::tx::TxContract::new(call), &params).unwrap();
        let key = self.vault.wallet_key(&d.wallet).await.unwrap();
        let signed = tron_adapter::tx::SignedTransaction::sign(raw, &key);
        let txid = engine::domain::TxId::parse(&signed.txid().to_hex()).unwrap();
        let signed_tx_hex = hex::encode(signed.encode());
        let cmd = if reclaim {
            OrderCommand::RecordReclaimSigned {
                txid,
                signed_tx_hex,
                expiration_ms: params.expiration,
                at: Utc::now(),
            }
        } else {
            OrderCommand::RecordDelegationSigned {
                txid,
                signed_tx_hex,
                expiration_ms: params.expiration,
                at: Utc::now(),
            }
        };
        assert!(self
            .buses
            .order
            .execute(order, cmd, meta())
            .await
            .unwrap()
            .is_accepted());
        signed
    }

    async fn place(&self, order: &str) {
        let cmd = OrderCommand::PlaceOrder {
            account_id: AccountId::parse(ACCOUNT).unwrap(),
            receiver: self.receiver,
            energy: ENERGY,
            duration: DurationTier::OneHour,
            asset: Asset::Trx,
            max_price: None,
            at: Utc::now(),
        };
        let out = self.buses.order.execute(order, cmd, meta()).await.unwrap();
        assert!(out.is_accepted(), "{:?}", out.result);
    }

    /// Runs every worker round after round until `done` holds (bounded).
    async fn pump_until<F, Fut>(&self, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // A failed batch is retried in the next round, as the runner does.
            let _ = drain(&self.db.pool, &self.flow).await;
            let _ = drain(&self.db.pool, &self.allocator).await;
            let _ = drain(&self.db.pool, &self.flow).await;
            for w in &self.wallets {
                let _ = self.worker.pass(w).await;
            }
            if done().await {
                return;
            }
            if Instant::now() > deadline {
                let events: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT aggregate_id, event_type, payload::text FROM events \
                     WHERE aggregate_type = 'order' ORDER BY global_position",
                )
                .fetch_all(&self.db.pool)
                .await
                .unwrap();
                panic!("timed out waiting for: {what}; order events: {events:#?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn status(&self, order: &str) -> OrderStatus {
        self.buses.order.load(order).await.unwrap().0.status()
    }

    async fn balance(&self) -> engine::domain::Balance {
        self.buses
            .account
            .load(ACCOUNT)
            .await
            .unwrap()
            .0
            .balance(Asset::Trx)
    }

    async fn receiver_energy(&self) -> i64 {
        self.client
            .account_resource(&self.receiver, Finality::Head)
            .await
            .unwrap()
            .map(|r| r.energy_limit)
            .unwrap_or(0)
    }

    /// Sun the wallet has lent to the receiver, as the chain records it.
    async fn lent(&self, wallet: &TronAddress) -> i64 {
        self.client
            .delegated_resources(wallet, &self.receiver, Finality::Head)
            .await
            .unwrap()
            .iter()
            .map(|d| d.resource_balance(tron_adapter::tx::Resource::Energy))
            .sum()
    }
}

fn price() -> u64 {
    PriceTable::sample()
        .quote(Asset::Trx, DurationTier::OneHour, ENERGY)
        .unwrap()
        .price
        .units()
}

#[tokio::test]
async fn an_order_is_delegated_reclaimed_at_its_end_completed_and_charged_to_the_sun() {
    let w = World::new(&[100_000], true).await;
    w.place("o-1").await;
    w.pump_until("the order is active", || async {
        w.status("o-1").await == OrderStatus::Active
    })
    .await;

    // The receiver's energy rose by what the formula gives for the stake lent.
    let order = w.buses.order.load("o-1").await.unwrap().0;
    let lent = order.delegation().unwrap().delegate_sun as i64;
    assert_eq!(w.lent(&w.wallets[0]).await, lent);
    let resource = w
        .client
        .account_resource(&w.receiver, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    let expected = energy_for_stake(
        lent,
        resource.total_energy_limit,
        resource.total_energy_weight,
    );
    assert_eq!(resource.energy_limit, expected);
    assert!(
        expected >= ENERGY as i64,
        "{expected} energy for {lent} sun"
    );
    assert_eq!(w.balance().await.reserved, price());

    // The end of the period: the scheduler asks for the reclaim.
    w.pump_until("the reclaim is scheduled", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM scheduled_steps WHERE step = 'reclaim'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap()
            == 1
    })
    .await;
    assert_eq!(
        run_due(&w.buses, Utc::now() + TimeDelta::hours(2), 10)
            .await
            .unwrap(),
        1
    );
    w.pump_until("the order is completed and charged", || async {
        w.status("o-1").await == OrderStatus::Completed && w.balance().await.spent > 0
    })
    .await;
    assert_eq!(w.receiver_energy().await, 0, "the energy went back");
    assert_eq!(w.lent(&w.wallets[0]).await, 0);
    let balance = w.balance().await;
    assert_eq!(balance.spent, price());
    assert_eq!(balance.available, 100 * TRX as u64 - price());
    assert_eq!(balance.reserved, 0);
    let (wallet, _) = w
        .buses
        .wallet
        .load(&w.wallets[0].to_base58())
        .await
        .unwrap();
    assert_eq!(wallet.reserved_sun(), 0);
}

#[tokio::test]
async fn an_order_for_an_unactivated_receiver_is_refunded_with_the_reason() {
    let w = World::new(&[100_000], false).await;
    w.place("o-2").await;
    w.pump_until("the order is refunded", || async {
        w.status("o-2").await == OrderStatus::Refunded && w.balance().await.reserved == 0
    })
    .await;
    assert_eq!(w.balance().await.available, 100 * TRX as u64);
    let reason: String = sqlx::query_scalar(
        "SELECT payload::jsonb #>> '{OrderRefunded,reason}' FROM events \
         WHERE aggregate_id = 'o-2' AND event_type = 'OrderRefunded'",
    )
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert!(reason.contains("not activated"), "{reason}");
}

#[tokio::test]
async fn an_order_no_wallet_has_room_for_is_refunded() {
    let w = World::new(&[1_000], true).await;
    w.place("o-3").await;
    w.pump_until("the order is refunded", || async {
        w.status("o-3").await == OrderStatus::Refunded && w.balance().await.reserved == 0
    })
    .await;
    assert_eq!(w.balance().await.available, 100 * TRX as u64);
    assert_eq!(w.lent(&w.wallets[0]).await, 0);
}

#[tokio::test]
async fn a_lost_broadcast_response_does_not_make_a_second_delegation() {
    let w = World::new(&[100_000], true).await;
    admin(&w.sim, "faults", json!({"lose_broadcast_responses": 1})).await;
    w.place("o-4").await;
    w.pump_until("the order is active", || async {
        w.status("o-4").await == OrderStatus::Active
    })
    .await;
    let order = w.buses.order.load("o-4").await.unwrap().0;
    assert_eq!(order.attempts(), 1);
    assert_eq!(
        w.lent(&w.wallets[0]).await,
        order.delegation().unwrap().delegate_sun as i64
    );
}

#[tokio::test]
async fn a_transaction_never_included_expires_and_exactly_one_new_one_is_built() {
    let w = World::new(&[100_000], true).await;
    admin(&w.sim, "faults", json!({"never_include": 1})).await;
    w.place("o-5").await;
    w.pump_until("the order is active", || async {
        w.status("o-5").await == OrderStatus::Active
    })
    .await;
    let expired: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = 'o-5' AND event_type = 'DelegationExpired'",
    )
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    let signed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = 'o-5' AND event_type = 'DelegationSigned'",
    )
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert_eq!((expired, signed), (1, 2));
    let order = w.buses.order.load("o-5").await.unwrap().0;
    assert_eq!(
        w.lent(&w.wallets[0]).await,
        order.delegation().unwrap().delegate_sun as i64
    );
}

#[tokio::test]
async fn a_delegation_the_node_refuses_is_retried_on_another_wallet() {
    // Two wallets; the first to be chosen (more room) loses its stake on the chain behind our
    // back, so the node refuses its delegation with CONTRACT_VALIDATE_ERROR.
    let w = World::new(&[200_000, 100_000], true).await;
    let bigger = w.wallets[0];
    // Lend almost everything of the bigger wallet elsewhere, outside our books.
    let other = key("someone-else").address();
    activate(&w.sim, &other, 1).await;
    let k = key("pool-0");
    let tx = common::signed(
        &w.client,
        &k,
        common::delegate(&bigger, &other, 199_990 * TRX, false, 0),
    )
    .await;
    let reply = w.client.broadcast_hex(&tx).await.unwrap();
    assert_eq!(reply.code.as_str(), "SUCCESS");
    w.place("o-6").await;
    w.pump_until("the order is active on the other wallet", || async {
        w.status("o-6").await == OrderStatus::Active
    })
    .await;
    let order = w.buses.order.load("o-6").await.unwrap().0;
    assert_eq!(order.delegation().unwrap().wallet, w.wallets[1]);
    assert!(order.failed_wallets().contains(&bigger));
    assert_eq!(order.attempts(), 2);
    let (first, _) = w.buses.wallet.load(&bigger.to_base58()).await.unwrap();
    assert_eq!(
        first.reserved_sun(),
        0,
        "the failed wallet's capacity came back"
    );
}

async fn task_rows(w: &World) -> Vec<(String, String)> {
    sqlx::query_as("SELECT order_id, wallet FROM chain_tasks ORDER BY order_id")
        .fetch_all(&w.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_allocator_hands_the_task_to_the_wallet_and_stale_task_rows_sign_nothing() {
    let w = World::new(&[200_000, 100_000], true).await;
    let (chosen, other) = (w.wallets[0], w.wallets[1]);
    w.place("o-13").await;
    // Only the allocator runs after the order flow made the order paid: the task is open on
    // the chosen wallet before the order flow has read `DelegationRequested`.
    // (Bounded: another test's transaction on the shared server can hold the log's horizon
    // back for a moment, and a drain then stops short.)
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.status("o-13").await == OrderStatus::Placed && Instant::now() < deadline {
        drain(&w.db.pool, &w.flow).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(w.status("o-13").await, OrderStatus::Paid);
    while w.status("o-13").await == OrderStatus::Paid && Instant::now() < deadline {
        drain(&w.db.pool, &w.allocator).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(w.status("o-13").await, OrderStatus::DelegationRequested);
    assert_eq!(
        task_rows(&w).await,
        vec![("o-13".to_string(), chosen.to_base58())]
    );

    // A row pointing at a wallet the order does not use (as a lagging order flow may leave
    // it): that wallet's worker signs nothing and drops the row.
    sqlx::query("UPDATE chain_tasks SET wallet = $1, opened_at = now() WHERE order_id = 'o-13'")
        .bind(other.to_base58())
        .execute(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(w.worker.pass(&other).await.unwrap(), 1);
    assert_eq!(w.count("o-13", "DelegationSigned").await, 0);
    assert_eq!(task_rows(&w).await, vec![]);
    assert_eq!(w.lent(&other).await, 0);

    // The order flow catches up and opens it on the right wallet, which signs it.
    drain(&w.db.pool, &w.flow).await.unwrap();
    assert_eq!(
        task_rows(&w).await,
        vec![("o-13".to_string(), chosen.to_base58())]
    );
    w.pump_until("the order is active", || async {
        w.status("o-13").await == OrderStatus::Active
    })
    .await;
    assert_eq!(w.count("o-13", "DelegationSigned").await, 1);

    // A row for an order with no chain work left is dropped by the wallet's worker.
    sqlx::query(
        "INSERT INTO chain_tasks (order_id, wallet, phase) VALUES ('o-13', $1, 'delegate') \
         ON CONFLICT (order_id) DO UPDATE SET wallet = EXCLUDED.wallet, opened_at = now()",
    )
    .bind(chosen.to_base58())
    .execute(&w.db.pool)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await; // past the worker's confirm_poll
    w.worker.pass(&chosen).await.unwrap();
    assert_eq!(task_rows(&w).await, vec![]);
    assert_eq!(w.count("o-13", "DelegationSigned").await, 1);
}

#[tokio::test]
async fn a_customer_cancelling_before_delegation_gets_the_money_back_and_nothing_is_lent() {
    let w = World::new(&[100_000], true).await;
    w.place("o-7").await;
    // Pay the order, but do not run the allocator yet.
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.status("o-7").await != OrderStatus::Paid {
        drain(&w.db.pool, &w.flow).await.unwrap();
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cancel = OrderCommand::CancelOrder {
        by: engine::domain::order::CancelledBy::Customer,
        at: Utc::now(),
    };
    assert!(w
        .buses
        .order
        .execute("o-7", cancel, meta())
        .await
        .unwrap()
        .is_accepted());
    w.pump_until("the money is back", || async {
        w.balance().await.reserved == 0
    })
    .await;
    assert_eq!(w.status("o-7").await, OrderStatus::Cancelled);
    assert_eq!(w.balance().await.available, 100 * TRX as u64);
    assert_eq!(w.lent(&w.wallets[0]).await, 0);
}

#[tokio::test]
async fn workers_restarted_at_every_step_make_exactly_one_delegation_and_one_reclaim() {
    // Blocks only when the test produces them, so every step can be stopped in between.
    let mut w = World::with(SimConfig::manual(), &[100_000], true).await;
    let wallet = w.wallets[0];
    w.place("o-9").await;
    w.settle_managers().await;
    assert_eq!(w.status("o-9").await, OrderStatus::DelegationRequested);

    // Crash before signing: a new process picks the task up and signs it — but here the crashed
    // worker got as far as recording (write-ahead) and stopped before sending anything.
    w.restart();
    let first = w.record_like_a_crashed_worker("o-9", false).await;
    // Restart after recording: the new worker sends exactly those bytes.
    w.restart();
    w.worker.pass(&wallet).await.unwrap();
    w.sim.produce_blocks(1);
    let info = w
        .client
        .transaction_info(&first.txid(), Finality::Head)
        .await
        .unwrap();
    assert!(
        info.is_some(),
        "the recorded bytes were broadcast and included"
    );
    // Restart after broadcasting, before confirmation: nothing is sent twice, nothing built anew.
    w.restart();
    w.worker.pass(&wallet).await.unwrap();
    assert_eq!(
        w.status("o-9").await,
        OrderStatus::DelegationSigned,
        "not solid yet"
    );
    w.sim.produce_blocks(3);
    w.restart();
    w.worker.pass(&wallet).await.unwrap();
    assert_eq!(w.status("o-9").await, OrderStatus::Active);
    assert_eq!(w.count("o-9", "DelegationSigned").await, 1);
    let lent = w
        .buses
        .order
        .load("o-9")
        .await
        .unwrap()
        .0
        .delegation()
        .unwrap()
        .delegate_sun as i64;
    assert_eq!(w.lent(&wallet).await, lent);

    // The reclaim, crashing at the same points.
    w.settle_managers().await;
    assert_eq!(
        run_due(&w.buses, Utc::now() + TimeDelta::hours(2), 10)
            .await
            .unwrap(),
        1
    );
    w.settle_managers().await;
    w.restart();
    let reclaim = w.record_like_a_crashed_worker("o-9", true).await;
    w.restart();
    w.worker.pass(&wallet).await.unwrap();
    w.restart();
    w.worker.pass(&wallet).await.unwrap();
    w.sim.produce_blocks(4);
    w.restart();
    w.worker.pass(&wallet).await.unwrap();
    assert!(w
        .client
        .transaction_info(&reclaim.txid(), Finality::Solid)
        .await
        .unwrap()
        .is_some());
    w.settle_managers().await;
    assert_eq!(w.status("o-9").await, OrderStatus::Completed);
    assert_eq!(w.count("o-9", "ReclaimSigned").await, 1);
    assert_eq!(w.lent(&wallet).await, 0);
    let balance = w.balance().await;
    assert_eq!((balance.spent, balance.reserved), (price(), 0));
    assert_eq!(balance.available, 100 * TRX as u64 - price());
}

#[tokio::test]
async fn the_node_down_for_a_while_delays_the_order_but_loses_and_doubles_nothing() {
    let w = World::new(&[100_000], true).await;
    w.place("o-10").await;
    // The next 40 node requests fail with HTTP 503 (the client's retries give up on some).
    admin(&w.sim, "faults", json!({"http_5xx": 40})).await;
    w.pump_until("the order is active", || async {
        w.status("o-10").await == OrderStatus::Active
    })
    .await;
    let order = w.buses.order.load("o-10").await.unwrap().0;
    assert_eq!(order.attempts(), 1);
    assert_eq!(
        w.lent(&w.wallets[0]).await,
        order.delegation().unwrap().delegate_sun as i64
    );
    assert_eq!(w.balance().await.reserved, price());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_chain_worker_takes_over_the_wallet_when_the_owner_stops() {
    let w = World::new(&[100_000], true).await;
    let config = ChainWorkerConfig {
        tick: Duration::from_millis(10),
        confirm_poll: Duration::from_millis(10),
        wallet_refresh: Duration::from_millis(50),
        ..ChainWorkerConfig::default()
    };
    // Two processes, each with its own buses and worker.
    let other = Buses::new(w.db.pool.clone(), w.policy.clone());
    let first = ChainWorker::new(
        w.buses.clone(),
        w.client.clone(),
        w.vault.clone(),
        config.clone(),
    );
    let second = ChainWorker::new(other, w.client.clone(), w.vault.clone(), config);
    let (stop_first, rx_first) = tokio::sync::watch::channel(false);
    let (stop_second, rx_second) = tokio::sync::watch::channel(false);
    let a = tokio::spawn(first.run(rx_first));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = tokio::spawn(second.run(rx_second));
    let owners = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&w.db.pool)
        .await
        .unwrap()
    };
    let managers_until = |order: &'static str| {
        let w = &w;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while w.status(order).await != OrderStatus::Active {
                w.settle_managers().await;
                assert!(Instant::now() < deadline, "{order} never became active");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    w.place("o-11").await;
    managers_until("o-11").await;
    assert_eq!(owners().await, 1, "one owner for the one wallet");

    // The owner stops; the standby takes the wallet and serves the next order.
    stop_first.send(true).unwrap();
    a.await.unwrap().unwrap();
    w.place("o-12").await;
    managers_until("o-12").await;
    assert_eq!(owners().await, 1);
    stop_second.send(true).unwrap();
    b.await.unwrap().unwrap();
    let lent = w.lent(&w.wallets[0]).await;
    let mut expected = 0;
    for o in ["o-11", "o-12"] {
        expected += w
            .buses
            .order
            .load(o)
            .await
            .unwrap()
            .0
            .delegation()
            .unwrap()
            .delegate_sun as i64;
    }
    assert_eq!(lent, expected, "each order delegated once");
}

//! The process managers against PostgreSQL: payment, rejection, cancellation, timeout,
//! completion and deposit crediting — each idempotent when its events are handled again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use engine::domain::account::AccountCommand;
use engine::domain::deposit::{DepositCommand, DepositStatus};
use engine::domain::ids::{AccountId, TxId};
use engine::domain::order::{CancelledBy, OrderCommand, OrderPolicy, OrderStatus};
use engine::domain::wallet::WalletCommand;
use engine::domain::{Amount, Asset, DurationTier, PriceTable, TronAddress};
use engine::log::{load_checkpoint, LogPosition};
use engine::process::scheduler::run_due;
use engine::process::{drain, Buses, DepositFlow, OrderFlow, Reactor};
use engine::store::{Actor, CommandMetadata};
use engine::testing::TestDb;

const ACCOUNT: &str = "tg:500";
const RECEIVER: &str = "TFVfhkyJAULWQbHMgVfgbkmgeGBkHo5zru";
const WALLET: &str = "TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsE";

fn meta() -> CommandMetadata {
    CommandMetadata::new(Actor::new("bot", "bot"))
}

fn policy() -> OrderPolicy {
    OrderPolicy {
        prices: PriceTable::sample(),
        pool_wallets: [TronAddress::parse(WALLET).unwrap()].into(),
        ..OrderPolicy::default()
    }
}

fn price(energy: u64) -> u64 {
    PriceTable::sample()
        .quote(Asset::Trx, DurationTier::OneDay, energy)
        .unwrap()
        .price
        .units()
}

async fn open_with(buses: &Buses, sun: u64) {
    let open = AccountCommand::OpenAccount {
        account_id: AccountId::parse(ACCOUNT).unwrap(),
        at: Utc::now(),
    };
    buses.account.execute(ACCOUNT, open, meta()).await.unwrap();
    if sun > 0 {
        let credit = AccountCommand::CreditDeposit {
            deposit_id: engine::domain::DepositId::parse(&"ab".repeat(32)).unwrap(),
            asset: Asset::Trx,
            amount: Amount::new(sun).unwrap(),
        };
        assert!(buses
            .account
            .execute(ACCOUNT, credit, meta())
            .await
            .unwrap()
            .is_accepted());
    }
}

async fn place(buses: &Buses, order: &str, energy: u64) {
    let cmd = OrderCommand::PlaceOrder {
        account_id: AccountId::parse(ACCOUNT).unwrap(),
        receiver: TronAddress::parse(RECEIVER).unwrap(),
        energy,
        duration: DurationTier::OneDay,
        asset: Asset::Trx,
        max_price: None,
        at: Utc::now(),
    };
    let out = buses.order.execute(order, cmd, meta()).await.unwrap();
    assert!(out.is_accepted(), "{:?}", out.result);
}

/// Drains the reactor until `done` holds and the reactor has handled every committed event.
/// Other tests' open transactions (on any database of the server: the horizon is the cluster's)
/// may hold the log's horizon back for a moment, so a drain can stop short of the event that made
/// `done` true, before reacting to it.
async fn settle<R: Reactor, F, Fut>(db: &TestDb, reactor: &Arc<R>, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        drain(&db.pool, reactor).await.unwrap();
        if done().await && handled_everything(db, reactor.name()).await {
            return;
        }
        assert!(Instant::now() < deadline, "the flow did not settle");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `reader`'s checkpoint has reached the last committed event of the log.
async fn handled_everything(db: &TestDb, reader: &str) -> bool {
    let last: Option<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM events \
         ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_optional(&db.pool)
    .await
    .unwrap();
    let Some((transaction_id, global_position)) = last else {
        return true;
    };
    let last = LogPosition::new(transaction_id.parse().unwrap(), global_position);
    let mut conn = db.pool.acquire().await.unwrap();
    load_checkpoint(&mut conn, reader).await.unwrap() >= last
}

async fn chain_tasks(db: &TestDb) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT order_id, wallet, phase FROM chain_tasks ORDER BY order_id")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

async fn order_status(buses: &Buses, id: &str) -> OrderStatus {
    buses.order.load(id).await.unwrap().0.status()
}

#[tokio::test]
async fn a_placed_order_reserves_its_price_and_is_paid() {
    let db = TestDb::new().await;
    let buses = Buses::new(db.pool.clone(), policy());
    open_with(&buses, 50_000_000).await;
    place(&buses, "o-1", 65_000).await;
    let flow = Arc::new(OrderFlow::new(buses.clone()));
    settle(&db, &flow, || async {
        order_status(&buses, "o-1").await == OrderStatus::Paid
    })
    .await;
    let balance = buses
        .account
        .load(ACCOUNT)
        .await
        .unwrap()
        .0
        .balance(Asset::Trx);
    assert_eq!(balance.reserved, price(65_000));
    assert_eq!(balance.available, 50_000_000 - price(65_000));
    let scheduled: i64 = sqlx::query_scalar("SELECT count(*) FROM scheduled_steps")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(scheduled, 0, "a paid order has no unpaid timeout left");

    // Handling the whole log again changes nothing.
    sqlx::query("DELETE FROM reader_checkpoints")
        .execute(&db.pool)
        .await
        .unwrap();
    drain(&db.pool, &flow).await.unwrap();
    let again = buses
        .account
        .load(ACCOUNT)
        .await
        .unwrap()
        .0
        .balance(Asset::Trx);
    assert_eq!(again, balance);
}

#[tokio::test]
async fn an_order_the_account_cannot_afford_is_rejected_and_nothing_is_reserved() {
    let db = TestDb::new().await;
    let buses = Buses::new(db.pool.clone(), policy());
    open_with(&buses, price(65_000) - 1).await;
    place(&buses, "o-2", 65_000).await;
    let flow = Arc::new(OrderFlow::new(buses.clone()));
    settle(&db, &flow, || async {
        order_status(&buses, "o-2").await == OrderStatus::Rejected
    })
    .await;
    let balance = buses
        .account
        .load(ACCOUNT)
        .await
        .unwrap()
        .0
        .balance(Asset::Trx);
    assert_eq!(
        (balance.available, balance.reserved),
        (price(65_000) - 1, 0)
    );
}

#[tokio::test]
async fn a_customer_cancelling_a_paid_order_gets_the_money_back() {
    let db = TestDb::new().await;
    let buses = Buses::new(db.pool.clone(), policy());
    open_with(&buses, 50_000_000).await;
    place(&buses, "o-3", 65_000).await;
    let flow = Arc::new(OrderFlow::new(buses.clone()));
    settle(&db, &flow, || async {
        order_status(&buses, "o-3").await == OrderStatus::Paid
    })
    .await;
    let cancel = OrderCommand::CancelOrder {
        by: CancelledBy::Customer,
        at: Utc::now(),
    };
    assert!(buses
        .order
        .execute("o-3", cancel, meta())
        .await
        .unwrap()
        .is_accepted());
    settle(&db, &flow, || async {
        buses
            .account
            .load(ACCOUNT)
            .await
            .unwrap()
            .0
            .balance(Asset::Trx)
            .reserved
            == 0
    })
    .await;
    let balance = buses
        .account
        .load(ACCOUNT)
        .await
        .unwrap()
        .0
        .balance(Asset::Trx);
    assert_eq!(
        (balance.available, balance.refunded),
        (50_000_000, price(65_000))
    );
}

#[tokio::test]
async fn an_order_left_unpaid_past_its_timeout_is_cancelled_and_a_late_reservation_is_returned() {
    let db = TestDb::new().await;
    let buses = Buses::new(db.pool.clone(), policy());
    open_with(&buses, 50_000_000).await;
    place(&buses, "o-4", 65_000).await;
    // The scheduler row is written by the flow; the timeout fires before the payment lands.
    sqlx::query(
        "INSERT INTO scheduled_steps (step, aggregate_id, due_at, correlation_id) \
         VALUES ('unpaid-timeout', 'o-4', now() - interval '1 second', gen_random_uuid())",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        run_due(&buses, Utc::now() + TimeDelta::hours(1), 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(order_status(&buses, "o-4").await, OrderStatus::Cancelled);

    // The flow now reserves (OrderPlaced), finds the order closed, and releases the money.
    let flow = Arc::new(OrderFlow::new(buses.clone()));
    settle(&db, &flow, || async {
        let b = buses
            .account
            .load(ACCOUNT)
            .await
            .unwrap()
            .0
            .balance(Asset::Trx);
        b.refunded > 0 && b.reserved == 0
    })
    .await;
    let balance = buses
        .account
        .load(ACCOUNT)
        .await
        .unwrap()
        .0
        .balance(Asset::Trx);
    assert_eq!(balance.available, 50_000_000);
    assert_eq!(order_status(&buses, "o-4").await, OrderStatus::Cancelled);
}

#[tokio::test]
async fn a_delivered_order_is_reclaimed_on_schedule_completed_and_its_price_captured() {
    let db = TestDb::new().await;
    let buses = Buses::new(db.pool.clone(), policy());
    open_with(&buses, 50_000_000).await;
    let wallet = TronAddress::parse(WALLET).unwrap();
    let register = WalletCommand::RegisterWallet {
        address: wallet,
        key_ref: engine::domain::KeyRef::new("vault:pool-1"),
        at: Utc::now(),
    };
    buses
        .wallet
        .execute(WALLET, register, meta())
        .await
        .unwrap();
    let observe = WalletCommand::ObserveResources {
        staked_sun: 1_000_000_000_000,
        delegatable_sun: 1_000_000_000_000,
        energy_limit: 11_000_000,
        at: Utc::now(),
    };
    buses.wallet.execute(WALLET, observe, meta()).await.unwrap();
    place(&buses, "o-5", 65_000).await;
    let flow = Arc::new(OrderFlow::new(buses.clone()));
    settle(&db, &flow, || async {
        order_status(&buses, "o-5").await == OrderStatus::Paid
    })
    .await;

    // The adapter's part, played by hand: capacity, delegation, confirmation.
    let oid = engine::domain::OrderId::parse("o-5").unwrap();
    let reserve = WalletCommand::ReserveCapacity {
        order_id: oid.clone(),
        sun: 6_000_000_000,
    };
    assert!(buses
        .wallet
        .execute(WALLET, reserve, meta())
        .await
        .unwrap()
        .is_accepted());
    let txid = TxId::parse(&"cd".repeat(32)).unwrap();
    for cmd in [
        OrderCommand::RequestDelegation {
            wallet,
            delegate_sun: 6_000_000_000,
            at: Utc::now(),
        },
        OrderCommand::RecordDelegationSigned {
            txid: txid.clone(),
            signed_tx_hex: "0a02".into(),
            expiration_ms: 1,
            at: Utc::now(),
        },
        OrderCommand::ConfirmDelegation {
            txid: txid.clone(),
            block_number: 7,
            at: Utc::now(),
        },
    ] {
        let out = buses.order.execute("o-5", cmd, meta()).await.unwrap();
        assert!(out.is_accepted(), "{:?}", out.result);
    }
    // The flow schedules the reclaim at the end of the period; the scheduler requests it.
    settle(&db, &flow, || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM scheduled_steps WHERE step = 'reclaim'")
            .fetch_one(&db.pool)
            .await
            .unwrap()
            == 1
    })
    .await;
    assert_eq!(
        chain_tasks(&db).await,
        vec![],
        "an active order has no chain work"
    );
    assert_eq!(
        run_due(&buses, Utc::now(), 10).await.unwrap(),
        0,
        "not due yet"
    );
    assert_eq!(
        run_due(&buses, Utc::now() + TimeDelta::days(2), 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        order_status(&buses, "o-5").await,
        OrderStatus::ReclaimRequested
    );
    settle(&db, &flow, || async { !chain_tasks(&db).await.is_empty() }).await;
    let reclaim = ("o-5".to_string(), WALLET.to_string(), "reclaim".to_string());
    assert_eq!(chain_tasks(&db).await, vec![reclaim]);
    let rtx = TxId::parse(&"ef".repeat(32)).unwrap();
    for cmd in [
        OrderCommand::RecordReclaimSigned {
            txid: rtx.clone(),
            signed_tx_hex: "0a02".into(),
            expiration_ms: 1,
            at: Utc::now(),
        },
        OrderCommand::ConfirmReclaim {
            txid: rtx,
            block_number: 99,
            at: Utc::now(),
        },
    ] {
        assert!(buses
            .order
            .execute("o-5", cmd, meta())
            .await
            .unwrap()
            .is_accepted());
    }
    settle(&db, &flow, || async {
        buses
            .account
            .load(ACCOUNT)
            .await
            .unwrap()
            .0
            .balance(Asset::Trx)
            .spent
            > 0
    })
    .await;
    assert_eq!(order_status(&buses, "o-5").await, OrderStatus::Completed);
    assert_eq!(chain_tasks(&db).await, vec![]);
    let balance = buses
        .account
        .load(ACCOUNT)
        .await
        .unwrap()
        .0
        .balance(Asset::Trx);
    assert_eq!(balance.spent, price(65_000));
    assert_eq!(balance.reserved, 0);
    assert_eq!(balance.available, 50_000_000 - price(65_000));
    let (w, _) = buses.wallet.load(WALLET).await.unwrap();
    assert_eq!(w.reserved_sun(), 0, "the wallet's capacity came back");
}

#[tokio::test]
async fn a_confirmed_deposit_is_credited_once_even_when_handled_twice() {
    let db = TestDb::new().await;
    let buses = Buses::new(db.pool.clone(), policy());
    open_with(&buses, 0).await;
    let txid = TxId::parse(&"12".repeat(32)).unwrap();
    let id = txid.to_string();
    let detect = DepositCommand::DetectDeposit {
        account_id: AccountId::parse(ACCOUNT).unwrap(),
        asset: Asset::Trx,
        amount: Amount::new(25_000_000).unwrap(),
        txid,
        log_index: None,
        from: TronAddress::parse(RECEIVER).unwrap(),
        to: TronAddress::parse(WALLET).unwrap(),
        block_number: 10,
        at: Utc::now(),
    };
    assert!(buses
        .deposit
        .execute(&id, detect, meta())
        .await
        .unwrap()
        .is_accepted());
    let confirm = DepositCommand::ConfirmDeposit {
        block_number: 10,
        at: Utc::now(),
    };
    assert!(buses
        .deposit
        .execute(&id, confirm, meta())
        .await
        .unwrap()
        .is_accepted());

    let flow = Arc::new(DepositFlow::new(buses.clone()));
    settle(&db, &flow, || async {
        buses.deposit.load(&id).await.unwrap().0.status() == DepositStatus::Credited
    })
    .await;
    for _ in 0..2 {
        sqlx::query("DELETE FROM reader_checkpoints")
            .execute(&db.pool)
            .await
            .unwrap();
        drain(&db.pool, &flow).await.unwrap();
    }
    // A second process with its own memory handles it again too.
    let other = Buses::new(db.pool.clone(), policy());
    sqlx::query("DELETE FROM reader_checkpoints")
        .execute(&db.pool)
        .await
        .unwrap();
    drain(&db.pool, &Arc::new(DepositFlow::new(other)))
        .await
        .unwrap();
    let balance = buses
        .account
        .load(ACCOUNT)
        .await
        .unwrap()
        .0
        .balance(Asset::Trx);
    assert_eq!(
        (balance.available, balance.deposited),
        (25_000_000, 25_000_000)
    );
}

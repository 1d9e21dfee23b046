//! Commands that start an aggregate (`PlaceOrder`) are decided on the empty state without
//! reading the store first. One that meets a stream another process wrote is decided again on
//! that stream, so the shortcut never writes a second start.

use std::collections::BTreeSet;

use chrono::Utc;
use engine::domain::ids::AccountId;
use engine::domain::order::{Order, OrderCommand, OrderPolicy};
use engine::domain::{Asset, DurationTier, OrderError, PriceTable, TronAddress};
use engine::store::{Actor, CommandBus, CommandMetadata};
use engine::testing::TestDb;

const CUSTOMER: &str = "TFVfhkyJAULWQbHMgVfgbkmgeGBkHo5zru";

fn policy() -> OrderPolicy {
    OrderPolicy {
        prices: PriceTable::sample(),
        pool_wallets: BTreeSet::new(),
        ..OrderPolicy::default()
    }
}

fn place(energy: u64) -> OrderCommand {
    OrderCommand::PlaceOrder {
        account_id: AccountId::parse("tg:1").unwrap(),
        receiver: TronAddress::parse(CUSTOMER).unwrap(),
        energy,
        duration: DurationTier::OneDay,
        asset: Asset::Trx,
        max_price: None,
        at: Utc::now(),
    }
}

fn meta() -> CommandMetadata {
    CommandMetadata::new(Actor::new("bot", "bot"))
}

async fn placed(db: &TestDb, order: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(order)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn placing_an_order_that_another_process_placed_is_refused_on_its_stream_and_writes_nothing()
{
    let db = TestDb::new().await;
    let here = CommandBus::<Order>::new(db.pool.clone(), policy());
    let elsewhere = CommandBus::<Order>::new(db.pool.clone(), policy());
    let first = here
        .execute("order-1", place(65_000), meta())
        .await
        .unwrap();
    assert!(first.is_accepted());
    // `elsewhere` holds nothing of order-1: it decides on the empty state, the append finds the
    // stream, and the command is decided again on the loaded order.
    let again = elsewhere
        .execute("order-1", place(70_000), meta())
        .await
        .unwrap();
    let err: OrderError = again.result.expect_err("a second placement");
    assert_eq!(err.code(), "order_already_placed");
    assert_eq!(placed(&db, "order-1").await, 1);
    let (order, version) = elsewhere.load("order-1").await.unwrap();
    assert_eq!(version, 1);
    assert_eq!(order.placement().unwrap().energy, 65_000);
}

#[tokio::test]
async fn two_processes_placing_one_new_order_at_once_write_it_once() {
    let db = TestDb::new().await;
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let bus = CommandBus::<Order>::new(db.pool.clone(), policy());
        tasks.push(tokio::spawn(async move {
            bus.execute("order-race", place(65_000 + i), meta())
                .await
                .unwrap()
                .is_accepted()
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap());
    }
    assert_eq!(accepted, 1);
    assert_eq!(placed(&db, "order-race").await, 1);
}

//! The runner's in-process wake: appends through a process's buses wake its idle process
//! managers at once, and a wake that never comes (appends by another process) is made up for by
//! polling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use engine::domain::account::AccountCommand;
use engine::domain::ids::AccountId;
use engine::domain::order::{OrderCommand, OrderPolicy, OrderStatus};
use engine::domain::{Amount, Asset, DurationTier, PriceTable, TronAddress};
use engine::process::{run_reactor, Buses, OrderFlow, RunnerConfig};
use engine::store::{Actor, CommandMetadata};
use engine::testing::TestDb;
use futures::FutureExt;
use tokio::sync::watch;

const ACCOUNT: &str = "tg:700";
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

async fn open_account(buses: &Buses) {
    let open = AccountCommand::OpenAccount {
        account_id: AccountId::parse(ACCOUNT).unwrap(),
        at: Utc::now(),
    };
    buses.account.execute(ACCOUNT, open, meta()).await.unwrap();
    let credit = AccountCommand::CreditDeposit {
        deposit_id: engine::domain::DepositId::parse(&"cd".repeat(32)).unwrap(),
        asset: Asset::Trx,
        amount: Amount::new(50_000_000).unwrap(),
    };
    assert!(buses
        .account
        .execute(ACCOUNT, credit, meta())
        .await
        .unwrap()
        .is_accepted());
}

async fn place(buses: &Buses, order: &str) {
    let cmd = OrderCommand::PlaceOrder {
        account_id: AccountId::parse(ACCOUNT).unwrap(),
        receiver: TronAddress::parse(RECEIVER).unwrap(),
        energy: 65_000,
        duration: DurationTier::OneDay,
        asset: Asset::Trx,
        max_price: None,
        at: Utc::now(),
    };
    assert!(buses
        .order
        .execute(order, cmd, meta())
        .await
        .unwrap()
        .is_accepted());
}

/// Waits (bounded) until `order` is paid, as `buses` see it.
async fn until_paid(buses: &Buses, order: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if buses.order.load(order).await.unwrap().0.status() == OrderStatus::Paid {
            return;
        }
        assert!(Instant::now() < deadline, "{order} was never paid");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_append_signals_every_task_waiting_on_the_buses() {
    let db = TestDb::new().await;
    let buses = Buses::new(db.pool.clone(), policy());
    let appended = buses.appended();
    let mut waiting = Box::pin(appended.notified());
    waiting.as_mut().enable();
    assert!(
        waiting.as_mut().now_or_never().is_none(),
        "nothing appended yet"
    );
    let mut waiting = Box::pin(appended.notified());
    waiting.as_mut().enable();
    open_account(&buses).await;
    assert!(
        waiting.now_or_never().is_some(),
        "an append through the buses signals the tasks waiting on them"
    );
}

/// The runner polls only once an hour here: the order is paid only because the appends of this
/// process wake it.
#[tokio::test]
async fn an_idle_runner_is_woken_by_this_process_appends() {
    let db = TestDb::new().await;
    let buses = Buses::new(db.pool.clone(), policy());
    open_account(&buses).await;
    let config = RunnerConfig {
        idle_min: Duration::from_secs(3_600),
        idle_max: Duration::from_secs(3_600),
        ..RunnerConfig::default()
    };
    let (stop, rx) = watch::channel(false);
    let flow = Arc::new(OrderFlow::new(buses.clone()));
    let runner = tokio::spawn(run_reactor(db.pool.clone(), flow, config, rx));
    // Let it read the (empty of orders) log and go idle first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    place(&buses, "o-wake").await;
    until_paid(&buses, "o-wake").await;
    stop.send(true).unwrap();
    runner.await.unwrap().unwrap();
}

/// Appends by another process wake nothing here: polling finds them.
#[tokio::test]
async fn a_runner_never_woken_still_finds_other_processes_appends() {
    let db = TestDb::new().await;
    let ours = Buses::new(db.pool.clone(), policy());
    let theirs = Buses::new(db.pool.clone(), policy());
    open_account(&theirs).await;
    let config = RunnerConfig {
        idle_max: Duration::from_millis(50),
        ..RunnerConfig::default()
    };
    let (stop, rx) = watch::channel(false);
    let flow = Arc::new(OrderFlow::new(ours.clone()));
    let runner = tokio::spawn(run_reactor(db.pool.clone(), flow, config, rx));
    tokio::time::sleep(Duration::from_millis(300)).await;
    place(&theirs, "o-poll").await;
    until_paid(&theirs, "o-poll").await;
    stop.send(true).unwrap();
    runner.await.unwrap().unwrap();
}

//! The command bus against real PostgreSQL: concurrent reservations, idempotent command ids,
//! several processes on one aggregate, and snapshots proven equal to a full replay.

use std::sync::Arc;

use chrono::Utc;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::EventStore;
use engine::domain::account::{Account, AccountCommand};
use engine::domain::ids::{AccountId, DepositId, OrderId};
use engine::domain::{
    AccountError, Amount, Asset, DomainAggregate, KeyRef, TronAddress, Wallet, WalletCommand,
};
use engine::store::event_store::Loaded;
use engine::store::{Actor, BusConfig, CommandBus, CommandMetadata};
use engine::testing::TestDb;
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;
use uuid::Uuid;

const ACCOUNT: &str = "tg:42";

fn meta() -> CommandMetadata {
    CommandMetadata::new(Actor::new("test", "bot"))
}

fn deposit_id(n: u64) -> DepositId {
    DepositId::parse(&format!("{n:064x}")).unwrap()
}

fn reserve(order: usize, amount: u64) -> AccountCommand {
    AccountCommand::ReserveFunds {
        order_id: OrderId::parse(format!("order-{order}")).unwrap(),
        asset: Asset::Trx,
        amount: Amount::new(amount).unwrap(),
    }
}

async fn open_and_fund(bus: &CommandBus<Account>, sun: u64) {
    let open = AccountCommand::OpenAccount {
        account_id: AccountId::parse(ACCOUNT).unwrap(),
        at: Utc::now(),
    };
    assert!(bus
        .execute(ACCOUNT, open, meta())
        .await
        .unwrap()
        .is_accepted());
    let credit = AccountCommand::CreditDeposit {
        deposit_id: deposit_id(1),
        asset: Asset::Trx,
        amount: Amount::new(sun).unwrap(),
    };
    assert!(bus
        .execute(ACCOUNT, credit, meta())
        .await
        .unwrap()
        .is_accepted());
}

async fn event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(ACCOUNT)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The account as postgres-es itself rebuilds it from every stored event (no snapshot).
async fn full_replay(pool: &PgPool) -> Account {
    let store: PersistedEventStore<PostgresEventRepository, Account> =
        PersistedEventStore::new_event_store(PostgresEventRepository::new(pool.clone()));
    store.load_aggregate(ACCOUNT).await.unwrap().aggregate
}

#[tokio::test]
async fn fifty_concurrent_reservations_on_an_account_that_can_afford_ten_leave_an_exact_balance() {
    let db = TestDb::new().await;
    let bus = Arc::new(CommandBus::<Account>::new(db.pool.clone(), ()));
    open_and_fund(&bus, 10_000_000).await;

    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let bus = bus.clone();
            tokio::spawn(async move { bus.execute(ACCOUNT, reserve(i, 1_000_000), meta()).await })
        })
        .collect();
    let mut accepted = 0;
    let mut insufficient = 0;
    for t in tasks {
        let outcome = t
            .await
            .unwrap()
            .expect("no command fails to reach a decision");
        match outcome.result {
            Ok(_) => accepted += 1,
            Err(AccountError::InsufficientFunds { .. }) => insufficient += 1,
            Err(other) => panic!("unexpected rejection {other:?}"),
        }
    }
    assert_eq!((accepted, insufficient), (10, 40));

    let replayed = full_replay(&db.pool).await;
    let balance = replayed.balance(Asset::Trx);
    assert_eq!(balance.available, 0);
    assert_eq!(balance.reserved, 10_000_000);
    let (live, _) = bus.load(ACCOUNT).await.unwrap();
    assert_eq!(live, replayed);
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM command_log")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        logged, 52,
        "every command, accepted or rejected, is in the command log"
    );
}

#[tokio::test]
async fn two_processes_reserving_on_one_account_never_overdraw_it() {
    let db = TestDb::new().await;
    // Two buses on one database behave as two processes: neither sees the other's memory.
    let one = Arc::new(CommandBus::<Account>::new(db.pool.clone(), ()));
    let two = Arc::new(CommandBus::<Account>::new(db.pool.clone(), ()));
    open_and_fund(&one, 10_000_000).await;

    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let bus = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move { bus.execute(ACCOUNT, reserve(i, 1_000_000), meta()).await })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().is_accepted() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 10);
    let replayed = full_replay(&db.pool).await;
    assert_eq!(replayed.balance(Asset::Trx).available, 0);
    assert_eq!(replayed.balance(Asset::Trx).reserved, 10_000_000);
    assert_eq!(
        one.load(ACCOUNT)
            .await
            .unwrap()
            .0
            .balance(Asset::Trx)
            .reserved,
        10_000_000
    );
    // Each process loaded the account once; any conflict was caught up, not reloaded.
    let (s1, s2) = (one.stats(), two.stats());
    assert_eq!((s1.cold_loads, s2.cold_loads), (1, 1), "{s1:?} {s2:?}");
    assert_eq!(two.load(ACCOUNT).await.unwrap().0, replayed);
}

#[tokio::test]
async fn a_process_whose_append_finds_the_stream_moved_catches_up_instead_of_reloading() {
    let db = TestDb::new().await;
    let one = CommandBus::<Account>::new(db.pool.clone(), ());
    let two = CommandBus::<Account>::new(db.pool.clone(), ());
    open_and_fund(&one, 10_000_000).await;
    // The two processes take turns: every append finds the other one's events first.
    for i in 0..6 {
        let bus = if i % 2 == 0 { &two } else { &one };
        let outcome = bus
            .execute(ACCOUNT, reserve(i, 1_000_000), meta())
            .await
            .unwrap();
        assert!(outcome.is_accepted());
    }
    assert_eq!(one.stats().cold_loads, 1, "{:?}", one.stats());
    assert_eq!(two.stats().cold_loads, 1, "{:?}", two.stats());
    assert_eq!(one.stats().stale_appends, 3);
    assert_eq!(two.stats().stale_appends, 2);
    let replayed = full_replay(&db.pool).await;
    assert_eq!(replayed.balance(Asset::Trx).reserved, 6_000_000);
    assert_eq!(one.load(ACCOUNT).await.unwrap().0, replayed);
    assert_eq!(two.load(ACCOUNT).await.unwrap().0, replayed);
}

#[tokio::test]
async fn a_decision_whose_append_failed_is_not_in_the_state_the_process_catches_up_from() {
    let db = TestDb::new().await;
    let one = CommandBus::<Account>::new(db.pool.clone(), ());
    let two = CommandBus::<Account>::new(db.pool.clone(), ());
    open_and_fund(&one, 1_000_000).await;
    assert_eq!(two.load(ACCOUNT).await.unwrap().1, 2);
    one.execute(ACCOUNT, reserve(1, 600_000), meta())
        .await
        .unwrap();
    // Process two decides on its old state (1,000,000 available) and accepts; the append finds
    // the stream moved; caught up from the committed state, it decides again and refuses.
    let outcome = two
        .execute(ACCOUNT, reserve(2, 600_000), meta())
        .await
        .unwrap();
    assert_eq!(
        outcome.result,
        Err(AccountError::InsufficientFunds {
            asset: Asset::Trx,
            available: 400_000,
            requested: 600_000,
        })
    );
    assert_eq!(two.stats().stale_appends, 1);
    assert_eq!(two.stats().cold_loads, 1);
    let replayed = full_replay(&db.pool).await;
    assert_eq!(replayed.balance(Asset::Trx).reserved, 600_000);
    let (held, version) = two.load(ACCOUNT).await.unwrap();
    assert_eq!(held, replayed);
    assert_eq!(version, 3, "the refusal wrote no event");
}

#[tokio::test]
async fn a_conflict_that_outlasts_the_bounded_retries_is_an_error_and_writes_nothing() {
    let db = TestDb::new().await;
    let config = BusConfig {
        max_attempts: 1,
        ..BusConfig::default()
    };
    let ours = CommandBus::<Account>::with_config(db.pool.clone(), (), config);
    // Another process, which moves the stream before each of our attempts.
    let theirs = CommandBus::<Account>::new(db.pool.clone(), ());
    open_and_fund(&theirs, 10_000_000).await;
    let mut last = None;
    for round in 0..3 {
        // We hold the account in memory, then the other process appends to it.
        ours.load(ACCOUNT).await.unwrap();
        let moved = theirs
            .execute(ACCOUNT, reserve(100 + round, 1_000), meta())
            .await
            .unwrap();
        assert!(moved.is_accepted());
        let before = event_count(&db.pool).await;
        let m = meta();
        let command_id = m.command_id;
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            ours.execute(ACCOUNT, reserve(round, 1_000), m),
        )
        .await
        .expect("a conflict beyond the bound is answered, not retried for ever");
        match answer {
            Err(engine::Error::Conflict {
                aggregate_id,
                attempts,
                ..
            }) => {
                assert_eq!(aggregate_id, ACCOUNT);
                assert_eq!(attempts, 1);
            }
            other => panic!("expected a conflict after one attempt, got {other:?}"),
        }
        assert_eq!(event_count(&db.pool).await, before, "no events written");
        let logged: i64 =
            sqlx::query_scalar("SELECT count(*) FROM command_log WHERE command_id = $1")
                .bind(command_id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(logged, 0, "no outcome recorded for the failed command");
        last = Some((round, command_id));
    }
    // Nothing was recorded, so the caller may send the same command again; with the stream
    // holding still it is decided on the current state.
    let (round, command_id) = last.unwrap();
    let again = ours
        .execute(
            ACCOUNT,
            reserve(round, 1_000),
            CommandMetadata::with_command_id(Actor::new("test", "bot"), command_id),
        )
        .await
        .unwrap();
    assert!(!again.duplicate);
    assert!(again.is_accepted(), "{:?}", again.result);
    let replayed = full_replay(&db.pool).await;
    assert_eq!(replayed.balance(Asset::Trx).reserved, 4_000);
}

#[tokio::test]
async fn the_same_command_id_sent_twice_produces_one_set_of_events_and_the_first_outcome() {
    let db = TestDb::new().await;
    let bus = CommandBus::<Account>::new(db.pool.clone(), ());
    open_and_fund(&bus, 5_000_000).await;
    let before = event_count(&db.pool).await;

    let m = meta();
    let first = bus
        .execute(ACCOUNT, reserve(1, 2_000_000), m.clone())
        .await
        .unwrap();
    let second = bus
        .execute(ACCOUNT, reserve(1, 2_000_000), m.clone())
        .await
        .unwrap();
    assert!(!first.duplicate && second.duplicate);
    assert_eq!(first.result, second.result);
    assert_eq!(event_count(&db.pool).await, before + 1);

    // A fresh process (empty memory) also answers from the command log.
    let other = CommandBus::<Account>::new(db.pool.clone(), ());
    let third = other
        .execute(ACCOUNT, reserve(1, 2_000_000), m)
        .await
        .unwrap();
    assert!(third.duplicate);
    assert_eq!(third.result, first.result);
    assert_eq!(event_count(&db.pool).await, before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_many_aggregates_at_once_share_append_statements_and_each_is_written_once() {
    let db = TestDb::new().await;
    let config = BusConfig {
        max_appends: 1,
        ..BusConfig::default()
    };
    let bus = Arc::new(CommandBus::<Account>::with_config(
        db.pool.clone(),
        (),
        config,
    ));
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let bus = bus.clone();
            tokio::spawn(async move {
                let id = format!("tg:{i}");
                let open = AccountCommand::OpenAccount {
                    account_id: AccountId::parse(&id).unwrap(),
                    at: Utc::now(),
                };
                bus.execute(&id, open, meta()).await.unwrap()
            })
        })
        .collect();
    let mut positions = Vec::new();
    for task in tasks {
        let outcome = task.await.unwrap();
        positions.extend(outcome.result.unwrap().positions);
    }
    let stored: Vec<i64> =
        sqlx::query_scalar("SELECT global_position FROM events ORDER BY global_position")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let mut answered: Vec<i64> = positions.iter().map(|p| p.global_position).collect();
    answered.sort();
    assert_eq!(
        answered, stored,
        "every account opened once, at the position it was told"
    );
    let statements = bus.stats().append_statements;
    assert!(statements < 64, "{statements} statements for 64 commands");
}

/// Waits until `n` sessions of this database wait on a lock.
async fn until_waiting_on_locks(pool: &PgPool, n: i64) {
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no session waits on a lock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_goes_away_mid_batch_does_not_abandon_the_commands_it_carried() {
    let db = TestDb::new().await;
    let bus = Arc::new(CommandBus::<Account>::new(db.pool.clone(), ()));
    open_and_fund(&bus, 5_000_000).await;
    // Reads of the events wait for `reads`; appends to the command log wait for `appends`.
    let mut reads = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *reads)
        .await
        .unwrap();
    let mut appends = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE command_log IN EXCLUSIVE MODE")
        .execute(&mut *appends)
        .await
        .unwrap();
    // A read holds the account's writer until `reads` ends; meanwhile two commands queue, and
    // the first to take the writer (the first to ask) decides both in one batch.
    let reader = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.load(ACCOUNT).await })
    };
    until_waiting_on_locks(&db.pool, 1).await;
    let spawn_reserve = |order: usize| {
        let bus = bus.clone();
        tokio::spawn(async move {
            bus.execute(ACCOUNT, reserve(order, 1_000_000), meta())
                .await
        })
    };
    let leader = spawn_reserve(1);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let carried = spawn_reserve(2);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    reads.commit().await.unwrap();
    reader.await.unwrap().unwrap();
    // The batch's append now waits on `appends`; its leader goes away.
    until_waiting_on_locks(&db.pool, 1).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    appends.commit().await.unwrap();

    let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), carried)
        .await
        .expect("the carried command is answered")
        .unwrap()
        .unwrap();
    assert!(outcome.is_accepted());
    let (account, _) = bus.load(ACCOUNT).await.unwrap();
    assert_eq!(
        account.balance(Asset::Trx).reserved,
        2_000_000,
        "both commands of the batch were written"
    );
    assert_eq!(account, full_replay(&db.pool).await);
}

#[tokio::test]
async fn the_same_command_id_racing_in_two_processes_produces_one_set_of_events() {
    let db = TestDb::new().await;
    let one = Arc::new(CommandBus::<Account>::new(db.pool.clone(), ()));
    let two = Arc::new(CommandBus::<Account>::new(db.pool.clone(), ()));
    open_and_fund(&one, 5_000_000).await;
    let before = event_count(&db.pool).await;

    let m = meta();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let bus = if i % 2 == 0 { one.clone() } else { two.clone() };
            let m = m.clone();
            tokio::spawn(async move {
                let credit = AccountCommand::CreditDeposit {
                    deposit_id: deposit_id(99),
                    asset: Asset::Usdt,
                    amount: Amount::new(7_000_000).unwrap(),
                };
                bus.execute(ACCOUNT, credit, m).await.unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| !o.duplicate).count(), 1);
    assert!(outcomes
        .iter()
        .all(|o| o.result == outcomes[0].result && o.is_accepted()));
    assert_eq!(event_count(&db.pool).await, before + 1);
    assert_eq!(
        full_replay(&db.pool).await.balance(Asset::Usdt).available,
        7_000_000
    );
}

#[tokio::test]
async fn a_repeated_rejected_command_keeps_its_rejection_even_once_it_could_succeed() {
    let db = TestDb::new().await;
    let bus = CommandBus::<Account>::new(db.pool.clone(), ());
    open_and_fund(&bus, 1_000_000).await;
    let m = meta();
    let first = bus
        .execute(ACCOUNT, reserve(5, 3_000_000), m.clone())
        .await
        .unwrap();
    assert!(matches!(
        first.result,
        Err(AccountError::InsufficientFunds { .. })
    ));
    let credit = AccountCommand::CreditDeposit {
        deposit_id: deposit_id(2),
        asset: Asset::Trx,
        amount: Amount::new(5_000_000).unwrap(),
    };
    bus.execute(ACCOUNT, credit, meta()).await.unwrap();
    let again = bus
        .execute(ACCOUNT, reserve(5, 3_000_000), m)
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.result, first.result);
    assert_eq!(
        bus.load(ACCOUNT)
            .await
            .unwrap()
            .0
            .balance(Asset::Trx)
            .reserved,
        0
    );
}

#[tokio::test]
async fn a_command_id_reused_for_another_command_is_an_error_not_a_wrong_answer() {
    let db = TestDb::new().await;
    let bus = CommandBus::<Account>::new(db.pool.clone(), ());
    open_and_fund(&bus, 1_000_000).await;
    let m = meta();
    bus.execute(ACCOUNT, reserve(1, 1), m.clone())
        .await
        .unwrap();
    let err = bus
        .execute(
            ACCOUNT,
            AccountCommand::CaptureFunds {
                order_id: OrderId::parse("order-1").unwrap(),
            },
            m,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, engine::Error::CommandIdReused { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn snapshots_bound_the_load_and_equal_a_full_replay() {
    let db = TestDb::new().await;
    let config = BusConfig {
        snapshot_every: 50,
        ..BusConfig::default()
    };
    let bus = CommandBus::<Account>::with_config(db.pool.clone(), (), config.clone());
    open_and_fund(&bus, 1_000_000_000).await;
    for i in 0..230u64 {
        let cmd = match i % 3 {
            0 => reserve(i as usize, 1_000 + i),
            1 => AccountCommand::CaptureFunds {
                order_id: OrderId::parse(format!("order-{}", i - 1)).unwrap(),
            },
            _ => AccountCommand::CreditDeposit {
                deposit_id: deposit_id(1_000 + i),
                asset: Asset::Usdt,
                amount: Amount::new(10 + i).unwrap(),
            },
        };
        assert!(bus
            .execute(ACCOUNT, cmd, meta())
            .await
            .unwrap()
            .is_accepted());
    }
    let (snap_version, schema): (i64, String) = sqlx::query_as(
        "SELECT version, state_schema FROM aggregate_snapshots WHERE aggregate_id = $1",
    )
    .bind(ACCOUNT)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(snap_version, 200);
    assert_eq!(
        schema,
        <Account as engine::domain::DomainAggregate>::STATE_SCHEMA
    );

    let loaded = engine::store::event_store::load::<Account>(
        &db.pool,
        ACCOUNT,
        &engine::store::upcast::upcasters(),
    )
    .await
    .unwrap();
    assert!(loaded.from_snapshot);
    assert_eq!(loaded.version, 232);
    assert_eq!(
        loaded.events_read, 32,
        "only the events after the snapshot are read"
    );
    let replayed = full_replay(&db.pool).await;
    assert_eq!(loaded.aggregate, replayed);
    assert_eq!(bus.load(ACCOUNT).await.unwrap().0, replayed);

    // A snapshot of another state schema is ignored: the load replays everything instead.
    sqlx::query("UPDATE aggregate_snapshots SET state_schema = 'account/0'")
        .execute(&db.pool)
        .await
        .unwrap();
    let fallback = engine::store::event_store::load::<Account>(&db.pool, ACCOUNT, &[])
        .await
        .unwrap();
    assert!(!fallback.from_snapshot);
    assert_eq!(fallback.aggregate, replayed);
}

#[tokio::test]
async fn events_carry_the_metadata_contract_of_their_command() {
    let db = TestDb::new().await;
    let bus = CommandBus::<Account>::new(db.pool.clone(), ());
    let id = Uuid::new_v4();
    let m = CommandMetadata::caused_by(
        id,
        Uuid::new_v4(),
        Uuid::new_v4(),
        Actor::new("alice", "admin"),
    )
    .with_request_id("req-1");
    let open = AccountCommand::OpenAccount {
        account_id: AccountId::parse(ACCOUNT).unwrap(),
        at: Utc::now(),
    };
    let out = bus.execute(ACCOUNT, open, m.clone()).await.unwrap();
    let pos = out.result.unwrap().last_position().unwrap();
    let stored: serde_json::Value =
        sqlx::query_scalar("SELECT metadata::jsonb FROM events WHERE global_position = $1")
            .bind(pos.global_position)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let map: std::collections::HashMap<String, String> = serde_json::from_value(stored).unwrap();
    assert_eq!(CommandMetadata::from_map(&map), Some(m));
}

#[tokio::test]
async fn a_read_sees_what_another_process_appended_since() {
    let db = TestDb::new().await;
    let one = CommandBus::<Account>::new(db.pool.clone(), ());
    let two = CommandBus::<Account>::new(db.pool.clone(), ());
    open_and_fund(&one, 1_000_000).await;
    // Process two reads (and caches) the account, then process one changes it.
    assert_eq!(
        two.load(ACCOUNT)
            .await
            .unwrap()
            .0
            .balance(Asset::Trx)
            .available,
        1_000_000
    );
    one.execute(ACCOUNT, reserve(1, 400_000), meta())
        .await
        .unwrap();
    let (seen, version) = two.load(ACCOUNT).await.unwrap();
    assert_eq!(seen.balance(Asset::Trx).available, 600_000);
    assert_eq!(version, 3);
    assert_eq!(seen, full_replay(&db.pool).await);
}

// ---- hot aggregates: the cost of a cold load does not grow with the history ------------------

/// Sends `count` commands from `writers` concurrent callers (so the bus writes them in batches).
/// Writer `w` sends `command(n, k)` for its `k`-th command, `n` unique across the whole test.
async fn drive<A>(
    bus: &Arc<CommandBus<A>>,
    id: &str,
    from: u64,
    count: u64,
    writers: u64,
    command: fn(u64, u64) -> A::Command,
) where
    A: DomainAggregate + Send + Sync,
    A::Command: Send,
    A::Event: Send,
    A::Error: serde::de::DeserializeOwned + Send + std::fmt::Debug,
    A::Services: Send + Sync,
{
    let per = count / writers;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let bus = bus.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                for k in 0..per {
                    let n = from + w * per + k;
                    let outcome = bus.execute(&id, command(n, k), meta()).await.unwrap();
                    assert!(outcome.is_accepted(), "{:?}", outcome.result);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// What loading the aggregate cold costs once the bus's background snapshot has caught up:
/// the load itself (snapshot plus the events after it) and the snapshot interval in force.
/// Sends `nudge` (a command that names no id) if a snapshot was skipped while one was still
/// being written, so the next batch takes it.
async fn cold_load<A>(
    bus: &CommandBus<A>,
    pool: &PgPool,
    id: &str,
    nudge: A::Command,
) -> (Loaded<A>, u64)
where
    A: DomainAggregate,
    A::Error: serde::de::DeserializeOwned + Send,
    A::Event: Send,
{
    let config = BusConfig::default();
    let upcasters = engine::store::upcast::upcasters();
    for round in 0..200 {
        let loaded = engine::store::event_store::load::<A>(pool, id, &upcasters)
            .await
            .unwrap();
        let interval = config
            .snapshot_every
            .max(loaded.snapshot_bytes / config.snapshot_bytes_per_event);
        if loaded.from_snapshot && loaded.events_read <= interval {
            return (loaded, interval);
        }
        if round % 20 == 19 {
            bus.execute(id, nudge.clone(), meta()).await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no snapshot within the interval of the stream's end");
}

/// A deposit, then two orders reserved and captured, over and over.
fn account_command(n: u64, k: u64) -> AccountCommand {
    let order = |n: u64| OrderId::parse(format!("order-{n:09}")).unwrap();
    match k % 5 {
        0 => AccountCommand::CreditDeposit {
            deposit_id: deposit_id(n),
            asset: Asset::Trx,
            amount: Amount::new(1_000).unwrap(),
        },
        1 | 3 => AccountCommand::ReserveFunds {
            order_id: order(n),
            asset: Asset::Trx,
            amount: Amount::new(1_000).unwrap(),
        },
        _ => AccountCommand::CaptureFunds {
            order_id: order(n - 1),
        },
    }
}

/// Reserve for order `n`, then release it.
fn wallet_command(n: u64, k: u64) -> WalletCommand {
    let order = |n: u64| OrderId::parse(format!("order-{n:09}")).unwrap();
    match k % 2 {
        0 => WalletCommand::ReserveCapacity {
            order_id: order(n),
            sun: 10,
        },
        _ => WalletCommand::ReleaseCapacity {
            order_id: order(n - 1),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_account_and_wallet_load_as_cheaply_after_20_000_events_as_after_100() {
    let db = TestDb::new().await;
    let config = BusConfig::default();
    // Beyond this size a snapshot would be spaced out by its bytes; below it, every cold load
    // reads at most `snapshot_every` events after the snapshot.
    let cap = config.snapshot_every * config.snapshot_bytes_per_event;

    let accounts = Arc::new(CommandBus::<Account>::new(db.pool.clone(), ()));
    open_and_fund(&accounts, 1_000_000_000).await;
    let adjust = AccountCommand::AdjustBalance {
        asset: Asset::Trx,
        delta: 1,
        reason: "test".into(),
        actor: "admin:test".into(),
    };
    let address = TronAddress::from_evm_bytes([0x5a; 20]);
    let wallet = address.to_base58();
    let wallets = Arc::new(CommandBus::<Wallet>::new(db.pool.clone(), ()));
    let observe = WalletCommand::ObserveResources {
        staked_sun: 1_000_000_000,
        delegatable_sun: 1_000_000_000,
        energy_limit: 1_000_000,
        at: Utc::now(),
    };
    let register = WalletCommand::RegisterWallet {
        address,
        key_ref: KeyRef::new("vault:pool-1"),
        at: Utc::now(),
    };
    for cmd in [register, observe.clone()] {
        assert!(wallets
            .execute(&wallet, cmd, meta())
            .await
            .unwrap()
            .is_accepted());
    }

    // (events in the stream, snapshot bytes, events read by a cold load) at each size.
    let mut account_costs = Vec::new();
    let mut wallet_costs = Vec::new();
    let mut from = 1_000_000;
    for target in [100u64, 10_000, 20_000] {
        // Few callers for the first hundred events, many (bigger batches) for the rest.
        let writers = if target <= 100 { 20 } else { 100 };
        let (_, account_version) = accounts.load(ACCOUNT).await.unwrap();
        let (_, wallet_version) = wallets.load(&wallet).await.unwrap();
        let step = |version: u64, cycle: u64| {
            let chunk = cycle * writers;
            target.saturating_sub(version).div_ceil(chunk) * chunk
        };
        tokio::join!(
            drive(
                &accounts,
                ACCOUNT,
                from,
                step(account_version, 5),
                writers,
                account_command,
            ),
            drive(
                &wallets,
                &wallet,
                from,
                step(wallet_version, 2),
                writers,
                wallet_command,
            ),
        );
        from += 1_000_000;

        let (cold, interval) = cold_load(&accounts, &db.pool, ACCOUNT, adjust.clone()).await;
        assert_eq!(
            interval, config.snapshot_every,
            "the account's snapshot stays small"
        );
        assert_eq!(cold.aggregate, accounts.load(ACCOUNT).await.unwrap().0);
        account_costs.push((cold.version, cold.snapshot_bytes, cold.events_read));
        let (cold, interval) = cold_load(&wallets, &db.pool, &wallet, observe.clone()).await;
        assert_eq!(
            interval, config.snapshot_every,
            "the wallet's snapshot stays small"
        );
        assert_eq!(cold.aggregate, wallets.load(&wallet).await.unwrap().0);
        wallet_costs.push((cold.version, cold.snapshot_bytes, cold.events_read));
    }
    eprintln!("account (events, snapshot bytes, events read): {account_costs:?}");
    eprintln!("wallet (events, snapshot bytes, events read): {wallet_costs:?}");

    for costs in [&account_costs, &wallet_costs] {
        let [small, half, full] = costs[..] else {
            unreachable!()
        };
        assert!(small.0 >= 100 && full.0 >= 20_000, "{costs:?}");
        for (_, bytes, read) in [small, half, full] {
            assert!(bytes < cap, "snapshot of {bytes} bytes: {costs:?}");
            assert!(
                read <= config.snapshot_every,
                "{read} events read: {costs:?}"
            );
        }
        // Between 10,000 and 20,000 events the snapshot stops growing: the ids it remembers are
        // a full window either way. What still varies (the reservations held at that moment,
        // ids a digit longer) is far less than the first 10,000 events added; a snapshot that
        // grew with the history would add as much again.
        assert!(full.1 < half.1 + (half.1 - small.1) / 4, "{costs:?}");
    }
    assert_eq!(
        full_replay(&db.pool).await,
        accounts.load(ACCOUNT).await.unwrap().0
    );
    // Thousands of batches, one load and one copy of each state: the copy that batches are
    // decided on is kept in step, not made again per batch.
    for stats in [accounts.stats(), wallets.stats()] {
        assert_eq!((stats.cold_loads, stats.state_copies), (1, 1), "{stats:?}");
    }
}

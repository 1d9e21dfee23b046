//! Command fingerprints against real PostgreSQL: a command id sent again with the same
//! fingerprint is answered with the first outcome; with another fingerprint it is refused
//! (`CommandIdReused`) and writes nothing, whether the copies meet in one batch, one process
//! after another, or two processes at once.

use std::sync::Arc;

use chrono::Utc;
use engine::domain::account::{Account, AccountCommand};
use engine::domain::ids::{AccountId, DepositId};
use engine::domain::{Amount, Asset};
use engine::store::{Actor, CommandBus, CommandMetadata};
use engine::testing::TestDb;
use uuid::Uuid;

const ACCOUNT: &str = "tg:77";

fn open() -> AccountCommand {
    AccountCommand::OpenAccount {
        account_id: AccountId::parse(ACCOUNT).unwrap(),
        at: Utc::now(),
    }
}

fn credit(sun: u64) -> AccountCommand {
    AccountCommand::CreditDeposit {
        deposit_id: DepositId::parse(&format!("{sun:064x}")).unwrap(),
        asset: Asset::Trx,
        amount: Amount::new(sun).unwrap(),
    }
}

fn meta(id: Uuid, fingerprint: &str) -> CommandMetadata {
    CommandMetadata::with_command_id(Actor::new("test", "bot"), id).with_fingerprint(fingerprint)
}

async fn events(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_command_id_again_with_its_fingerprint_gets_the_first_outcome_and_with_another_is_refused(
) {
    let db = TestDb::new().await;
    let bus = CommandBus::<Account>::new(db.pool.clone(), ());
    let id = Uuid::new_v4();
    let first = bus.execute(ACCOUNT, open(), meta(id, "a")).await.unwrap();
    assert!(first.is_accepted() && !first.duplicate);
    // Another process (a second bus) and this one, later.
    let elsewhere = CommandBus::<Account>::new(db.pool.clone(), ());
    for bus in [&bus, &elsewhere] {
        let again = bus.execute(ACCOUNT, open(), meta(id, "a")).await.unwrap();
        assert!(again.duplicate);
        assert_eq!(again.result.as_ref().ok(), first.result.as_ref().ok());
        let err = bus
            .execute(ACCOUNT, open(), meta(id, "b"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, engine::Error::CommandIdReused { .. }),
            "{err}"
        );
    }
    // A command without a fingerprint is answered as before (process managers send none).
    let plain = CommandMetadata::with_command_id(Actor::new("test", "bot"), id);
    assert!(bus.execute(ACCOUNT, open(), plain).await.unwrap().duplicate);
    assert_eq!(events(&db).await, 1);
}

#[tokio::test]
async fn copies_with_other_fingerprints_racing_in_one_batch_and_two_processes_write_once() {
    let db = TestDb::new().await;
    let bus = Arc::new(CommandBus::<Account>::new(db.pool.clone(), ()));
    let elsewhere = Arc::new(CommandBus::<Account>::new(db.pool.clone(), ()));
    bus.execute(ACCOUNT, open(), meta(Uuid::new_v4(), "open"))
        .await
        .unwrap();
    let id = Uuid::new_v4();
    let mut tasks = Vec::new();
    for i in 0..30u64 {
        let bus = if i % 3 == 0 {
            elsewhere.clone()
        } else {
            bus.clone()
        };
        // Three requests share the id: fingerprints 0, 1 and 2, each sent ten times.
        let fingerprint = format!("{}", i % 3);
        tasks.push(tokio::spawn(async move {
            let sun = 1_000_000 * (1 + i % 3);
            let r = bus
                .execute(ACCOUNT, credit(sun), meta(id, &fingerprint))
                .await;
            (fingerprint, r.map(|o| o.is_accepted()))
        }));
    }
    let mut accepted = std::collections::BTreeMap::<String, usize>::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            (f, Ok(true)) => *accepted.entry(f).or_default() += 1,
            (_, Ok(false)) => panic!("a copy was rejected by the domain"),
            (_, Err(engine::Error::CommandIdReused { .. })) => refused += 1,
            (_, Err(e)) => panic!("{e}"),
        }
    }
    // Exactly one of the three requests ran, and all ten of its copies got its outcome.
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted.values().sum::<usize>(), 10);
    assert_eq!(refused, 20);
    assert_eq!(events(&db).await, 2);
    let winner: u64 = accepted.keys().next().unwrap().parse().unwrap();
    let (account, _) = bus.load(ACCOUNT).await.unwrap();
    assert_eq!(
        account.balance(Asset::Trx).available,
        1_000_000 * (1 + winner)
    );
}

//! Property: random command sequences, run through the bus concurrently against PostgreSQL,
//! never break the balance identity, and the stored events rebuild exactly the live state.

use std::sync::Arc;

use chrono::Utc;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::EventStore;
use engine::domain::account::{Account, AccountCommand};
use engine::domain::ids::{AccountId, DepositId, OrderId};
use engine::domain::{Amount, Asset};
use engine::store::{Actor, BusConfig, CommandBus, CommandMetadata};
use engine::testing::TestDb;
use postgres_es::PostgresEventRepository;
use proptest::prelude::*;

const ID: &str = "tg:prop";

#[derive(Debug, Clone)]
enum Op {
    Credit(u64, bool),
    Reserve(u8, u64, bool),
    Capture(u8),
    Release(u8),
    Adjust(i64, bool),
}

fn asset(usdt: bool) -> Asset {
    if usdt {
        Asset::Usdt
    } else {
        Asset::Trx
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u64..5_000_000, any::<bool>()).prop_map(|(a, u)| Op::Credit(a, u)),
        (0u8..24, 1u64..3_000_000, any::<bool>()).prop_map(|(o, a, u)| Op::Reserve(o, a, u)),
        (0u8..24).prop_map(Op::Capture),
        (0u8..24).prop_map(Op::Release),
        (-4_000_000i64..4_000_000, any::<bool>()).prop_map(|(d, u)| Op::Adjust(d, u)),
    ]
}

fn command(i: usize, op: &Op) -> AccountCommand {
    let order = |o: &u8| OrderId::parse(format!("o-{o}")).unwrap();
    match op {
        Op::Credit(a, u) => AccountCommand::CreditDeposit {
            deposit_id: DepositId::parse(&format!("{i:064x}")).unwrap(),
            asset: asset(*u),
            amount: Amount::new(*a).unwrap(),
        },
        Op::Reserve(o, a, u) => AccountCommand::ReserveFunds {
            order_id: order(o),
            asset: asset(*u),
            amount: Amount::new(*a).unwrap(),
        },
        Op::Capture(o) => AccountCommand::CaptureFunds { order_id: order(o) },
        Op::Release(o) => AccountCommand::ReleaseFunds {
            order_id: order(o),
            reason: "refund".into(),
        },
        Op::Adjust(d, u) => AccountCommand::AdjustBalance {
            asset: asset(*u),
            delta: if *d == 0 { 1 } else { *d },
            reason: "correction".into(),
            actor: "admin".into(),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_random_commands_keep_balances_whole_and_replay_to_the_live_state(
        ops in proptest::collection::vec(op(), 1..120)
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let db = TestDb::new().await;
            let config = BusConfig { snapshot_every: 20, ..BusConfig::default() };
            let bus = Arc::new(CommandBus::<Account>::with_config(db.pool.clone(), (), config));
            let meta = || CommandMetadata::new(Actor::new("prop", "bot"));
            let open = AccountCommand::OpenAccount { account_id: AccountId::parse(ID).unwrap(), at: Utc::now() };
            bus.execute(ID, open, meta()).await.unwrap();
            // Four concurrent callers share the sequence.
            let ops = Arc::new(ops);
            let tasks: Vec<_> = (0..4).map(|w| {
                let (bus, ops) = (bus.clone(), ops.clone());
                tokio::spawn(async move {
                    for (i, op) in ops.iter().enumerate().filter(|(i, _)| i % 4 == w) {
                        bus.execute(ID, command(i, op), meta()).await.expect("decided");
                    }
                })
            }).collect();
            for t in tasks { t.await.unwrap(); }

            let (live, _) = bus.load(ID).await.unwrap();
            for a in Asset::ALL {
                let b = live.balance(a);
                assert_eq!(
                    b.deposited as i128 + b.adjusted_in as i128 - b.adjusted_out as i128 - b.spent as i128,
                    b.available as i128 + b.reserved as i128,
                    "balance identity for {a}: {b:?}"
                );
            }
            let store: PersistedEventStore<PostgresEventRepository, Account> =
                PersistedEventStore::new_event_store(PostgresEventRepository::new(db.pool.clone()));
            let replayed = store.load_aggregate(ID).await.unwrap().aggregate;
            assert_eq!(live, replayed);
            let fresh = CommandBus::<Account>::new(db.pool.clone(), ());
            assert_eq!(fresh.load(ID).await.unwrap().0, replayed);
        });
    }
}

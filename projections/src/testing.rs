//! A workload over the real domain, for tests and the benchmark: accounts, pool wallets,
//! deposits, and orders that complete, are cancelled, are rejected for lack of funds, or fail
//! delivery and are refunded. The same flows run either through the command buses
//! ([`Buses`]) or against in-memory aggregates ([`Sim`]) that record the events for a bulk
//! insert (how the benchmark makes a million events quickly).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use cqrs_es::DomainEvent;
use engine::domain::order::CancelledBy;
use engine::domain::{
    Account, AccountCommand, AccountEvent, AccountId, Amount, Asset, Deposit, DepositCommand,
    DepositEvent, DomainAggregate, DurationTier, KeyRef, Order, OrderCommand, OrderEvent,
    OrderPolicy, PriceTable, TronAddress, TxId, Wallet, WalletCommand, WalletEvent,
};
use engine::store::{Actor, CommandBus, CommandMetadata};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::error::Error;

/// Runs commands against aggregates; `None` when the domain refuses one.
pub trait Exec: Send {
    fn account(
        &mut self,
        id: &str,
        c: AccountCommand,
    ) -> impl Future<Output = Result<Option<Vec<AccountEvent>>, Error>> + Send;
    fn order(
        &mut self,
        id: &str,
        c: OrderCommand,
    ) -> impl Future<Output = Result<Option<Vec<OrderEvent>>, Error>> + Send;
    fn deposit(
        &mut self,
        id: &str,
        c: DepositCommand,
    ) -> impl Future<Output = Result<Option<Vec<DepositEvent>>, Error>> + Send;
    fn wallet(
        &mut self,
        id: &str,
        c: WalletCommand,
    ) -> impl Future<Output = Result<Option<Vec<WalletEvent>>, Error>> + Send;
}

/// What every flow shares: the order policy (sample prices, the pool wallets) and a clock.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub policy: OrderPolicy,
    pub wallets: Vec<TronAddress>,
    pub accounts: Vec<AccountId>,
    pub start: DateTime<Utc>,
}

fn address(tag: &str, i: u64) -> TronAddress {
    let digest = Sha256::digest(format!("{tag}:{i}").as_bytes());
    let mut hash = [0u8; 20];
    hash.copy_from_slice(&digest[..20]);
    TronAddress::from_evm_bytes(hash)
}

fn txid(tag: &str, i: u64) -> TxId {
    TxId::parse(&hex::encode(Sha256::digest(
        format!("{tag}:{i}").as_bytes(),
    )))
    .expect("64 hex digits")
}

impl Ctx {
    /// `accounts` customer accounts (`acct-<tag>-<n>`) and `wallets` pool wallets.
    pub fn new(tag: &str, accounts: usize, wallets: usize) -> Self {
        let wallets: Vec<TronAddress> = (0..wallets as u64)
            .map(|i| address(&format!("pool-{tag}"), i))
            .collect();
        let policy = OrderPolicy {
            prices: PriceTable::sample(),
            pool_wallets: wallets.iter().copied().collect(),
            ..OrderPolicy::default()
        };
        Self {
            policy,
            wallets,
            accounts: (0..accounts)
                .map(|i| AccountId::parse(format!("acct-{tag}-{i}")).expect("valid id"))
                .collect(),
            start: DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
                .expect("valid time")
                .with_timezone(&Utc),
        }
    }

    fn at(&self, flow: u64, step: i64) -> DateTime<Utc> {
        self.start + TimeDelta::seconds(flow as i64 * 7) + TimeDelta::milliseconds(step * 150)
    }
}

/// Registers the pool wallets (with a large observed stake) and opens every account.
pub async fn setup<E: Exec>(ex: &mut E, ctx: &Ctx) -> Result<(), Error> {
    for (i, w) in ctx.wallets.iter().enumerate() {
        let id = w.to_base58();
        ex.wallet(
            &id,
            WalletCommand::RegisterWallet {
                address: *w,
                key_ref: KeyRef::new(format!("vault:pool-{i}")),
                at: ctx.start,
            },
        )
        .await?;
        ex.wallet(
            &id,
            WalletCommand::ObserveResources {
                staked_sun: 1_000_000_000_000_000,
                delegatable_sun: 900_000_000_000_000,
                energy_limit: 11_000_000_000,
                at: ctx.start,
            },
        )
        .await?;
    }
    for a in &ctx.accounts {
        ex.account(
            a.as_str(),
            AccountCommand::OpenAccount {
                account_id: a.clone(),
                at: ctx.start,
            },
        )
        .await?;
    }
    Ok(())
}

/// One flow (numbered `flow`, unique in the run) on a random account: a deposit, an order with
/// a random outcome, or an admin adjustment.
pub async fn flow<E: Exec>(
    ex: &mut E,
    ctx: &Ctx,
    rng: &mut StdRng,
    flow: u64,
) -> Result<(), Error> {
    let account = ctx.accounts[rng.gen_range(0..ctx.accounts.len())].clone();
    let roll = rng.gen_range(0..100);
    if roll < 35 {
        deposit(ex, ctx, rng, flow, &account).await
    } else if roll < 95 {
        order(ex, ctx, rng, flow, &account).await
    } else {
        let asset = if rng.gen_bool(0.5) {
            Asset::Trx
        } else {
            Asset::Usdt
        };
        let delta = if rng.gen_bool(0.7) {
            rng.gen_range(1..5_000_000)
        } else {
            -rng.gen_range(1..1_000_000)
        };
        ex.account(
            account.as_str(),
            AccountCommand::AdjustBalance {
                asset,
                delta,
                reason: "goodwill correction".into(),
                actor: "admin-1".into(),
            },
        )
        .await?;
        Ok(())
    }
}

async fn deposit<E: Exec>(
    ex: &mut E,
    ctx: &Ctx,
    rng: &mut StdRng,
    flow: u64,
    account: &AccountId,
) -> Result<(), Error> {
    let usdt = rng.gen_bool(0.4);
    let (asset, amount, log_index) = if usdt {
        (
            Asset::Usdt,
            rng.gen_range(2_000_000..60_000_000u64),
            Some(rng.gen_range(0..3)),
        )
    } else {
        (Asset::Trx, rng.gen_range(5_000_000..300_000_000u64), None)
    };
    let tx = txid("deposit", flow);
    let id = match log_index {
        Some(i) => format!("{tx}:{i}"),
        None => tx.to_string(),
    };
    let amount = Amount::new(amount).expect("positive");
    let block = 60_000_000 + flow;
    let detected = ex
        .deposit(
            &id,
            DepositCommand::DetectDeposit {
                account_id: account.clone(),
                asset,
                amount,
                txid: tx.clone(),
                log_index,
                from: address("customer", flow),
                to: address("deposit-address", flow),
                block_number: block,
                at: ctx.at(flow, 0),
            },
        )
        .await?;
    if detected.is_none() {
        return Ok(());
    }
    if rng.gen_range(0..20) == 0 {
        ex.deposit(
            &id,
            DepositCommand::RejectDeposit {
                reason: engine::domain::DepositRejection::Vanished,
                at: ctx.at(flow, 1),
            },
        )
        .await?;
        return Ok(());
    }
    ex.deposit(
        &id,
        DepositCommand::ConfirmDeposit {
            block_number: block + 19,
            at: ctx.at(flow, 1),
        },
    )
    .await?;
    let credited = ex
        .account(
            account.as_str(),
            AccountCommand::CreditDeposit {
                deposit_id: id.parse().expect("deposit id"),
                asset,
                amount,
            },
        )
        .await?;
    if credited.is_some() {
        ex.deposit(
            &id,
            DepositCommand::MarkCredited {
                at: ctx.at(flow, 2),
            },
        )
        .await?;
    }
    Ok(())
}

async fn order<E: Exec>(
    ex: &mut E,
    ctx: &Ctx,
    rng: &mut StdRng,
    flow: u64,
    account: &AccountId,
) -> Result<(), Error> {
    let id = format!("ord-{flow}");
    let asset = if rng.gen_bool(0.3) {
        Asset::Usdt
    } else {
        Asset::Trx
    };
    let duration = DurationTier::ALL[rng.gen_range(0..DurationTier::ALL.len())];
    let energy = rng.gen_range(32_000..200_000u64);
    let Some(placed) = ex
        .order(
            &id,
            OrderCommand::PlaceOrder {
                account_id: account.clone(),
                receiver: address("receiver", flow),
                energy,
                duration,
                asset,
                max_price: None,
                at: ctx.at(flow, 0),
            },
        )
        .await?
    else {
        return Ok(());
    };
    let Some(OrderEvent::OrderPlaced { quote, .. }) = placed.first() else {
        return Ok(());
    };
    let price = quote.price;
    if rng.gen_range(0..20) == 0 {
        ex.order(
            &id,
            OrderCommand::CancelOrder {
                by: CancelledBy::UnpaidTimeout,
                at: ctx.at(flow, 1),
            },
        )
        .await?;
        return Ok(());
    }
    let reserved = ex
        .account(
            account.as_str(),
            AccountCommand::ReserveFunds {
                order_id: id.parse().expect("order id"),
                asset,
                amount: price,
            },
        )
        .await?;
    if reserved.is_none() {
        ex.order(
            &id,
            OrderCommand::RejectOrder {
                reason: engine::domain::order::RejectionReason::InsufficientFunds,
                at: ctx.at(flow, 1),
            },
        )
        .await?;
        return Ok(());
    }
    ex.order(
        &id,
        OrderCommand::MarkPaid {
            at: ctx.at(flow, 1),
        },
    )
    .await?;
    let release = |reason: &'static str| AccountCommand::ReleaseFunds {
        order_id: id.parse().expect("order id"),
        reason: reason.into(),
    };
    let outcome = rng.gen_range(0..10);
    if outcome == 0 {
        ex.order(
            &id,
            OrderCommand::CancelOrder {
                by: CancelledBy::Customer,
                at: ctx.at(flow, 2),
            },
        )
        .await?;
        ex.account(account.as_str(), release("cancelled by the customer"))
            .await?;
        return Ok(());
    }
    let wallet = ctx.wallets[rng.gen_range(0..ctx.wallets.len())];
    let wallet_id = wallet.to_base58();
    let delegate_sun = energy * 90_770;
    let order_id: engine::domain::OrderId = id.parse().expect("order id");
    ex.wallet(
        &wallet_id,
        WalletCommand::ReserveCapacity {
            order_id: order_id.clone(),
            sun: delegate_sun,
        },
    )
    .await?;
    ex.order(
        &id,
        OrderCommand::RequestDelegation {
            wallet,
            delegate_sun,
            at: ctx.at(flow, 2),
        },
    )
    .await?;
    let signed = txid("delegation", flow);
    ex.order(
        &id,
        OrderCommand::RecordDelegationSigned {
            txid: signed.clone(),
            signed_tx_hex: "0a02".repeat(40),
            expiration_ms: ctx.at(flow, 3).timestamp_millis() + 60_000,
            at: ctx.at(flow, 3),
        },
    )
    .await?;
    if outcome == 1 {
        ex.order(
            &id,
            OrderCommand::FailDelegation {
                reason: "CONTRACT_VALIDATE_ERROR: not enough delegatable balance".into(),
                retryable: false,
                at: ctx.at(flow, 4),
            },
        )
        .await?;
        ex.wallet(&wallet_id, WalletCommand::ReleaseCapacity { order_id })
            .await?;
        ex.order(
            &id,
            OrderCommand::RefundOrder {
                reason: "delegation failed".into(),
                at: ctx.at(flow, 5),
            },
        )
        .await?;
        ex.account(account.as_str(), release("delegation failed"))
            .await?;
        return Ok(());
    }
    let confirmed_at = ctx.at(flow, 4);
    ex.order(
        &id,
        OrderCommand::ConfirmDelegation {
            txid: signed,
            block_number: 60_000_100 + flow,
            at: confirmed_at,
        },
    )
    .await?;
    let until = confirmed_at + duration.period();
    ex.order(&id, OrderCommand::RequestReclaim { at: until })
        .await?;
    let reclaim = txid("reclaim", flow);
    ex.order(
        &id,
        OrderCommand::RecordReclaimSigned {
            txid: reclaim.clone(),
            signed_tx_hex: "0a03".repeat(40),
            expiration_ms: until.timestamp_millis() + 60_000,
            at: until + TimeDelta::seconds(1),
        },
    )
    .await?;
    ex.order(
        &id,
        OrderCommand::ConfirmReclaim {
            txid: reclaim,
            block_number: 60_100_000 + flow,
            at: until + TimeDelta::seconds(4),
        },
    )
    .await?;
    ex.wallet(&wallet_id, WalletCommand::ReleaseCapacity { order_id })
        .await?;
    ex.order(
        &id,
        OrderCommand::CompleteOrder {
            at: until + TimeDelta::seconds(5),
        },
    )
    .await?;
    ex.account(
        account.as_str(),
        AccountCommand::CaptureFunds {
            order_id: id.parse().expect("order id"),
        },
    )
    .await?;
    Ok(())
}

/// One transaction's worth of events of one aggregate, ready to insert.
#[derive(Debug, Clone)]
pub struct Commit {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    /// (sequence, event_type, event_version, payload JSON)
    pub events: Vec<(i64, String, String, String)>,
    pub metadata: String,
}

/// In-memory aggregates that record every accepted command's events as a [`Commit`].
#[derive(Default)]
pub struct Sim {
    accounts: HashMap<String, (Account, i64)>,
    orders: HashMap<String, (Order, i64)>,
    deposits: HashMap<String, (Deposit, i64)>,
    wallets: HashMap<String, (Wallet, i64)>,
    policy: OrderPolicy,
    pub commits: Vec<Commit>,
}

impl Sim {
    pub fn new(ctx: &Ctx) -> Self {
        Sim {
            policy: ctx.policy.clone(),
            ..Sim::default()
        }
    }

    /// Takes the commits recorded so far.
    pub fn take(&mut self) -> Vec<Commit> {
        std::mem::take(&mut self.commits)
    }
}

fn decide<A>(
    map: &mut HashMap<String, (A, i64)>,
    commits: &mut Vec<Commit>,
    id: &str,
    command: A::Command,
    services: &A::Services,
) -> Option<Vec<A::Event>>
where
    A: DomainAggregate,
    A::Event: Serialize,
{
    let (aggregate, version) = map.entry(id.to_string()).or_default();
    let events = aggregate.decide(command, services).ok()?;
    let metadata = CommandMetadata::new(Actor::system("workload"));
    let mut stored = Vec::with_capacity(events.len());
    for e in &events {
        *version += 1;
        stored.push((
            *version,
            e.event_type(),
            e.event_version(),
            serde_json::to_string(e).expect("events serialise"),
        ));
        aggregate.apply(e.clone());
    }
    commits.push(Commit {
        aggregate_type: A::TYPE,
        aggregate_id: id.to_string(),
        events: stored,
        metadata: serde_json::to_string(&metadata.to_map()).expect("metadata serialises"),
    });
    Some(events)
}

impl Exec for Sim {
    async fn account(
        &mut self,
        id: &str,
        c: AccountCommand,
    ) -> Result<Option<Vec<AccountEvent>>, Error> {
        Ok(decide(&mut self.accounts, &mut self.commits, id, c, &()))
    }
    async fn order(&mut self, id: &str, c: OrderCommand) -> Result<Option<Vec<OrderEvent>>, Error> {
        let policy = self.policy.clone();
        Ok(decide(&mut self.orders, &mut self.commits, id, c, &policy))
    }
    async fn deposit(
        &mut self,
        id: &str,
        c: DepositCommand,
    ) -> Result<Option<Vec<DepositEvent>>, Error> {
        Ok(decide(&mut self.deposits, &mut self.commits, id, c, &()))
    }
    async fn wallet(
        &mut self,
        id: &str,
        c: WalletCommand,
    ) -> Result<Option<Vec<WalletEvent>>, Error> {
        Ok(decide(&mut self.wallets, &mut self.commits, id, c, &()))
    }
}

/// Inserts commits in one statement (so one transaction on an autocommit connection).
pub async fn insert_commits(
    conn: &mut PgConnection,
    commits: &[Commit],
) -> Result<Vec<i64>, Error> {
    let mut types = Vec::new();
    let mut ids = Vec::new();
    let mut seqs = Vec::new();
    let mut ets = Vec::new();
    let mut evs = Vec::new();
    let mut payloads = Vec::new();
    let mut metas = Vec::new();
    for c in commits {
        for (seq, et, ev, payload) in &c.events {
            types.push(c.aggregate_type);
            ids.push(c.aggregate_id.as_str());
            seqs.push(*seq);
            ets.push(et.as_str());
            evs.push(ev.as_str());
            payloads.push(payload.as_str());
            metas.push(c.metadata.as_str());
        }
    }
    let positions: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT t, i, s, et, ev, p::json, m::json \
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) \
              AS u(t, i, s, et, ev, p, m) \
         RETURNING global_position",
    )
    .bind(types)
    .bind(ids)
    .bind(seqs)
    .bind(ets)
    .bind(evs)
    .bind(payloads)
    .bind(metas)
    .fetch_all(conn)
    .await?;
    Ok(positions)
}

/// The four command buses, as an executor.
#[derive(Clone)]
pub struct Buses {
    pub account: Arc<CommandBus<Account>>,
    pub order: Arc<CommandBus<Order>>,
    pub deposit: Arc<CommandBus<Deposit>>,
    pub wallet: Arc<CommandBus<Wallet>>,
}

impl Buses {
    pub fn new(pool: &PgPool, ctx: &Ctx) -> Self {
        Buses {
            account: Arc::new(CommandBus::new(pool.clone(), ())),
            order: Arc::new(CommandBus::new(pool.clone(), ctx.policy.clone())),
            deposit: Arc::new(CommandBus::new(pool.clone(), ())),
            wallet: Arc::new(CommandBus::new(pool.clone(), ())),
        }
    }
}

fn meta() -> CommandMetadata {
    CommandMetadata::new(Actor::new("workload", "system")).with_request_id("req-workload")
}

impl Exec for Buses {
    async fn account(
        &mut self,
        id: &str,
        c: AccountCommand,
    ) -> Result<Option<Vec<AccountEvent>>, Error> {
        Ok(self
            .account
            .execute(id, c, meta())
            .await?
            .result
            .ok()
            .map(|c| c.events))
    }
    async fn order(&mut self, id: &str, c: OrderCommand) -> Result<Option<Vec<OrderEvent>>, Error> {
        Ok(self
            .order
            .execute(id, c, meta())
            .await?
            .result
            .ok()
            .map(|c| c.events))
    }
    async fn deposit(
        &mut self,
        id: &str,
        c: DepositCommand,
    ) -> Result<Option<Vec<DepositEvent>>, Error> {
        Ok(self
            .deposit
            .execute(id, c, meta())
            .await?
            .result
            .ok()
            .map(|c| c.events))
    }
    async fn wallet(
        &mut self,
        id: &str,
        c: WalletCommand,
    ) -> Result<Option<Vec<WalletEvent>>, Error> {
        Ok(self
            .wallet
            .execute(id, c, meta())
            .await?
            .result
            .ok()
            .map(|c| c.events))
    }
}

/// A seeded random source for flows.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Generates `flows` flows in memory after the setup; returns the commits in order.
pub fn simulate(ctx: &Ctx, seed: u64, flows: u64) -> Vec<Commit> {
    let mut sim = Sim::new(ctx);
    let mut rng = rng(seed);
    futures::executor::block_on(async {
        setup(&mut sim, ctx).await.expect("in memory");
        for n in 0..flows {
            flow(&mut sim, ctx, &mut rng, n).await.expect("in memory");
        }
    });
    sim.take()
}

/// The last committed event of the log. (Not "the last below the horizon": a transaction
/// still open somewhere, e.g. a killed projector's, would make a reader look caught up early.)
pub async fn head(pool: &PgPool) -> Result<engine::log::LogPosition, Error> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM events \
         ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some((tx, pos)) => {
            engine::log::LogPosition::new(tx.parse().map_err(|e| Error::corrupt("xid8", e))?, pos)
        }
        None => engine::log::LogPosition::START,
    })
}

/// The readers of every live projection and the audit sequencer.
pub fn all_readers() -> Vec<String> {
    let mut readers: Vec<String> = crate::projection::names()
        .into_iter()
        .map(|n| crate::projection::Target::Live.reader(n))
        .collect();
    readers.push(crate::audit::SEQUENCER_READER.to_string());
    readers
}

/// Waits (up to `timeout`) until every reader's checkpoint has reached the last committed event
/// (call it when no writer is in flight).
pub async fn wait_caught_up(
    pool: &PgPool,
    readers: &[String],
    timeout: std::time::Duration,
) -> Result<(), String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let head = head(pool).await.map_err(|e| e.to_string())?;
        let mut behind = Vec::new();
        for r in readers {
            let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
            let at = engine::log::load_checkpoint(&mut conn, r)
                .await
                .map_err(|e| e.to_string())?;
            if at < head {
                behind.push(format!("{r} at {at}"));
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            let holder: Option<(Option<String>, Option<String>, Option<f64>)> = sqlx::query_as(
                "SELECT datname::text, application_name, \
                        extract(epoch FROM now() - xact_start)::float8 \
                 FROM pg_stat_activity WHERE backend_xid IS NOT NULL \
                 ORDER BY xact_start LIMIT 1",
            )
            .fetch_optional(pool)
            .await
            .ok()
            .flatten();
            return Err(format!(
                "not caught up with {head}: {}; oldest transaction holding the horizon: {holder:?}",
                behind.join(", ")
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// What a fresh rebuild of every projection finds different from the live tables.
pub async fn differences(pool: &PgPool) -> Result<Vec<crate::rebuild::TableDifference>, Error> {
    let options = crate::rebuild::RebuildOptions {
        check: true,
        ..Default::default()
    };
    let report = crate::rebuild::rebuild(pool, &crate::projection::all(), &options, |_| {}).await?;
    Ok(report.differences)
}

/// A superuser session with triggers (the append-only ones and foreign keys) switched off: how a
/// test tampers with the log as someone with write access to the database could.
pub async fn tamperer(db: &engine::testing::TestDb) -> PgConnection {
    let mut conn = db.connect().await;
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut conn)
        .await
        .expect("switch triggers off (a superuser's session)");
    conn
}

/// What someone with write access to the database can do that the hash chain alone cannot see:
/// replace the metadata of the event at audit number `seq` and recompute every hash of
/// `audit_log` from there on, so that the chain agrees with the events again (only a signed head
/// from before catches it). `conn` must have triggers switched off ([`tamperer`]).
pub async fn rewrite_and_recompute(
    conn: &mut PgConnection,
    seq: i64,
    metadata: &str,
) -> Result<(), Error> {
    use crate::audit::canonical::{chain, encode};
    sqlx::query(
        "UPDATE events SET metadata = $2::json \
         WHERE global_position = (SELECT global_position FROM audit_log WHERE audit_seq = $1)",
    )
    .bind(seq)
    .bind(metadata)
    .execute(&mut *conn)
    .await?;
    let prev: Vec<u8> = sqlx::query_scalar("SELECT prev_hash FROM audit_log WHERE audit_seq = $1")
        .bind(seq)
        .fetch_one(&mut *conn)
        .await?;
    let mut prev = crate::audit::to_hash(&prev)?;
    // The chain's numbers follow on, so the rows from `seq` in order are `seq`, `seq + 1`, …
    let sql = format!(
        "SELECT {} FROM audit_log a JOIN events e USING (global_position) \
         WHERE a.audit_seq >= $1 ORDER BY a.audit_seq",
        crate::audit::STORED_COLUMNS
    );
    let rows: Vec<crate::audit::StoredRow> =
        sqlx::query_as(&sql).bind(seq).fetch_all(&mut *conn).await?;
    for (at, row) in (seq..).zip(rows) {
        let hash = chain(&prev, &encode(&crate::audit::stored(row)?)?);
        sqlx::query("UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE audit_seq = $1")
            .bind(at)
            .bind(prev.to_vec())
            .bind(hash.to_vec())
            .execute(&mut *conn)
            .await?;
        prev = hash;
    }
    Ok(())
}

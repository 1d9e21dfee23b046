//! The chain workers: for each pool wallet, one owner across processes (a session advisory lock
//! `wallet:<address>`; a standby takes over when the owner's connection goes away) drives the
//! wallet's open chain tasks through the write-ahead protocol (docs/lifecycle.md):
//!
//! 1. build the `DelegateResource` (or `UnDelegateResource`) transaction locally on a reference
//!    block from the node, sign it with the wallet's key from the vault, and record the exact
//!    signed bytes, txID and expiration on the order — before anything is sent;
//! 2. broadcast those bytes; `DUP_TRANSACTION_ERROR` means they were sent already;
//! 3. poll the transaction: included and then solidified → confirmed; included but failed, or
//!    refused by the node's validation → failed;
//! 4. after a crash everything resumes from the order's state: the recorded bytes are broadcast
//!    again until they expire, and a new transaction is built only once the old one is provably
//!    expired (the head block is past its expiration) and absent from the chain.
//!
//! Delegations are made with `lock = false`, so the reclaim can happen exactly at the period's end.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use chrono::Utc;
use engine::domain::order::{Order, OrderCommand, OrderStatus, SignedTx};
use engine::domain::{TronAddress, TxId as OrderTxId};
use engine::process::runner::run_owned;
use engine::process::Buses;
use engine::store::{Actor, CommandMetadata};
use futures::StreamExt;
use tokio::sync::watch;
use tracing::Instrument;

use crate::error::Error;
use crate::node::{BroadcastClass, Finality, NodeClient};
use crate::tx::{
    self, ContractCall, DelegateResource, Resource, SignedTransaction, TxContract,
    UnDelegateResource,
};
use crate::vault::KeyVault;
use crate::worker::pool::{pool_wallets, refresh_pool_policy};

#[derive(Debug, Clone)]
pub struct ChainWorkerConfig {
    /// How often a wallet's open tasks are driven.
    pub tick: Duration,
    /// A transaction counts as expired once the head block is this far past its expiration.
    pub expiry_margin_ms: i64,
    /// How often the set of pool wallets is re-read.
    pub wallet_refresh: Duration,
    /// Orders of one wallet driven at once.
    pub concurrency: usize,
    /// How soon an order that is waiting for the chain is looked at again.
    pub confirm_poll: Duration,
}

impl Default for ChainWorkerConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(25),
            expiry_margin_ms: 6_000,
            wallet_refresh: Duration::from_secs(2),
            concurrency: 16,
            confirm_poll: Duration::from_millis(1_000),
        }
    }
}

/// Wakes a pool wallet's chain worker in this process as soon as a task is handed to it (the
/// allocator opens the task row and calls [`ChainWake::task_opened`]), instead of at its next
/// tick. Only a shortcut: a wake that is missed (another process opened the row, or the worker
/// was busy) is made up for by the tick, which looks at the table anyway.
#[derive(Debug, Clone, Default)]
pub struct ChainWake {
    wallets: Arc<Mutex<HashMap<TronAddress, Arc<Notify>>>>,
}

impl ChainWake {
    pub fn new() -> Self {
        Self::default()
    }

    fn notify(&self, wallet: &TronAddress) -> Arc<Notify> {
        self.wallets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(*wallet)
            .or_default()
            .clone()
    }

    /// `wallet` has a new task. If its worker is not waiting right now, its next wait returns
    /// at once (one stored permit), so a wake during a pass is not lost.
    pub fn task_opened(&self, wallet: &TronAddress) {
        self.notify(wallet).notify_one();
    }
}

/// What driving a task found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drive {
    /// The order's chain step was taken; it waits for the chain (or a retry) now.
    Waiting,
    /// The order has no chain work on this wallet: the task row is stale.
    NothingHere,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Delegate,
    Reclaim,
}

/// What an order driven by this process waits for, as its last step found it: the next drive
/// is due once the chain could have moved on (a new head block for an unincluded transaction,
/// the solid block reaching the block that includes it), never sooner than `confirm_poll` nor
/// later than `STALE_AFTER` past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// The last step failed: try again after the back-off.
    Retry,
    /// Broadcast; the head block was this one, without the transaction in it.
    Inclusion { head: u64 },
    /// Included in this block (head view); not solid yet.
    Solidity { block: u64 },
    /// Nothing known that the chain must do first.
    Unknown,
}

/// An order's task as this process last drove it. Tasks of another wallet or phase than the
/// task row names (a retry on another wallet, the reclaim after the delegation) count as new.
#[derive(Debug, Clone)]
struct Track {
    wallet: TronAddress,
    phase: String,
    failures: u32,
    /// Not before this.
    next: Instant,
    /// When it was last driven (tracks older than a pass's task list are dropped with it).
    driven: Instant,
    wait: Wait,
}

/// A gate is ignored this long after the task fell due (a chain that looks stuck is looked at
/// anyway, now and then).
const STALE_AFTER: Duration = Duration::from_secs(15);

/// Drives the delegations and reclaims of the pool wallets this process owns.
pub struct ChainWorker {
    buses: Arc<Buses>,
    node: NodeClient,
    vault: Arc<KeyVault>,
    config: ChainWorkerConfig,
    /// Orders driven by this process and what they wait for.
    tracks: Mutex<HashMap<String, Track>>,
    wake: ChainWake,
    /// The head and solid block numbers, read at most every `confirm_poll / 4`.
    heights: tokio::sync::Mutex<Option<(Instant, u64, u64)>>,
    /// Per wallet, for the passes over new tasks: the latest `opened_at` listed, and when the
    /// wallet's tasks were last listed in full.
    listed: Mutex<HashMap<TronAddress, (chrono::DateTime<Utc>, Instant)>>,
}

/// A pass over new tasks lists only the rows opened since the latest one it saw, less this
/// margin (a row's `opened_at` is its transaction's start, which may commit a little later than
/// a row opened after it) …
const NEW_TASK_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(2);
/// … and lists them all at least this often, so a row that committed later still is found.
const FULL_LISTING: Duration = Duration::from_secs(1);

/// A task row: order, phase, when it was (re)opened.
type TaskRow = (String, String, chrono::DateTime<Utc>);

/// Which of a wallet's tasks a pass drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    /// Tasks this process has not driven yet on this wallet and phase (new work: signing).
    New,
    /// Tasks driven before whose wait is over (broadcast again, confirm, retry).
    Due,
    Both,
}

fn meta() -> CommandMetadata {
    CommandMetadata::new(Actor::system("chain-worker"))
}

fn engine_txid(id: &tx::TxId) -> Result<OrderTxId, Error> {
    OrderTxId::parse(&id.to_hex())
        .map_err(|e| Error::Engine(engine::Error::BatchFailed(e.to_string())))
}

fn node_txid(id: &OrderTxId) -> Result<tx::TxId, Error> {
    let bytes = crate::hexstr::decode_array::<32>("txid", id.as_str())?;
    Ok(tx::TxId(bytes))
}

impl ChainWorker {
    pub fn new(
        buses: Arc<Buses>,
        node: NodeClient,
        vault: Arc<KeyVault>,
        config: ChainWorkerConfig,
    ) -> Arc<Self> {
        Self::with_wake(buses, node, vault, config, ChainWake::new())
    }

    /// Like [`new`](Self::new), woken through `wake` (give the same handle to the allocator).
    pub fn with_wake(
        buses: Arc<Buses>,
        node: NodeClient,
        vault: Arc<KeyVault>,
        config: ChainWorkerConfig,
        wake: ChainWake,
    ) -> Arc<Self> {
        Arc::new(Self {
            buses,
            node,
            vault,
            config,
            tracks: Mutex::new(HashMap::new()),
            wake,
            heights: tokio::sync::Mutex::new(None),
            listed: Mutex::new(HashMap::new()),
        })
    }

    /// The handle that wakes this worker's wallets (for [`crate::worker::Allocator::with_wake`]).
    pub fn wake_handle(&self) -> ChainWake {
        self.wake.clone()
    }

    /// Serves every pool wallet (new ones as they are registered) until shutdown.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        let mut serving: HashSet<TronAddress> = HashSet::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut stop = shutdown.clone();
        loop {
            if let Err(e) = refresh_pool_policy(&self.buses).await {
                tracing::warn!(error = %e, "cannot refresh the pool wallets of the order policy");
            }
            match pool_wallets(&self.buses).await {
                Ok(wallets) => {
                    for (address, _) in wallets {
                        if serving.insert(address) {
                            let me = self.clone();
                            let rx = shutdown.clone();
                            tasks.spawn(async move { me.serve_wallet(address, rx).await });
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list pool wallets; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.wallet_refresh) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok(Err(e)) = done {
                tracing::warn!(error = %e, "a wallet worker stopped with an error");
            }
        }
        Ok(())
    }

    /// Owns one wallet (or stands by for it) and drives its tasks.
    async fn serve_wallet(
        self: Arc<Self>,
        wallet: TronAddress,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), Error> {
        let key = format!("wallet:{wallet}");
        let wake = self.wake.notify(&wallet);
        // Tasks waiting for the chain are driven by a pass of their own, in the background, so
        // a new task is never held back behind the broadcasts and confirmations of earlier ones.
        // At most a few due passes per `confirm_poll` (they poll the chain), one at a time.
        let due: Mutex<Option<(tokio::task::JoinHandle<()>, Instant)>> = Mutex::default();
        let me = &self;
        let (wake_ref, due_ref, stop_ref) = (&wake, &due, &shutdown);
        run_owned(
            self.buses.pool(),
            &key,
            Duration::from_secs(1),
            shutdown.clone(),
            || async move {
                {
                    let mut slot = due_ref.lock().unwrap_or_else(|p| p.into_inner());
                    let idle = slot.as_ref().is_none_or(|(h, started)| {
                        h.is_finished() && started.elapsed() >= me.config.confirm_poll / 4
                    });
                    if idle {
                        let worker = me.clone();
                        let handle = tokio::spawn(async move {
                            if let Err(e) = worker.pass_of(&wallet, Which::Due).await {
                                tracing::warn!(%wallet, error = %e, "chain pass failed; retrying");
                            }
                        });
                        *slot = Some((handle, Instant::now()));
                    }
                }
                if let Err(e) = me.pass_of(&wallet, Which::New).await {
                    tracing::warn!(%wallet, error = %e, "chain pass failed; retrying");
                }
                // Until the allocator hands over a task, or the tick (which finds tasks opened
                // by another process, and any wake that was missed).
                let mut stop = stop_ref.clone();
                if !*stop.borrow_and_update() {
                    tokio::select! {
                        _ = wake_ref.notified() => {}
                        _ = tokio::time::sleep(me.config.tick) => {}
                        _ = stop.changed() => {}
                    }
                }
                Duration::ZERO
            },
        )
        .await?;
        let handle = due.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((handle, _)) = handle {
            let _ = handle.await;
        }
        Ok(())
    }

    /// Drives every open task of `wallet` that is due (new ones first); returns how many tasks
    /// the wallet has.
    pub async fn pass(&self, wallet: &TronAddress) -> Result<usize, Error> {
        self.pass_of(wallet, Which::Both).await
    }

    async fn pass_of(&self, wallet: &TronAddress, which: Which) -> Result<usize, Error> {
        let listed = Instant::now();
        // A pass over new tasks reads the recent rows only (the cost of a full listing grows
        // with the wallet's active orders, and this pass runs on every hand-off).
        let since = match which {
            Which::New => {
                let seen = self.listed.lock().unwrap_or_else(|p| p.into_inner());
                seen.get(wallet)
                    .filter(|(_, full)| full.elapsed() < FULL_LISTING)
                    .and_then(|(latest, _)| latest.checked_sub_signed(NEW_TASK_MARGIN))
            }
            _ => None,
        };
        let tasks: Vec<TaskRow> = sqlx::query_as(
            "SELECT order_id, phase, opened_at FROM chain_tasks \
             WHERE wallet = $1 AND ($2::timestamptz IS NULL OR opened_at > $2) ORDER BY opened_at",
        )
        .bind(wallet.to_base58())
        .bind(since)
        .fetch_all(self.buses.pool())
        .await?;
        // Only the passes that drive new tasks move the marks (a pass over due tasks lists
        // everything but signs nothing new).
        if which != Which::Due {
            let latest = tasks.last().map(|(_, _, opened_at)| *opened_at);
            let mut seen = self.listed.lock().unwrap_or_else(|p| p.into_inner());
            let entry = seen
                .entry(*wallet)
                .or_insert((chrono::DateTime::<Utc>::MIN_UTC, listed));
            if let Some(latest) = latest {
                entry.0 = entry.0.max(latest);
            }
            if since.is_none() {
                entry.1 = listed;
            }
        }
        let (new, mut due): (Vec<&TaskRow>, Vec<&TaskRow>) = {
            let tracks = self.tracks.lock().unwrap_or_else(|p| p.into_inner());
            tasks.iter().partition(|(order_id, phase, _)| {
                tracks
                    .get(order_id)
                    .is_none_or(|t| t.wallet != *wallet || t.phase != *phase)
            })
        };
        if which != Which::Due {
            self.drive_all(wallet, &new).await;
        }
        if which != Which::New {
            due = self.due_now(&due).await;
            self.drive_all(wallet, &due).await;
            self.forget_finished(wallet, &tasks, listed);
        }
        Ok(tasks.len())
    }

    /// Tracks of `wallet` whose order has no task row any more (closed by the order flow) are
    /// forgotten, unless driven since the rows were listed.
    fn forget_finished(&self, wallet: &TronAddress, tasks: &[TaskRow], listed: Instant) {
        let open: HashSet<&str> = tasks.iter().map(|(o, _, _)| o.as_str()).collect();
        self.tracks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|order_id, t| {
                t.wallet != *wallet || t.driven >= listed || open.contains(order_id.as_str())
            });
    }

    /// The tasks (driven before) whose wait is over.
    async fn due_now<'a>(&self, tasks: &[&'a TaskRow]) -> Vec<&'a TaskRow> {
        let now = Instant::now();
        let waits: Vec<(&TaskRow, Wait, bool)> = {
            let tracks = self.tracks.lock().unwrap_or_else(|p| p.into_inner());
            tasks
                .iter()
                .filter_map(|row| {
                    let t = tracks.get(&row.0)?;
                    (now >= t.next).then(|| (*row, t.wait, now >= t.next + STALE_AFTER))
                })
                .collect()
        };
        let gated = waits.iter().any(|(_, w, stale)| {
            !stale && matches!(w, Wait::Inclusion { .. } | Wait::Solidity { .. })
        });
        let heights = if gated {
            match self.heights().await {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read the chain's heights; driving every task due");
                    None
                }
            }
        } else {
            None
        };
        waits
            .into_iter()
            .filter(|(_, wait, stale)| match (wait, heights) {
                (_, _) if *stale => true,
                (Wait::Inclusion { head }, Some((now_head, _))) => now_head > *head,
                (Wait::Solidity { block }, Some((_, solid))) => solid >= *block,
                _ => true,
            })
            .map(|(row, _, _)| row)
            .collect()
    }

    /// `(head, solid)` block numbers, shared by the wallets for a moment.
    async fn heights(&self) -> Result<(u64, u64), Error> {
        let mut cached = self.heights.lock().await;
        if let Some((at, head, solid)) = *cached {
            if at.elapsed() < self.config.confirm_poll / 4 {
                return Ok((head, solid));
            }
        }
        let head = self.node.head_header(Finality::Head).await?.number;
        let solid = self.node.head_header(Finality::Solid).await?.number;
        *cached = Some((Instant::now(), head, solid));
        Ok((head, solid))
    }

    async fn drive_all(&self, wallet: &TronAddress, tasks: &[&TaskRow]) {
        // Orders are independent: drive several at once (the node's pool and each order's
        // state keep them apart).
        futures::stream::iter(tasks.iter())
            .for_each_concurrent(self.config.concurrency, |(order_id, phase, opened_at)| async move {
                let span = tracing::info_span!("chain_task", order_id = %order_id, %wallet);
                match self.drive_tracked(order_id, wallet).instrument(span).await {
                    Ok((Drive::Waiting, Wait::Retry)) => self.delay_on(order_id, wallet, phase),
                    Ok((Drive::Waiting, wait)) => {
                        // Whatever the order waits for now (inclusion, solidity) takes at least
                        // a block: look again after `confirm_poll` at the soonest, and only
                        // once the chain has moved on, so new tasks never queue behind
                        // thousands of transactions waiting to be confirmed.
                        let now = Instant::now();
                        self.tracks.lock().unwrap_or_else(|p| p.into_inner()).insert(
                            order_id.clone(),
                            Track {
                                wallet: *wallet,
                                phase: phase.clone(),
                                failures: 0,
                                next: now + self.config.confirm_poll,
                                driven: now,
                                wait,
                            },
                        );
                    }
                    Ok((Drive::NothingHere, _)) => {
                        if let Err(e) = self.drop_task(order_id, wallet, *opened_at).await {
                            tracing::warn!(order_id = %order_id, error = %e, "cannot drop a finished task");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(order_id = %order_id, error = %e, "chain step failed; will retry");
                        self.delay_on(order_id, wallet, phase);
                    }
                }
            })
            .await;
    }

    /// Deletes a task row that has no chain work for `wallet`, unless it was opened again (or
    /// moved) since it was read: a task can be opened ahead of the order flow (by the allocator)
    /// and be finished before the order flow closes it.
    async fn drop_task(
        &self,
        order_id: &str,
        wallet: &TronAddress,
        opened_at: chrono::DateTime<Utc>,
    ) -> Result<(), Error> {
        sqlx::query(
            "DELETE FROM chain_tasks WHERE order_id = $1 AND wallet = $2 AND opened_at = $3",
        )
        .bind(order_id)
        .bind(wallet.to_base58())
        .bind(opened_at)
        .execute(self.buses.pool())
        .await?;
        self.tracks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(order_id);
        Ok(())
    }

    /// Backs off an order whose step failed (its task row names `wallet` and `phase`).
    fn delay_on(&self, order_id: &str, wallet: &TronAddress, phase: &str) {
        let mut map = self.tracks.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let entry = map.entry(order_id.to_string()).or_insert_with(|| Track {
            wallet: *wallet,
            phase: phase.to_string(),
            failures: 0,
            next: now,
            driven: now,
            wait: Wait::Retry,
        });
        entry.wallet = *wallet;
        entry.phase = phase.to_string();
        entry.failures += 1;
        entry.wait = Wait::Retry;
        entry.driven = now;
        let ms = (100u64 << entry.failures.min(6)).min(5_000);
        entry.next = now + Duration::from_millis(ms);
    }

    /// Advances one order by one protocol step (or several, when nothing needs waiting for),
    /// if it has chain work on `wallet`: a task row can outlive its work (a retry moved the
    /// order to another wallet, or the order went on before the order flow closed the row).
    pub async fn drive(&self, order_id: &str, wallet: &TronAddress) -> Result<Drive, Error> {
        Ok(self.drive_tracked(order_id, wallet).await?.0)
    }

    /// [`drive`](Self::drive), and what the order waits for now.
    async fn drive_tracked(
        &self,
        order_id: &str,
        wallet: &TronAddress,
    ) -> Result<(Drive, Wait), Error> {
        let (order, _) = self.buses.order.load(order_id).await?;
        let phase = match order.status() {
            OrderStatus::DelegationRequested | OrderStatus::DelegationSigned => Phase::Delegate,
            OrderStatus::ReclaimRequested | OrderStatus::ReclaimSigned => Phase::Reclaim,
            _ => return Ok((Drive::NothingHere, Wait::Unknown)),
        };
        if order.delegation().map(|d| d.wallet) != Some(*wallet) {
            return Ok((Drive::NothingHere, Wait::Unknown));
        }
        let needs_signing = matches!(
            order.status(),
            OrderStatus::DelegationRequested | OrderStatus::ReclaimRequested
        );
        if !needs_signing {
            let wait = self.push(order_id, &order, phase).await?;
            return Ok((Drive::Waiting, wait));
        }
        let mut wait = Wait::Unknown;
        if let Some((txid, transaction, head)) = self.sign(order_id, &order, phase).await? {
            // Broadcast at once: the record is written, so a crash from here on only repeats it.
            wait = self
                .broadcast(order_id, phase, &txid, &transaction, head)
                .await?;
        }
        Ok((Drive::Waiting, wait))
    }

    /// Step 1: build, sign and record (write-ahead). Returns the recorded transaction and the
    /// number of the head block it was built on, if the order took the record.
    async fn sign(
        &self,
        order_id: &str,
        order: &Order,
        phase: Phase,
    ) -> Result<Option<(OrderTxId, SignedTransaction, u64)>, Error> {
        let (Some(placement), Some(delegation)) = (order.placement(), order.delegation()) else {
            return Ok(None);
        };
        let wallet = delegation.wallet;
        let balance = i64::try_from(delegation.delegate_sun).map_err(|_| {
            Error::Engine(engine::Error::BatchFailed("delegate_sun too large".into()))
        })?;
        let call = match phase {
            Phase::Delegate => ContractCall::DelegateResource(DelegateResource {
                owner: wallet,
                resource: Resource::Energy,
                balance,
                receiver: placement.receiver,
                lock: false,
                lock_period: 0,
            }),
            Phase::Reclaim => ContractCall::UnDelegateResource(UnDelegateResource {
                owner: wallet,
                resource: Resource::Energy,
                balance,
                receiver: placement.receiver,
            }),
        };
        // The head's TAPOS fields and time, as `NodeClient::reference` gives them.
        let head = self.node.head_header(Finality::Head).await?;
        let params = tx::TxParams::new(head.ref_block(), head.timestamp);
        let raw = tx::build(TxContract::new(call), &params)?;
        let key = self.vault.wallet_key(&wallet).await?;
        let signed = SignedTransaction::sign(raw, &key);
        drop(key);
        let transaction = signed.clone();
        let txid = engine_txid(&signed.txid())?;
        let signed_tx_hex = hex::encode(signed.encode());
        let at = Utc::now();
        let command = match phase {
            Phase::Delegate => OrderCommand::RecordDelegationSigned {
                txid: txid.clone(),
                signed_tx_hex,
                expiration_ms: params.expiration,
                at,
            },
            Phase::Reclaim => OrderCommand::RecordReclaimSigned {
                txid: txid.clone(),
                signed_tx_hex,
                expiration_ms: params.expiration,
                at,
            },
        };
        let outcome = self.buses.order.execute(order_id, command, meta()).await?;
        match outcome.result {
            Ok(_) => {
                tracing::info!(txid = %txid, ?phase, "signed and recorded");
                Ok(Some((txid, transaction, head.number)))
            }
            Err(refusal) => {
                tracing::debug!(refusal = %refusal, "order moved on before signing was recorded");
                Ok(None)
            }
        }
    }

    /// Steps 2–4 for a recorded transaction. Returns what the order waits for now.
    async fn push(&self, order_id: &str, order: &Order, phase: Phase) -> Result<Wait, Error> {
        let signed: Option<&SignedTx> = match phase {
            Phase::Delegate => order.delegation().and_then(|d| d.signed.as_ref()),
            Phase::Reclaim => order.reclaim().and_then(|r| r.signed.as_ref()),
        };
        let Some(signed) = signed else {
            return Ok(Wait::Unknown);
        };
        let txid = node_txid(&signed.txid)?;
        // Included? Then wait for solidification, or record the failure.
        if let Some(info) = self.node.transaction_info(&txid, Finality::Head).await? {
            if info.failed {
                let reason = info
                    .res_message
                    .clone()
                    .unwrap_or_else(|| "failed on chain".into());
                return self
                    .fail(order_id, phase, format!("included but failed: {reason}"))
                    .await;
            }
            if let Some(solid) = self.node.transaction_info(&txid, Finality::Solid).await? {
                let at = Utc::now();
                let command = match phase {
                    Phase::Delegate => OrderCommand::ConfirmDelegation {
                        txid: signed.txid.clone(),
                        block_number: solid.block_number,
                        at,
                    },
                    Phase::Reclaim => OrderCommand::ConfirmReclaim {
                        txid: signed.txid.clone(),
                        block_number: solid.block_number,
                        at,
                    },
                };
                self.buses.order.execute(order_id, command, meta()).await?;
                tracing::info!(txid = %signed.txid, block = solid.block_number, ?phase, "confirmed");
                return Ok(Wait::Unknown);
            }
            return Ok(Wait::Solidity {
                block: info.block_number,
            });
        }
        // Not included. Provably expired? Then (and only then) a new transaction may be built.
        let head = self.node.head_header(Finality::Head).await?;
        if head.timestamp > signed.expiration_ms + self.config.expiry_margin_ms {
            let chain_time = chrono::DateTime::<Utc>::from_timestamp_millis(head.timestamp)
                .unwrap_or_else(Utc::now);
            self.expire(order_id, phase, &signed.txid, chain_time)
                .await?;
            return Ok(Wait::Unknown);
        }
        let bytes = hex::decode(&signed.signed_tx_hex)
            .map_err(|e| Error::Engine(engine::Error::BatchFailed(format!("stored bytes: {e}"))))?;
        let transaction = SignedTransaction::decode(&bytes)?;
        self.broadcast(order_id, phase, &signed.txid, &transaction, head.number)
            .await
    }

    /// Step 2: sends the recorded bytes and acts on the node's answer code. `head` is the
    /// newest block known not to include them.
    async fn broadcast(
        &self,
        order_id: &str,
        phase: Phase,
        txid: &OrderTxId,
        transaction: &SignedTransaction,
        head: u64,
    ) -> Result<Wait, Error> {
        let reply = self.node.broadcast_hex(transaction).await?;
        match reply.class() {
            BroadcastClass::Accepted | BroadcastClass::AlreadyKnown => {
                tracing::debug!(txid = %txid, code = %reply.code, "broadcast");
                Ok(Wait::Inclusion { head })
            }
            BroadcastClass::Transient => Err(Error::Node(crate::node::NodeError::Servlet {
                endpoint: "broadcasthex".into(),
                message: reply.code.to_string(),
            })),
            BroadcastClass::Rebuild => {
                // TAPOS or expiration: these bytes can never be included. A new transaction is
                // built once the head block is past their expiration (above), not before.
                tracing::info!(txid = %txid, code = %reply.code, "not includable; waiting for its expiration");
                Ok(Wait::Inclusion { head })
            }
            BroadcastClass::Rejected => {
                self.fail(
                    order_id,
                    phase,
                    format!("{}: {}", reply.code, reply.message),
                )
                .await
            }
        }
    }

    /// Records that `txid` expired unincluded, as of the chain's head time `at`.
    async fn expire(
        &self,
        order_id: &str,
        phase: Phase,
        txid: &OrderTxId,
        at: chrono::DateTime<Utc>,
    ) -> Result<(), Error> {
        let command = match phase {
            Phase::Delegate => OrderCommand::RecordDelegationExpired {
                txid: txid.clone(),
                at,
            },
            Phase::Reclaim => OrderCommand::RecordReclaimExpired {
                txid: txid.clone(),
                at,
            },
        };
        tracing::info!(txid = %txid, ?phase, "expired without inclusion; a new transaction will be built");
        let outcome = self.buses.order.execute(order_id, command, meta()).await?;
        if let Err(refusal) = outcome.result {
            tracing::warn!(txid = %txid, refusal = %refusal, "expiry not recorded");
        }
        Ok(())
    }

    /// Records a failed attempt; the order is looked at again after a back-off.
    async fn fail(&self, order_id: &str, phase: Phase, reason: String) -> Result<Wait, Error> {
        tracing::warn!(?phase, reason = %reason, "chain step failed");
        let at = Utc::now();
        let command = match phase {
            // Another wallet may succeed where this one was refused.
            Phase::Delegate => OrderCommand::FailDelegation {
                reason,
                retryable: true,
                at,
            },
            // Reclaims are always retried.
            Phase::Reclaim => OrderCommand::FailReclaim { reason, at },
        };
        self.buses.order.execute(order_id, command, meta()).await?;
        Ok(Wait::Retry)
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn wallet(n: u8) -> TronAddress {
        crate::PrivateKey::from_bytes(&crate::keys::sha256(&[n]))
            .unwrap()
            .address()
    }

    #[test]
    fn a_wake_given_while_the_worker_is_busy_is_kept_for_its_next_wait() {
        let wake = ChainWake::new();
        let (a, b) = (wallet(1), wallet(2));
        // Nobody waits yet (the worker is in a pass): the wake is stored, once.
        wake.task_opened(&a);
        let notify = wake.notify(&a);
        assert!(notify.notified().now_or_never().is_some());
        assert!(notify.notified().now_or_never().is_none());
        // Another wallet's worker is not woken.
        wake.task_opened(&a);
        assert!(wake.notify(&b).notified().now_or_never().is_none());
        // A clone of the handle (the allocator's) wakes the same worker.
        let allocators = wake.clone();
        allocators.task_opened(&b);
        assert!(wake.notify(&b).notified().now_or_never().is_some());
    }
}

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

/// Drives the delegations and reclaims of the pool wallets this process owns.
pub struct ChainWorker {
    buses: Arc<Buses>,
    node: NodeClient,
    vault: Arc<KeyVault>,
    config: ChainWorkerConfig,
    /// Orders whose last step failed, and when to try again.
    backoff: Mutex<HashMap<String, (u32, Instant)>>,
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
        Arc::new(Self {
            buses,
            node,
            vault,
            config,
            backoff: Mutex::new(HashMap::new()),
        })
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
        let me = &self;
        run_owned(
            self.buses.pool(),
            &key,
            Duration::from_secs(1),
            shutdown,
            || async move {
                if let Err(e) = me.pass(&wallet).await {
                    tracing::warn!(%wallet, error = %e, "chain pass failed; retrying");
                }
                me.config.tick
            },
        )
        .await?;
        Ok(())
    }

    /// Drives every open task of `wallet` once; returns how many there were.
    pub async fn pass(&self, wallet: &TronAddress) -> Result<usize, Error> {
        let tasks: Vec<(String, chrono::DateTime<Utc>)> = sqlx::query_as(
            "SELECT order_id, opened_at FROM chain_tasks WHERE wallet = $1 ORDER BY opened_at",
        )
        .bind(wallet.to_base58())
        .fetch_all(self.buses.pool())
        .await?;
        // Orders are independent: drive several at once (the node's pool and each order's
        // state keep them apart).
        futures::stream::iter(tasks.iter().filter(|(o, _)| self.due(o)))
            .for_each_concurrent(self.config.concurrency, |(order_id, opened_at)| async move {
                let span = tracing::info_span!("chain_task", order_id = %order_id, %wallet);
                match self.drive(order_id, wallet).instrument(span).await {
                    Ok(Drive::Waiting) => {
                        // Whatever the order waits for now (inclusion, solidity) takes at least
                        // a block: look again after `confirm_poll`, so new tasks never queue
                        // behind thousands of transactions waiting to be confirmed.
                        let next = Instant::now() + self.config.confirm_poll;
                        self.backoff
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(order_id.clone(), (0, next));
                    }
                    Ok(Drive::NothingHere) => {
                        if let Err(e) = self.drop_task(order_id, wallet, *opened_at).await {
                            tracing::warn!(order_id = %order_id, error = %e, "cannot drop a finished task");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(order_id = %order_id, error = %e, "chain step failed; will retry");
                        self.delay(order_id);
                    }
                }
            })
            .await;
        Ok(tasks.len())
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
        self.backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(order_id);
        Ok(())
    }

    fn due(&self, order_id: &str) -> bool {
        let map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        map.get(order_id)
            .is_none_or(|(_, at)| Instant::now() >= *at)
    }

    fn delay(&self, order_id: &str) {
        let mut map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map
            .entry(order_id.to_string())
            .or_insert((0, Instant::now()));
        entry.0 += 1;
        let ms = (100u64 << entry.0.min(6)).min(5_000);
        entry.1 = Instant::now() + Duration::from_millis(ms);
    }

    /// Advances one order by one protocol step (or several, when nothing needs waiting for),
    /// if it has chain work on `wallet`: a task row can outlive its work (a retry moved the
    /// order to another wallet, or the order went on before the order flow closed the row).
    pub async fn drive(&self, order_id: &str, wallet: &TronAddress) -> Result<Drive, Error> {
        let (order, _) = self.buses.order.load(order_id).await?;
        let phase = match order.status() {
            OrderStatus::DelegationRequested | OrderStatus::DelegationSigned => Phase::Delegate,
            OrderStatus::ReclaimRequested | OrderStatus::ReclaimSigned => Phase::Reclaim,
            _ => return Ok(Drive::NothingHere),
        };
        if order.delegation().map(|d| d.wallet) != Some(*wallet) {
            return Ok(Drive::NothingHere);
        }
        let needs_signing = matches!(
            order.status(),
            OrderStatus::DelegationRequested | OrderStatus::ReclaimRequested
        );
        if !needs_signing {
            self.push(order_id, &order, phase).await?;
            return Ok(Drive::Waiting);
        }
        if let Some((txid, transaction)) = self.sign(order_id, &order, phase).await? {
            // Broadcast at once: the record is written, so a crash from here on only repeats it.
            self.broadcast(order_id, phase, &txid, &transaction).await?;
        }
        Ok(Drive::Waiting)
    }

    /// Step 1: build, sign and record (write-ahead). Returns the recorded transaction, if the
    /// order took the record.
    async fn sign(
        &self,
        order_id: &str,
        order: &Order,
        phase: Phase,
    ) -> Result<Option<(OrderTxId, SignedTransaction)>, Error> {
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
        let params = self.node.reference().await?;
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
                Ok(Some((txid, transaction)))
            }
            Err(refusal) => {
                tracing::debug!(refusal = %refusal, "order moved on before signing was recorded");
                Ok(None)
            }
        }
    }

    /// Steps 2–4 for a recorded transaction.
    async fn push(&self, order_id: &str, order: &Order, phase: Phase) -> Result<(), Error> {
        let signed: Option<&SignedTx> = match phase {
            Phase::Delegate => order.delegation().and_then(|d| d.signed.as_ref()),
            Phase::Reclaim => order.reclaim().and_then(|r| r.signed.as_ref()),
        };
        let Some(signed) = signed else {
            return Ok(());
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
            }
            return Ok(());
        }
        // Not included. Provably expired? Then (and only then) a new transaction may be built.
        let head = self.node.head_header(Finality::Head).await?;
        if head.timestamp > signed.expiration_ms + self.config.expiry_margin_ms {
            let chain_time = chrono::DateTime::<Utc>::from_timestamp_millis(head.timestamp)
                .unwrap_or_else(Utc::now);
            return self.expire(order_id, phase, &signed.txid, chain_time).await;
        }
        let bytes = hex::decode(&signed.signed_tx_hex)
            .map_err(|e| Error::Engine(engine::Error::BatchFailed(format!("stored bytes: {e}"))))?;
        let transaction = SignedTransaction::decode(&bytes)?;
        self.broadcast(order_id, phase, &signed.txid, &transaction)
            .await
    }

    /// Step 2: sends the recorded bytes and acts on the node's answer code.
    async fn broadcast(
        &self,
        order_id: &str,
        phase: Phase,
        txid: &OrderTxId,
        transaction: &SignedTransaction,
    ) -> Result<(), Error> {
        let reply = self.node.broadcast_hex(transaction).await?;
        match reply.class() {
            BroadcastClass::Accepted | BroadcastClass::AlreadyKnown => {
                tracing::debug!(txid = %txid, code = %reply.code, "broadcast");
                Ok(())
            }
            BroadcastClass::Transient => Err(Error::Node(crate::node::NodeError::Servlet {
                endpoint: "broadcasthex".into(),
                message: reply.code.to_string(),
            })),
            BroadcastClass::Rebuild => {
                // TAPOS or expiration: these bytes can never be included. A new transaction is
                // built once the head block is past their expiration (above), not before.
                tracing::info!(txid = %txid, code = %reply.code, "not includable; waiting for its expiration");
                Ok(())
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

    async fn fail(&self, order_id: &str, phase: Phase, reason: String) -> Result<(), Error> {
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
        if phase == Phase::Reclaim {
            self.delay(order_id);
        }
        Ok(())
    }
}

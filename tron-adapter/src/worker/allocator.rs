//! The wallet allocator: a process manager that gives a paid order (or one whose delegation
//! failed and may be retried) a pool wallet with room. It checks the receiver on the chain first
//! (an unactivated or contract receiver is refunded at once, with the reason), computes the stake
//! to lend from the live energy totals, reserves that much capacity on the wallet with the most
//! room (never one that already failed this order), and requests the delegation. With no wallet
//! able to serve, the order is refunded.
//!
//! Replaying an event sends the same commands (derived ids) and, because a wallet that already
//! holds this order's reservation is chosen first, never reserves on a second wallet.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use engine::domain::order::{Order, OrderCommand, OrderEvent, OrderStatus};
use engine::domain::wallet::WalletCommand;
use engine::domain::{OrderId, TronAddress};
use engine::log::{AnyEvent, TypedEvent};
use engine::process::order_flow::DELEGATE;
use engine::process::scheduler::open_chain_task;
use engine::process::{Buses, Cause, Effects, Reactor};
use tracing::Instrument;

use crate::node::{Finality, NodeClient};
use crate::worker::chain_params::ChainParams;
use crate::worker::delegation::ChainWake;
use crate::worker::pool::pool_wallet_ids;

pub const NAME: &str = "wallet-allocator";

/// How long the list of pool wallets is reused. A wallet registered meanwhile joins the choice a
/// moment later (as it joins the order policy only at the chain worker's next refresh anyway).
const WALLET_LIST_TTL: Duration = Duration::from_secs(1);

pub struct Allocator {
    buses: Arc<Buses>,
    node: NodeClient,
    params: Arc<ChainParams>,
    wake: Option<ChainWake>,
    wallet_ids: Mutex<Option<(Instant, Arc<Vec<String>>)>>,
}

impl Allocator {
    pub fn new(buses: Arc<Buses>, node: NodeClient, params: Arc<ChainParams>) -> Self {
        Self {
            buses,
            node,
            params,
            wake: None,
            wallet_ids: Mutex::new(None),
        }
    }

    /// Wakes the wallet's chain worker in this process as soon as its task is opened
    /// ([`crate::worker::ChainWorker::wake_handle`]); without it the worker finds the task at
    /// its next tick.
    pub fn with_wake(mut self, wake: ChainWake) -> Self {
        self.wake = Some(wake);
        self
    }
}

impl Reactor for Allocator {
    fn name(&self) -> &'static str {
        NAME
    }

    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.buses.appended())
    }

    async fn react(&self, event: &TypedEvent, _effects: &mut Effects) -> Result<(), engine::Error> {
        let wants_wallet = match &event.event {
            AnyEvent::Order(OrderEvent::OrderPaid { .. }) => true,
            AnyEvent::Order(OrderEvent::DelegationFailed {
                retryable,
                attempts_left,
                ..
            }) => *retryable && *attempts_left > 0,
            _ => false,
        };
        if !wants_wallet {
            return Ok(());
        }
        let cause = Cause::new(NAME, event);
        let span = tracing::info_span!("allocate", order_id = %cause.aggregate_id());
        self.allocate(cause)
            .instrument(span)
            .await
            .map_err(|e| match e {
                crate::Error::Engine(e) => e,
                other => engine::Error::BatchFailed(other.to_string()),
            })
    }
}

impl Allocator {
    async fn allocate(&self, cause: Cause<'_>) -> Result<(), crate::Error> {
        let id = cause.aggregate_id();
        let (order, _) = self.buses.order.load(id).await?;
        // Only an order that is waiting for a wallet; a replay finds it moved on.
        if !matches!(
            order.status(),
            OrderStatus::Paid | OrderStatus::DelegationFailed
        ) {
            return Ok(());
        }
        let Some(placement) = order.placement() else {
            return Ok(());
        };
        let order_id = OrderId::parse(id).map_err(|e| engine::Error::BatchFailed(e.to_string()))?;
        // The receiver check (a node call) and the choice of wallets, at once.
        let choice = async {
            let sun = self.params.sun_for_energy(placement.energy).await?;
            let wallets = self.candidates(&order, &order_id, sun).await?;
            Ok::<_, crate::Error>((sun, wallets))
        };
        let (problem, (sun, wallets)) =
            tokio::try_join!(self.receiver_problem(&placement.receiver), choice)?;
        if let Some(reason) = problem {
            return self.refund(cause, &reason).await;
        }
        for wallet in wallets {
            let wallet_id = wallet.to_base58();
            let reserve = WalletCommand::ReserveCapacity {
                order_id: order_id.clone(),
                sun,
            };
            let reserved = self
                .buses
                .wallet
                .execute(
                    &wallet_id,
                    reserve,
                    cause.meta(&format!("reserve:{wallet_id}")),
                )
                .await?;
            let held = match &reserved.result {
                Ok(_) => true,
                Err(engine::domain::WalletError::CapacityAlreadyReserved { .. }) => true,
                Err(refusal) => {
                    tracing::debug!(wallet = %wallet_id, refusal = %refusal, "wallet cannot take the order");
                    false
                }
            };
            if !held {
                continue;
            }
            let request = OrderCommand::RequestDelegation {
                wallet,
                delegate_sun: sun,
                at: Utc::now(),
            };
            let requested = self
                .buses
                .order
                .execute(id, request, cause.meta("request-delegation"))
                .await?;
            if let Err(refusal) = requested.result {
                // The order moved on meanwhile (cancelled): give the capacity back.
                tracing::info!(refusal = %refusal, "delegation not requested; releasing capacity");
                let free = WalletCommand::ReleaseCapacity { order_id };
                self.buses
                    .wallet
                    .execute(&wallet_id, free, cause.meta("release-capacity"))
                    .await?;
            } else {
                // Hand the task to the wallet's worker now rather than when the order flow reads
                // the event: one pass over the global log less between payment and broadcast.
                open_chain_task(self.buses.pool(), id, &wallet_id, DELEGATE).await?;
                if let Some(wake) = &self.wake {
                    wake.task_opened(&wallet);
                }
                tracing::info!(wallet = %wallet_id, delegate_sun = sun, "delegation requested");
            }
            return Ok(());
        }
        self.refund(
            cause,
            &format!("no pool wallet can lend {sun} sun right now"),
        )
        .await
    }

    /// Why the receiver cannot be served, if it cannot.
    async fn receiver_problem(
        &self,
        receiver: &TronAddress,
    ) -> Result<Option<String>, crate::Error> {
        match self.node.account(receiver, Finality::Head).await? {
            None => Ok(Some(format!(
                "the receiver {receiver} is not activated on TRON; send it any amount of TRX first"
            ))),
            Some(account) if account.is_contract => Ok(Some(format!(
                "the receiver {receiver} is a smart contract; energy can only be lent to an account"
            ))),
            Some(_) => Ok(None),
        }
    }

    /// Wallets to try, best first: one already holding this order's reservation (a replay),
    /// then enabled wallets with room, most room first; never one that failed this order.
    async fn candidates(
        &self,
        order: &Order,
        order_id: &OrderId,
        sun: u64,
    ) -> Result<Vec<TronAddress>, crate::Error> {
        let failed = order.failed_wallets();
        let policy = self.buses.order.services();
        let mut held = Vec::new();
        let mut open = Vec::new();
        for id in self.wallet_ids().await?.iter() {
            // Possibly a little old: the reservation that follows is decided on the current
            // state. Read in place: a wallet's state holds every active reservation.
            let view = self
                .buses
                .wallet
                .peek_with(id, |wallet, _| {
                    wallet.address().map(|address| {
                        let holds = wallet.reservation(order_id).is_some();
                        (address, holds, wallet.is_enabled(), wallet.free_sun())
                    })
                })
                .await?;
            let Some((address, holds, enabled, free)) = view else {
                continue;
            };
            // A wallet registered a moment ago, not yet in this process's order policy, would
            // have its delegation refused: leave it for the next order.
            if failed.contains(&address) || !policy.pool_wallets.contains(&address) {
                continue;
            }
            if holds {
                held.push(address);
            } else if enabled && free >= sun {
                open.push((free, address));
            }
        }
        open.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        held.extend(open.into_iter().map(|(_, a)| a));
        Ok(held)
    }

    /// The pool wallets' ids, re-read at most every `WALLET_LIST_TTL`.
    async fn wallet_ids(&self) -> Result<Arc<Vec<String>>, crate::Error> {
        if let Some((at, ids)) = &*self.wallet_ids.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < WALLET_LIST_TTL {
                return Ok(ids.clone());
            }
        }
        let ids = Arc::new(pool_wallet_ids(&self.buses).await?);
        *self.wallet_ids.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), ids.clone()));
        Ok(ids)
    }

    async fn refund(&self, cause: Cause<'_>, reason: &str) -> Result<(), crate::Error> {
        tracing::info!(order_id = %cause.aggregate_id(), reason, "refunding the order");
        let refund = OrderCommand::RefundOrder {
            reason: reason.to_string(),
            at: Utc::now(),
        };
        self.buses
            .order
            .execute(cause.aggregate_id(), refund, cause.meta("refund"))
            .await?;
        Ok(())
    }
}

//! `orders`: one row per order with its state, the time of each step, the wallet, the chain
//! transactions of delegation and reclaim, and the amounts paid, captured and refunded.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use engine::domain::order::RejectionReason;
use engine::domain::OrderEvent;
use engine::log::AnyEvent;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::error::Error;
use crate::log::Event;
use crate::projection::{Projection, Target};
use crate::rows::{base58, big, fetch, keep, micros, unique, RowCache, ViewRow};
use crate::views::apply_error;

pub const NAME: &str = "orders";
const TABLE: &str = "orders";

/// The `orders` projection.
pub struct Orders;

/// One row of `orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRow {
    pub order_id: String,
    pub account_id: String,
    pub status: String,
    pub receiver: String,
    pub energy: i64,
    pub duration: String,
    pub duration_hours: i32,
    pub asset: String,
    pub unit_price: i64,
    pub price: i64,
    pub amount_paid: Option<i64>,
    pub amount_captured: Option<i64>,
    pub amount_refunded: Option<i64>,
    pub placed_at: DateTime<Utc>,
    pub pay_by: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancelled_by: Option<String>,
    pub delegation_attempts: i32,
    pub wallet: Option<String>,
    pub delegate_sun: Option<i64>,
    pub delegation_requested_at: Option<DateTime<Utc>>,
    pub delegation_signed_at: Option<DateTime<Utc>>,
    pub delegation_txid: Option<String>,
    pub delegation_expires_at: Option<DateTime<Utc>>,
    pub delegation_confirmed_at: Option<DateTime<Utc>>,
    pub delegation_block: Option<i64>,
    pub delegation_failures: i32,
    pub delegation_failed_at: Option<DateTime<Utc>>,
    pub delegation_failure_reason: Option<String>,
    pub active_from: Option<DateTime<Utc>>,
    pub active_until: Option<DateTime<Utc>>,
    pub refunded_at: Option<DateTime<Utc>>,
    pub refund_reason: Option<String>,
    pub reclaim_attempts: i32,
    pub reclaim_requested_at: Option<DateTime<Utc>>,
    pub reclaim_signed_at: Option<DateTime<Utc>>,
    pub reclaim_txid: Option<String>,
    pub reclaimed_at: Option<DateTime<Utc>>,
    pub reclaim_block: Option<i64>,
    pub completed_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl ViewRow for OrderRow {
    type Key = String;
    const KEY: &'static [&'static str] = &["order_id"];
    const COLUMNS: &'static [&'static str] = &[
        "order_id",
        "account_id",
        "status",
        "receiver",
        "energy",
        "duration",
        "duration_hours",
        "asset",
        "unit_price",
        "price",
        "amount_paid",
        "amount_captured",
        "amount_refunded",
        "placed_at",
        "pay_by",
        "paid_at",
        "rejected_at",
        "rejection_reason",
        "cancelled_at",
        "cancelled_by",
        "delegation_attempts",
        "wallet",
        "delegate_sun",
        "delegation_requested_at",
        "delegation_signed_at",
        "delegation_txid",
        "delegation_expires_at",
        "delegation_confirmed_at",
        "delegation_block",
        "delegation_failures",
        "delegation_failed_at",
        "delegation_failure_reason",
        "active_from",
        "active_until",
        "refunded_at",
        "refund_reason",
        "reclaim_attempts",
        "reclaim_requested_at",
        "reclaim_signed_at",
        "reclaim_txid",
        "reclaimed_at",
        "reclaim_block",
        "completed_at",
        "closed_at",
        "version",
        "updated_at",
    ];
    fn key(&self) -> String {
        self.order_id.clone()
    }
}

/// How a rejection reason reads in the view.
pub fn rejection_text(reason: &RejectionReason) -> String {
    match reason {
        RejectionReason::InsufficientFunds => "insufficient funds".to_string(),
        RejectionReason::Invalid(text) => text.clone(),
    }
}

fn placed(order_id: &str, event: &OrderEvent, at: DateTime<Utc>) -> Option<OrderRow> {
    let OrderEvent::OrderPlaced {
        account_id,
        receiver,
        energy,
        duration,
        quote,
        pay_by,
        placed_at,
    } = event
    else {
        return None;
    };
    Some(OrderRow {
        order_id: order_id.to_string(),
        account_id: account_id.to_string(),
        status: "Placed".into(),
        receiver: base58(receiver),
        energy: big(*energy),
        duration: duration.as_str().into(),
        duration_hours: duration.hours() as i32,
        asset: quote.asset.code().into(),
        unit_price: big(quote.unit_price),
        price: big(quote.price.units()),
        amount_paid: None,
        amount_captured: None,
        amount_refunded: None,
        placed_at: micros(*placed_at),
        pay_by: micros(*pay_by),
        paid_at: None,
        rejected_at: None,
        rejection_reason: None,
        cancelled_at: None,
        cancelled_by: None,
        delegation_attempts: 0,
        wallet: None,
        delegate_sun: None,
        delegation_requested_at: None,
        delegation_signed_at: None,
        delegation_txid: None,
        delegation_expires_at: None,
        delegation_confirmed_at: None,
        delegation_block: None,
        delegation_failures: 0,
        delegation_failed_at: None,
        delegation_failure_reason: None,
        active_from: None,
        active_until: None,
        refunded_at: None,
        refund_reason: None,
        reclaim_attempts: 0,
        reclaim_requested_at: None,
        reclaim_signed_at: None,
        reclaim_txid: None,
        reclaimed_at: None,
        reclaim_block: None,
        completed_at: None,
        closed_at: None,
        version: 0,
        updated_at: at,
    })
}

fn fold(row: &mut OrderRow, event: &OrderEvent) {
    use OrderEvent::*;
    let status = match event {
        OrderPlaced { .. } => "Placed",
        OrderPaid {
            amount, paid_at, ..
        } => {
            row.amount_paid = Some(big(amount.units()));
            row.paid_at = Some(micros(*paid_at));
            "Paid"
        }
        OrderRejected { reason, at, .. } => {
            row.rejected_at = Some(micros(*at));
            row.rejection_reason = Some(rejection_text(reason));
            row.closed_at = Some(micros(*at));
            "Rejected"
        }
        OrderCancelled {
            by,
            release_funds,
            amount,
            at,
            ..
        } => {
            row.cancelled_at = Some(micros(*at));
            row.cancelled_by = Some(format!("{by:?}"));
            if *release_funds {
                row.amount_refunded = Some(big(amount.units()));
            }
            row.closed_at = Some(micros(*at));
            "Cancelled"
        }
        DelegationRequested {
            wallet,
            attempt,
            delegate_sun,
            at,
            ..
        } => {
            row.delegation_attempts = *attempt as i32;
            row.wallet = Some(base58(wallet));
            row.delegate_sun = Some(big(*delegate_sun));
            row.delegation_requested_at = Some(micros(*at));
            row.delegation_signed_at = None;
            row.delegation_txid = None;
            row.delegation_expires_at = None;
            "DelegationRequested"
        }
        DelegationSigned {
            txid,
            expiration_ms,
            at,
            ..
        } => {
            row.delegation_signed_at = Some(micros(*at));
            row.delegation_txid = Some(txid.to_string());
            row.delegation_expires_at = DateTime::from_timestamp_millis(*expiration_ms);
            "DelegationSigned"
        }
        DelegationExpired { .. } => {
            row.delegation_signed_at = None;
            row.delegation_expires_at = None;
            "DelegationRequested"
        }
        DelegationConfirmed {
            txid,
            block_number,
            delegate_sun,
            wallet,
            at,
            ..
        } => {
            row.delegation_txid = Some(txid.to_string());
            row.delegation_block = Some(big(*block_number));
            row.delegation_confirmed_at = Some(micros(*at));
            row.delegate_sun = Some(big(*delegate_sun));
            row.wallet = Some(base58(wallet));
            "DelegationConfirmed"
        }
        OrderActivated {
            active_from,
            active_until,
            ..
        } => {
            row.active_from = Some(micros(*active_from));
            row.active_until = Some(micros(*active_until));
            "Active"
        }
        DelegationFailed {
            reason, txid, at, ..
        } => {
            row.delegation_failures += 1;
            row.delegation_failed_at = Some(micros(*at));
            row.delegation_failure_reason = Some(reason.clone());
            if let Some(txid) = txid {
                row.delegation_txid = Some(txid.to_string());
            }
            "DelegationFailed"
        }
        OrderRefunded {
            amount, reason, at, ..
        } => {
            row.amount_refunded = Some(big(amount.units()));
            row.refunded_at = Some(micros(*at));
            row.refund_reason = Some(reason.clone());
            row.closed_at = Some(micros(*at));
            "Refunded"
        }
        ReclaimRequested { attempt, at, .. } => {
            row.reclaim_attempts = *attempt as i32;
            row.reclaim_requested_at = Some(micros(*at));
            "ReclaimRequested"
        }
        ReclaimSigned {
            txid, attempt, at, ..
        } => {
            row.reclaim_attempts = *attempt as i32;
            row.reclaim_signed_at = Some(micros(*at));
            row.reclaim_txid = Some(txid.to_string());
            "ReclaimSigned"
        }
        ReclaimExpired { .. } => {
            row.reclaim_signed_at = None;
            "ReclaimRequested"
        }
        ReclaimFailed { attempt, .. } => {
            row.reclaim_signed_at = None;
            row.reclaim_attempts = attempt.saturating_add(1) as i32;
            "ReclaimRequested"
        }
        Reclaimed {
            txid,
            block_number,
            at,
            ..
        } => {
            row.reclaim_txid = Some(txid.to_string());
            row.reclaim_block = Some(big(*block_number));
            row.reclaimed_at = Some(micros(*at));
            "Reclaimed"
        }
        OrderCompleted { amount, at, .. } => {
            row.amount_captured = Some(big(amount.units()));
            row.completed_at = Some(micros(*at));
            row.closed_at = Some(micros(*at));
            "Completed"
        }
    };
    row.status = status.to_string();
}

impl Orders {
    async fn run(
        &self,
        conn: &mut PgConnection,
        target: Target,
        events: &[Event],
        cache: &mut RowCache,
    ) -> Result<(), Error> {
        let table = target.table(TABLE);
        let keys = unique(
            events
                .iter()
                .filter(|e| matches!(e.event, AnyEvent::Order(_)))
                .map(|e| e.aggregate_id.clone())
                .collect(),
        );
        if keys.is_empty() {
            return Ok(());
        }
        let mut rows: HashMap<String, OrderRow> =
            fetch::<OrderRow>(conn, &table, &keys, cache).await?;
        for e in events {
            let AnyEvent::Order(o) = &e.event else {
                continue;
            };
            let id = &e.aggregate_id;
            let at = micros(e.recorded_at);
            if let Some(new) = placed(id, o, at) {
                if rows.contains_key(id) {
                    return Err(apply_error(NAME, e, "the order was placed before"));
                }
                rows.insert(id.clone(), new);
            }
            let row = rows
                .get_mut(id)
                .ok_or_else(|| apply_error(NAME, e, "no OrderPlaced before this event"))?;
            fold(row, o);
            row.version = e.sequence as i64;
            row.updated_at = at;
        }
        keep(conn, &table, rows, &keys, cache).await
    }
}

impl Projection for Orders {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[TABLE]
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        target: Target,
        events: &'a [Event],
        cache: &'a mut RowCache,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.run(conn, target, events, cache))
    }
}

//! `daily_finance`: per UTC day (of each event's `recorded_at`) and asset: deposits credited,
//! revenue captured, refunds (every release of reserved funds), admin adjustments, orders placed
//! and by outcome, energy-days sold (counted when an order becomes active), delegation successes
//! and failures, and the time from placing an order to its confirmed delegation. Money figures
//! come from the account's events, so the days add up to the balances.
//!
//! `daily_finance_orders` is this projection's memory of each order's asset and placement time.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use engine::domain::{AccountEvent, Asset, OrderEvent};
use engine::log::AnyEvent;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::error::Error;
use crate::log::Event;
use crate::projection::{Projection, Target};
use crate::rows::{big, fetch, keep, micros, unique, RowCache, ViewRow};
use crate::views::apply_error;

pub const NAME: &str = "daily_finance";
const TABLE: &str = "daily_finance";
const ORDERS_TABLE: &str = "daily_finance_orders";

/// The `daily_finance` projection.
pub struct DailyFinance;

/// One row of `daily_finance` (the generated columns are left out: [`super::query`] reads them).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema,
)]
pub struct DailyRow {
    pub day: NaiveDate,
    pub asset: String,
    pub deposits_count: i64,
    pub deposits_amount: i64,
    pub captures_count: i64,
    pub revenue_captured: i64,
    pub refunds_count: i64,
    pub refunds_amount: i64,
    pub adjustments_in: i64,
    pub adjustments_out: i64,
    pub orders_placed: i64,
    pub orders_completed: i64,
    pub orders_cancelled: i64,
    pub orders_rejected: i64,
    pub orders_refunded: i64,
    pub energy_hours_sold: i64,
    pub delegations_confirmed: i64,
    pub delegations_failed: i64,
    pub order_to_delegation_ms_total: i64,
    pub order_to_delegation_count: i64,
}

impl ViewRow for DailyRow {
    type Key = (NaiveDate, String);
    const KEY: &'static [&'static str] = &["day", "asset"];
    const COLUMNS: &'static [&'static str] = &[
        "day",
        "asset",
        "deposits_count",
        "deposits_amount",
        "captures_count",
        "revenue_captured",
        "refunds_count",
        "refunds_amount",
        "adjustments_in",
        "adjustments_out",
        "orders_placed",
        "orders_completed",
        "orders_cancelled",
        "orders_rejected",
        "orders_refunded",
        "energy_hours_sold",
        "delegations_confirmed",
        "delegations_failed",
        "order_to_delegation_ms_total",
        "order_to_delegation_count",
    ];
    fn key(&self) -> Self::Key {
        (self.day, self.asset.clone())
    }
}

/// What the projection remembers of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFact {
    pub order_id: String,
    pub asset: String,
    pub placed_at: DateTime<Utc>,
    pub energy: i64,
    pub duration_hours: i32,
}

impl ViewRow for OrderFact {
    type Key = String;
    const KEY: &'static [&'static str] = &["order_id"];
    const COLUMNS: &'static [&'static str] =
        &["order_id", "asset", "placed_at", "energy", "duration_hours"];
    fn key(&self) -> String {
        self.order_id.clone()
    }
}

/// What one event adds to its day.
enum Effect {
    None,
    /// Figures in a known asset.
    Asset(Asset, fn(&mut DailyRow, &Event, Option<&OrderFact>)),
    /// Figures in the order's asset, which the projection remembers.
    OrderAsset(fn(&mut DailyRow, &Event, Option<&OrderFact>)),
}

fn amount_of(e: &Event) -> i64 {
    match &e.event {
        AnyEvent::Account(
            AccountEvent::FundsCredited { amount, .. }
            | AccountEvent::FundsCaptured { amount, .. }
            | AccountEvent::FundsReleased { amount, .. },
        ) => big(amount.units()),
        _ => 0,
    }
}

fn effect(e: &Event) -> Effect {
    use Effect::*;
    match &e.event {
        AnyEvent::Account(a) => match a {
            AccountEvent::AccountOpened { .. } | AccountEvent::FundsReserved { .. } => None,
            AccountEvent::FundsCredited { asset, .. } => Asset(*asset, |r, e, _| {
                r.deposits_count += 1;
                r.deposits_amount += amount_of(e);
            }),
            AccountEvent::FundsCaptured { asset, .. } => Asset(*asset, |r, e, _| {
                r.captures_count += 1;
                r.revenue_captured += amount_of(e);
            }),
            AccountEvent::FundsReleased { asset, .. } => Asset(*asset, |r, e, _| {
                r.refunds_count += 1;
                r.refunds_amount += amount_of(e);
            }),
            AccountEvent::BalanceAdjusted { asset, .. } => Asset(*asset, |r, e, _| {
                if let AnyEvent::Account(AccountEvent::BalanceAdjusted { delta, .. }) = &e.event {
                    if *delta >= 0 {
                        r.adjustments_in += big(delta.unsigned_abs());
                    } else {
                        r.adjustments_out += big(delta.unsigned_abs());
                    }
                }
            }),
        },
        AnyEvent::Order(o) => match o {
            OrderEvent::OrderPlaced { quote, .. } => {
                Asset(quote.asset, |r, _, _| r.orders_placed += 1)
            }
            OrderEvent::OrderCompleted { asset, .. } => {
                Asset(*asset, |r, _, _| r.orders_completed += 1)
            }
            OrderEvent::OrderCancelled { asset, .. } => {
                Asset(*asset, |r, _, _| r.orders_cancelled += 1)
            }
            OrderEvent::OrderRefunded { asset, .. } => {
                Asset(*asset, |r, _, _| r.orders_refunded += 1)
            }
            OrderEvent::OrderRejected { .. } => OrderAsset(|r, _, _| r.orders_rejected += 1),
            OrderEvent::OrderActivated { .. } => OrderAsset(|r, _, fact| {
                if let Some(f) = fact {
                    r.energy_hours_sold += f.energy.saturating_mul(i64::from(f.duration_hours));
                }
            }),
            OrderEvent::DelegationConfirmed { .. } => OrderAsset(|r, e, fact| {
                r.delegations_confirmed += 1;
                if let (Some(f), AnyEvent::Order(OrderEvent::DelegationConfirmed { at, .. })) =
                    (fact, &e.event)
                {
                    let ms = (micros(*at) - f.placed_at).num_milliseconds().max(0);
                    r.order_to_delegation_ms_total += ms;
                    r.order_to_delegation_count += 1;
                }
            }),
            OrderEvent::DelegationFailed { .. } => OrderAsset(|r, _, _| r.delegations_failed += 1),
            _ => None,
        },
        AnyEvent::Deposit(_)
        | AnyEvent::Wallet(_)
        | AnyEvent::PriceList(_)
        | AnyEvent::Maintenance(_) => None,
    }
}

impl DailyFinance {
    async fn run(
        &self,
        conn: &mut PgConnection,
        target: Target,
        events: &[Event],
        cache: &mut RowCache,
    ) -> Result<(), Error> {
        let table = target.table(TABLE);
        let orders_table = target.table(ORDERS_TABLE);
        // The orders whose remembered facts this batch needs.
        let wanted = unique(
            events
                .iter()
                .filter(|e| matches!(effect(e), Effect::OrderAsset(_)))
                .map(|e| e.aggregate_id.clone())
                .collect(),
        );
        let mut facts: HashMap<String, OrderFact> =
            fetch::<OrderFact>(conn, &orders_table, &wanted, cache).await?;
        let mut new_facts: Vec<String> = Vec::new();
        let mut days: HashMap<(NaiveDate, String), DailyRow> = HashMap::new();
        for e in events {
            if let AnyEvent::Order(OrderEvent::OrderPlaced {
                quote,
                placed_at,
                energy,
                duration,
                ..
            }) = &e.event
            {
                let id = e.aggregate_id.clone();
                facts.insert(
                    id.clone(),
                    OrderFact {
                        order_id: id.clone(),
                        asset: quote.asset.code().into(),
                        placed_at: micros(*placed_at),
                        energy: big(*energy),
                        duration_hours: duration.hours() as i32,
                    },
                );
                new_facts.push(id);
            }
            let (asset, add, fact) = match effect(e) {
                Effect::None => continue,
                Effect::Asset(asset, add) => (asset.code().to_string(), add, None),
                Effect::OrderAsset(add) => {
                    let fact = facts
                        .get(&e.aggregate_id)
                        .ok_or_else(|| apply_error(NAME, e, "no OrderPlaced before this event"))?;
                    (fact.asset.clone(), add, Some(fact))
                }
            };
            let day = e.recorded_at.date_naive();
            let row = days
                .entry((day, asset.clone()))
                .or_insert_with(|| DailyRow {
                    day,
                    asset,
                    ..DailyRow::default()
                });
            add(row, e, fact);
        }
        keep(conn, &orders_table, facts, &unique(new_facts), cache).await?;
        if days.is_empty() {
            return Ok(());
        }
        // Add this batch's figures to the stored days.
        let keys: Vec<(NaiveDate, String)> = unique(days.keys().cloned().collect());
        let mut stored = fetch::<DailyRow>(conn, &table, &keys, cache).await?;
        for (key, delta) in days {
            let row = stored.entry(key).or_insert_with(|| DailyRow {
                day: delta.day,
                asset: delta.asset.clone(),
                ..DailyRow::default()
            });
            add_rows(row, &delta);
        }
        keep(conn, &table, stored, &keys, cache).await
    }
}

fn add_rows(row: &mut DailyRow, old: &DailyRow) {
    row.deposits_count += old.deposits_count;
    row.deposits_amount += old.deposits_amount;
    row.captures_count += old.captures_count;
    row.revenue_captured += old.revenue_captured;
    row.refunds_count += old.refunds_count;
    row.refunds_amount += old.refunds_amount;
    row.adjustments_in += old.adjustments_in;
    row.adjustments_out += old.adjustments_out;
    row.orders_placed += old.orders_placed;
    row.orders_completed += old.orders_completed;
    row.orders_cancelled += old.orders_cancelled;
    row.orders_rejected += old.orders_rejected;
    row.orders_refunded += old.orders_refunded;
    row.energy_hours_sold += old.energy_hours_sold;
    row.delegations_confirmed += old.delegations_confirmed;
    row.delegations_failed += old.delegations_failed;
    row.order_to_delegation_ms_total += old.order_to_delegation_ms_total;
    row.order_to_delegation_count += old.order_to_delegation_count;
}

impl Projection for DailyFinance {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[TABLE, ORDERS_TABLE]
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

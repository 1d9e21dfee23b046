//! `account_balances`: one row per account and asset. `available` and `reserved` are copied from
//! the events (which carry the balance after them); the totals add up the events' amounts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use engine::domain::{AccountEvent, Asset};
use engine::log::AnyEvent;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::error::Error;
use crate::log::Event;
use crate::projection::{Projection, Target};
use crate::rows::{big, fetch, keep, micros, unique, RowCache, ViewRow};

pub const NAME: &str = "account_balances";
const TABLE: &str = "account_balances";

/// The `account_balances` projection.
pub struct AccountBalances;

/// One row of `account_balances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceRow {
    pub account_id: String,
    pub asset: String,
    pub available: i64,
    pub reserved: i64,
    pub deposited: i64,
    pub spent: i64,
    pub refunded: i64,
    pub adjusted_in: i64,
    pub adjusted_out: i64,
    pub opened_at: Option<DateTime<Utc>>,
    pub account_version: i64,
    pub updated_at: DateTime<Utc>,
}

impl ViewRow for BalanceRow {
    type Key = (String, String);
    const KEY: &'static [&'static str] = &["account_id", "asset"];
    const COLUMNS: &'static [&'static str] = &[
        "account_id",
        "asset",
        "available",
        "reserved",
        "deposited",
        "spent",
        "refunded",
        "adjusted_in",
        "adjusted_out",
        "opened_at",
        "account_version",
        "updated_at",
    ];
    fn key(&self) -> Self::Key {
        (self.account_id.clone(), self.asset.clone())
    }
}

impl BalanceRow {
    fn new(account_id: &str, asset: Asset, at: DateTime<Utc>) -> Self {
        BalanceRow {
            account_id: account_id.to_string(),
            asset: asset.code().to_string(),
            available: 0,
            reserved: 0,
            deposited: 0,
            spent: 0,
            refunded: 0,
            adjusted_in: 0,
            adjusted_out: 0,
            opened_at: None,
            account_version: 0,
            updated_at: at,
        }
    }
}

/// The asset rows an account event touches.
fn assets_of(event: &AccountEvent) -> Vec<Asset> {
    match event {
        AccountEvent::AccountOpened { .. } => Asset::ALL.to_vec(),
        AccountEvent::FundsCredited { asset, .. }
        | AccountEvent::FundsReserved { asset, .. }
        | AccountEvent::FundsCaptured { asset, .. }
        | AccountEvent::FundsReleased { asset, .. }
        | AccountEvent::BalanceAdjusted { asset, .. } => vec![*asset],
    }
}

fn fold(row: &mut BalanceRow, event: &AccountEvent, version: i64, at: DateTime<Utc>) {
    let (available, reserved) = match event {
        AccountEvent::AccountOpened { opened_at, .. } => {
            row.opened_at = Some(micros(*opened_at));
            (row.available as u64, row.reserved as u64)
        }
        AccountEvent::FundsCredited {
            amount,
            available_after,
            reserved_after,
            ..
        } => {
            row.deposited += big(amount.units());
            (*available_after, *reserved_after)
        }
        AccountEvent::FundsReserved {
            available_after,
            reserved_after,
            ..
        } => (*available_after, *reserved_after),
        AccountEvent::FundsCaptured {
            amount,
            available_after,
            reserved_after,
            ..
        } => {
            row.spent += big(amount.units());
            (*available_after, *reserved_after)
        }
        AccountEvent::FundsReleased {
            amount,
            available_after,
            reserved_after,
            ..
        } => {
            row.refunded += big(amount.units());
            (*available_after, *reserved_after)
        }
        AccountEvent::BalanceAdjusted {
            delta,
            available_after,
            reserved_after,
            ..
        } => {
            if *delta >= 0 {
                row.adjusted_in += big(delta.unsigned_abs());
            } else {
                row.adjusted_out += big(delta.unsigned_abs());
            }
            (*available_after, *reserved_after)
        }
    };
    row.available = big(available);
    row.reserved = big(reserved);
    row.account_version = version;
    row.updated_at = at;
}

impl AccountBalances {
    async fn run(
        &self,
        conn: &mut PgConnection,
        target: Target,
        events: &[Event],
        cache: &mut RowCache,
    ) -> Result<(), Error> {
        let table = target.table(TABLE);
        let mut keys = Vec::new();
        for e in events {
            if let AnyEvent::Account(a) = &e.event {
                for asset in assets_of(a) {
                    keys.push((e.aggregate_id.clone(), asset.code().to_string()));
                }
            }
        }
        if keys.is_empty() {
            return Ok(());
        }
        let keys = unique(keys);
        let mut rows: HashMap<(String, String), BalanceRow> =
            fetch::<BalanceRow>(conn, &table, &keys, cache).await?;
        for e in events {
            let AnyEvent::Account(a) = &e.event else {
                continue;
            };
            let at = micros(e.recorded_at);
            for asset in assets_of(a) {
                let key = (e.aggregate_id.clone(), asset.code().to_string());
                let row = rows
                    .entry(key)
                    .or_insert_with(|| BalanceRow::new(&e.aggregate_id, asset, at));
                fold(row, a, e.sequence as i64, at);
            }
        }
        keep(conn, &table, rows, &keys, cache).await
    }
}

impl Projection for AccountBalances {
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

//! `deposits`: every deposit seen on chain (asset, amount, txid, block, account) and its status.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use engine::domain::DepositEvent;
use engine::log::AnyEvent;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::error::Error;
use crate::log::Event;
use crate::projection::{Projection, Target};
use crate::rows::{base58, big, fetch, keep, micros, unique, RowCache, ViewRow};
use crate::views::apply_error;

pub const NAME: &str = "deposits";
const TABLE: &str = "deposits";

/// The `deposits` projection.
pub struct Deposits;

/// One row of `deposits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositRow {
    pub deposit_id: String,
    pub account_id: String,
    pub asset: String,
    pub amount: i64,
    pub txid: String,
    pub log_index: Option<i64>,
    pub from_address: String,
    pub to_address: String,
    pub block_number: i64,
    pub status: String,
    pub confirmed_block: Option<i64>,
    pub rejection_reason: Option<String>,
    pub detected_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub credited_at: Option<DateTime<Utc>>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl ViewRow for DepositRow {
    type Key = String;
    const KEY: &'static [&'static str] = &["deposit_id"];
    const COLUMNS: &'static [&'static str] = &[
        "deposit_id",
        "account_id",
        "asset",
        "amount",
        "txid",
        "log_index",
        "from_address",
        "to_address",
        "block_number",
        "status",
        "confirmed_block",
        "rejection_reason",
        "detected_at",
        "confirmed_at",
        "credited_at",
        "rejected_at",
        "version",
        "updated_at",
    ];
    fn key(&self) -> String {
        self.deposit_id.clone()
    }
}

impl Deposits {
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
                .filter(|e| matches!(e.event, AnyEvent::Deposit(_)))
                .map(|e| e.aggregate_id.clone())
                .collect(),
        );
        if keys.is_empty() {
            return Ok(());
        }
        let mut rows: HashMap<String, DepositRow> =
            fetch::<DepositRow>(conn, &table, &keys, cache).await?;
        for e in events {
            let AnyEvent::Deposit(d) = &e.event else {
                continue;
            };
            let id = &e.aggregate_id;
            let at = micros(e.recorded_at);
            if let DepositEvent::DepositDetected {
                deposit_id,
                account_id,
                asset,
                amount,
                txid,
                log_index,
                from,
                to,
                block_number,
                at: detected_at,
            } = d
            {
                if rows.contains_key(id) {
                    return Err(apply_error(NAME, e, "the deposit was detected before"));
                }
                rows.insert(
                    id.clone(),
                    DepositRow {
                        deposit_id: deposit_id.to_string(),
                        account_id: account_id.to_string(),
                        asset: asset.code().into(),
                        amount: big(amount.units()),
                        txid: txid.to_string(),
                        log_index: log_index.map(i64::from),
                        from_address: base58(from),
                        to_address: base58(to),
                        block_number: big(*block_number),
                        status: "Detected".into(),
                        confirmed_block: None,
                        rejection_reason: None,
                        detected_at: micros(*detected_at),
                        confirmed_at: None,
                        credited_at: None,
                        rejected_at: None,
                        version: 0,
                        updated_at: at,
                    },
                );
            }
            let row = rows
                .get_mut(id)
                .ok_or_else(|| apply_error(NAME, e, "no DepositDetected before this event"))?;
            match d {
                DepositEvent::DepositDetected { .. } => {}
                DepositEvent::DepositConfirmed {
                    block_number,
                    at: t,
                    ..
                } => {
                    row.status = "Confirmed".into();
                    row.confirmed_block = Some(big(*block_number));
                    row.confirmed_at = Some(micros(*t));
                }
                DepositEvent::DepositCredited { at: t, .. } => {
                    row.status = "Credited".into();
                    row.credited_at = Some(micros(*t));
                }
                DepositEvent::DepositRejected { reason, at: t, .. } => {
                    row.status = "Rejected".into();
                    row.rejection_reason = Some(format!("{reason:?}"));
                    row.rejected_at = Some(micros(*t));
                }
            }
            row.version = e.sequence as i64;
            row.updated_at = at;
        }
        keep(conn, &table, rows, &keys, cache).await
    }
}

impl Projection for Deposits {
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

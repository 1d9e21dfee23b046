//! `wallet_utilisation`: each pool wallet's observed stake, the capacity reserved for orders,
//! what is delegated out right now (from the orders' confirmed delegations and reclaims), free
//! capacity, and alerts:
//!
//! - `disabled`: the wallet is registered but disabled;
//! - `no_stake_observed`: no `ResourcesObserved` yet;
//! - `low_free_capacity`: less than 10% of the stake is free;
//! - `overcommitted`: more is reserved for orders than is staked;
//! - `delegated_beyond_stake`: more is delegated out than is staked.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use engine::domain::{OrderEvent, TronAddress, WalletEvent};
use engine::log::AnyEvent;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::error::Error;
use crate::log::Event;
use crate::projection::{Projection, Target};
use crate::rows::{base58, big, fetch, keep, micros, unique, RowCache, ViewRow};

pub const NAME: &str = "wallet_utilisation";
const TABLE: &str = "wallet_utilisation";

/// The `wallet_utilisation` projection.
pub struct WalletUtilisation;

/// One row of `wallet_utilisation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletRow {
    pub wallet: String,
    pub address_hex: Option<String>,
    pub registered: bool,
    pub key_ref: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub staked_sun: i64,
    pub delegatable_sun: i64,
    pub energy_limit: i64,
    pub reserved_sun: i64,
    pub free_sun: i64,
    pub reserved_orders: i32,
    pub delegated_sun: i64,
    pub active_delegations: i32,
    pub delegations_total: i64,
    pub registered_at: Option<DateTime<Utc>>,
    pub observed_at: Option<DateTime<Utc>>,
    pub alerts: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

impl ViewRow for WalletRow {
    type Key = String;
    const KEY: &'static [&'static str] = &["wallet"];
    const COLUMNS: &'static [&'static str] = &[
        "wallet",
        "address_hex",
        "registered",
        "key_ref",
        "enabled",
        "disabled_reason",
        "staked_sun",
        "delegatable_sun",
        "energy_limit",
        "reserved_sun",
        "free_sun",
        "reserved_orders",
        "delegated_sun",
        "active_delegations",
        "delegations_total",
        "registered_at",
        "observed_at",
        "alerts",
        "updated_at",
    ];
    fn key(&self) -> String {
        self.wallet.clone()
    }
}

impl WalletRow {
    fn new(wallet: &str, at: DateTime<Utc>) -> Self {
        WalletRow {
            wallet: wallet.to_string(),
            address_hex: wallet.parse::<TronAddress>().ok().map(|a| a.to_hex()),
            registered: false,
            key_ref: None,
            enabled: false,
            disabled_reason: None,
            staked_sun: 0,
            delegatable_sun: 0,
            energy_limit: 0,
            reserved_sun: 0,
            free_sun: 0,
            reserved_orders: 0,
            delegated_sun: 0,
            active_delegations: 0,
            delegations_total: 0,
            registered_at: None,
            observed_at: None,
            alerts: Vec::new(),
            updated_at: at,
        }
    }

    fn alerts(&self) -> Vec<String> {
        let mut alerts = Vec::new();
        if self.registered && !self.enabled {
            alerts.push("disabled");
        }
        if self.observed_at.is_none() {
            alerts.push("no_stake_observed");
        }
        if self.staked_sun > 0 && (self.free_sun as i128) * 10 < self.staked_sun as i128 {
            alerts.push("low_free_capacity");
        }
        if self.reserved_sun > self.staked_sun {
            alerts.push("overcommitted");
        }
        if self.delegated_sun > self.staked_sun {
            alerts.push("delegated_beyond_stake");
        }
        alerts.into_iter().map(String::from).collect()
    }
}

/// The wallet row key of a wallet aggregate: its base58 address when the id is an address.
fn wallet_key(aggregate_id: &str) -> String {
    thread_local! {
        static SEEN: std::cell::RefCell<HashMap<String, String>> =
            std::cell::RefCell::new(HashMap::new());
    }
    SEEN.with(|seen| {
        if let Some(key) = seen.borrow().get(aggregate_id) {
            return key.clone();
        }
        let key = aggregate_id
            .parse::<TronAddress>()
            .map(|a| base58(&a))
            .unwrap_or_else(|_| aggregate_id.to_string());
        let mut seen = seen.borrow_mut();
        if seen.len() >= 10_000 {
            seen.clear();
        }
        seen.insert(aggregate_id.to_string(), key.clone());
        key
    })
}

/// The wallet an event concerns, if any.
fn wallet_of(event: &Event) -> Option<String> {
    match &event.event {
        AnyEvent::Wallet(WalletEvent::WalletRegistered { address, .. }) => Some(base58(address)),
        AnyEvent::Wallet(_) => Some(wallet_key(&event.aggregate_id)),
        AnyEvent::Order(OrderEvent::DelegationConfirmed { wallet, .. })
        | AnyEvent::Order(OrderEvent::Reclaimed { wallet, .. }) => Some(base58(wallet)),
        _ => None,
    }
}

fn fold(row: &mut WalletRow, event: &AnyEvent) {
    match event {
        AnyEvent::Wallet(w) => match w {
            WalletEvent::WalletRegistered {
                address,
                key_ref,
                at,
            } => {
                row.registered = true;
                row.enabled = true;
                row.address_hex = Some(address.to_hex());
                row.key_ref = Some(key_ref.as_str().to_string());
                row.registered_at = Some(micros(*at));
            }
            WalletEvent::ResourcesObserved {
                staked_sun,
                delegatable_sun,
                energy_limit,
                reserved_sun,
                free_sun,
                at,
            } => {
                row.staked_sun = big(*staked_sun);
                row.delegatable_sun = big(*delegatable_sun);
                row.energy_limit = big(*energy_limit);
                row.reserved_sun = big(*reserved_sun);
                row.free_sun = big(*free_sun);
                row.observed_at = Some(micros(*at));
            }
            WalletEvent::CapacityReserved {
                reserved_after,
                free_after,
                ..
            } => {
                row.reserved_sun = big(*reserved_after);
                row.free_sun = big(*free_after);
                row.reserved_orders += 1;
            }
            WalletEvent::CapacityReleased {
                reserved_after,
                free_after,
                ..
            } => {
                row.reserved_sun = big(*reserved_after);
                row.free_sun = big(*free_after);
                row.reserved_orders -= 1;
            }
            WalletEvent::WalletDisabled { reason, .. } => {
                row.enabled = false;
                row.disabled_reason = Some(reason.clone());
            }
            WalletEvent::WalletEnabled { .. } => {
                row.enabled = true;
                row.disabled_reason = None;
            }
        },
        AnyEvent::Order(OrderEvent::DelegationConfirmed { delegate_sun, .. }) => {
            row.delegated_sun += big(*delegate_sun);
            row.active_delegations += 1;
            row.delegations_total += 1;
        }
        AnyEvent::Order(OrderEvent::Reclaimed { delegate_sun, .. }) => {
            row.delegated_sun -= big(*delegate_sun);
            row.active_delegations -= 1;
        }
        _ => {}
    }
}

impl WalletUtilisation {
    async fn run(
        &self,
        conn: &mut PgConnection,
        target: Target,
        events: &[Event],
        cache: &mut RowCache,
    ) -> Result<(), Error> {
        let table = target.table(TABLE);
        let keys = unique(events.iter().filter_map(wallet_of).collect());
        if keys.is_empty() {
            return Ok(());
        }
        let mut rows: HashMap<String, WalletRow> =
            fetch::<WalletRow>(conn, &table, &keys, cache).await?;
        for e in events {
            let Some(key) = wallet_of(e) else {
                continue;
            };
            let at = micros(e.recorded_at);
            let row = rows
                .entry(key.clone())
                .or_insert_with(|| WalletRow::new(&key, at));
            fold(row, &e.event);
            row.alerts = row.alerts();
            row.updated_at = at;
        }
        keep(conn, &table, rows, &keys, cache).await
    }
}

impl Projection for WalletUtilisation {
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

//! Wallet sync: for each pool wallet, the stake and delegatable capacity the chain reports,
//! recorded on the `Wallet` aggregate (`ObserveResources`) when they changed, so orders only go
//! to wallets that can serve them; and an alert (a warn line naming the wallet, and a gauge in
//! [`WalletGauges`]) when a wallet's delegatable capacity or its TRX balance is below its
//! threshold.
//!
//! Read from the head (`/wallet/…`), the freshest view:
//! - `staked_sun` = own energy stake + energy stake delegated out (`getaccount`);
//! - `delegatable_sun` = `getcandelegatedmaxsize` for ENERGY;
//! - `energy_limit` = the wallet's own `EnergyLimit` (`getaccountresource`);
//! - the TRX balance (`getaccount`), which pays the bandwidth of delegations once the free
//!   allowance is used up.
//!
//! An unactivated wallet reads as all zeros. One owner across processes (a Postgres session
//! advisory lock); a standby takes over when the owner's connection goes away.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use engine::domain::{FieldError, WalletCommand, WalletError};
use engine::process::runner::run_owned;
use engine::process::Buses;
use engine::store::{derived_command_id, Actor, CommandMetadata};
use serde::Serialize;
use tokio::sync::watch;
use tracing::Instrument;

use crate::error::Error;
use crate::node::{Finality, NodeClient, NodeError};
use crate::tx::Resource;
use crate::TronAddress;

/// The actor, the namespace of command ids, and the ownership lock's name.
pub const NAME: &str = "wallet-sync";

/// How the sync runs and when it alerts.
#[derive(Debug, Clone)]
pub struct WalletSyncConfig {
    /// The pause between passes.
    pub interval: Duration,
    /// Alert when a wallet can delegate less than this (sun of energy stake).
    pub low_capacity_sun: u64,
    /// Alert when a wallet holds less than this much TRX (sun) to pay for bandwidth.
    pub low_balance_sun: u64,
    /// How often a standby tries to take ownership.
    pub standby_retry: Duration,
}

impl Default for WalletSyncConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            // About one 65,000-energy order at mainnet's ~11 energy per TRX.
            low_capacity_sun: 6_000_000_000,
            // About 100 delegations' bandwidth burned at 1,000 sun per byte.
            low_balance_sun: 30_000_000,
            standby_retry: Duration::from_secs(1),
        }
    }
}

/// What the chain said about one wallet at its last sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WalletReading {
    pub activated: bool,
    pub staked_sun: u64,
    pub delegatable_sun: u64,
    pub energy_limit: u64,
    pub balance_sun: u64,
    pub low_capacity: bool,
    pub low_balance: bool,
}

/// The sync's figures, for logs now and the API's `/metrics` later: the last reading of each
/// wallet (with its alert flags) and counters since the process started.
#[derive(Debug, Default)]
pub struct WalletGauges {
    readings: Mutex<BTreeMap<String, WalletReading>>,
    /// Passes completed.
    pub passes: AtomicU64,
    /// Wallets whose reading failed (node or database unreachable, a refused observation).
    pub failures: AtomicU64,
    /// `ObserveResources` commands that recorded a change.
    pub observations: AtomicU64,
    /// Times a wallet went below the capacity threshold (each entry into the low state).
    pub low_capacity_alerts: AtomicU64,
    /// Times a wallet went below the balance threshold.
    pub low_balance_alerts: AtomicU64,
}

impl WalletGauges {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, WalletReading>> {
        self.readings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last reading of a wallet (base58 address).
    pub fn reading(&self, wallet: &str) -> Option<WalletReading> {
        self.lock().get(wallet).cloned()
    }

    /// Every wallet's last reading.
    pub fn readings(&self) -> BTreeMap<String, WalletReading> {
        self.lock().clone()
    }

    /// Wallets below the capacity threshold now.
    pub fn low_capacity_wallets(&self) -> usize {
        self.lock().values().filter(|r| r.low_capacity).count()
    }

    /// Wallets below the balance threshold now.
    pub fn low_balance_wallets(&self) -> usize {
        self.lock().values().filter(|r| r.low_balance).count()
    }

    /// Stores a reading; returns the previous one.
    fn record(&self, wallet: &str, reading: WalletReading) -> Option<WalletReading> {
        self.lock().insert(wallet.to_string(), reading)
    }

    /// The figures in the Prometheus text format.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let counters = [
            ("trx_wallet_sync_passes_total", &self.passes),
            ("trx_wallet_sync_failures_total", &self.failures),
            ("trx_wallet_sync_observations_total", &self.observations),
            (
                "trx_wallet_low_capacity_alerts_total",
                &self.low_capacity_alerts,
            ),
            (
                "trx_wallet_low_balance_alerts_total",
                &self.low_balance_alerts,
            ),
        ];
        for (name, value) in counters {
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        let readings = self.readings();
        type Field = fn(&WalletReading) -> u64;
        let gauges: [(&str, Field); 6] = [
            ("trx_wallet_staked_sun", |r| r.staked_sun),
            ("trx_wallet_delegatable_sun", |r| r.delegatable_sun),
            ("trx_wallet_energy_limit", |r| r.energy_limit),
            ("trx_wallet_balance_sun", |r| r.balance_sun),
            ("trx_wallet_low_capacity", |r| u64::from(r.low_capacity)),
            ("trx_wallet_low_balance", |r| u64::from(r.low_balance)),
        ];
        for (name, field) in gauges {
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (wallet, reading) in &readings {
                let _ = writeln!(out, "{name}{{wallet=\"{wallet}\"}} {}", field(reading));
            }
        }
        out
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub wallets: usize,
    /// Wallets whose change was recorded.
    pub observed: usize,
    pub failed: usize,
    pub low_capacity: usize,
    pub low_balance: usize,
}

pub struct WalletSync {
    buses: Arc<Buses>,
    node: NodeClient,
    config: WalletSyncConfig,
    gauges: Arc<WalletGauges>,
}

fn non_negative(endpoint: &str, what: &str, value: i64) -> Result<u64, NodeError> {
    u64::try_from(value).map_err(|_| NodeError::Malformed {
        endpoint: endpoint.to_string(),
        reason: format!("{what} is negative ({value})"),
    })
}

impl WalletSync {
    pub fn new(buses: Arc<Buses>, node: NodeClient, config: WalletSyncConfig) -> Self {
        Self {
            buses,
            node,
            config,
            gauges: Arc::new(WalletGauges::default()),
        }
    }

    /// The figures this sync keeps up to date (share them with `/metrics`).
    pub fn gauges(&self) -> Arc<WalletGauges> {
        self.gauges.clone()
    }

    pub fn config(&self) -> &WalletSyncConfig {
        &self.config
    }

    /// Runs passes until shutdown, as the one owner across processes.
    pub async fn run(&self, shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        let lock_key = format!("adapter:{NAME}");
        run_owned(
            self.buses.pool(),
            &lock_key,
            self.config.standby_retry,
            shutdown,
            || async {
                if let Err(e) = self.sync_once().await {
                    tracing::warn!(worker = NAME, error = %e, "wallet sync pass failed; retrying");
                }
                self.config.interval
            },
        )
        .await?;
        Ok(())
    }

    /// One pass over every pool wallet. A wallet that cannot be read is logged and counted, and
    /// the others are still synced; `Err` only when the wallets cannot be listed.
    pub async fn sync_once(&self) -> Result<SyncReport, Error> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT aggregate_id FROM events WHERE aggregate_type = 'wallet' AND sequence = 1 ORDER BY 1",
        )
        .fetch_all(self.buses.pool())
        .await?;
        let mut report = SyncReport::default();
        for id in ids {
            let span = tracing::info_span!("wallet_sync", wallet = %id);
            match self.sync_wallet(&id).instrument(span).await {
                Ok(None) => {}
                Ok(Some((reading, observed))) => {
                    report.wallets += 1;
                    report.observed += usize::from(observed);
                    report.low_capacity += usize::from(reading.low_capacity);
                    report.low_balance += usize::from(reading.low_balance);
                }
                Err(e) => {
                    report.failed += 1;
                    self.gauges.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(wallet = %id, error = %e, "pool wallet could not be synced");
                }
            }
        }
        self.gauges.passes.fetch_add(1, Ordering::Relaxed);
        Ok(report)
    }

    /// Reads one wallet from the chain, records a change, raises or clears its alerts.
    /// `None` for an aggregate that is not a registered wallet.
    async fn sync_wallet(&self, id: &str) -> Result<Option<(WalletReading, bool)>, Error> {
        let (wallet, version) = self.buses.wallet.load(id).await?;
        let Some(address) = wallet.address() else {
            return Ok(None);
        };
        let reading = self.read_chain(&address).await?;
        self.alert(id, &reading);

        let changed = (
            reading.staked_sun,
            reading.delegatable_sun,
            reading.energy_limit,
        ) != (
            wallet.staked_sun(),
            wallet.delegatable_sun(),
            wallet.energy_limit(),
        );
        if !changed {
            return Ok(Some((reading, false)));
        }
        let parts = [
            "observe",
            id,
            &version.to_string(),
            &reading.staked_sun.to_string(),
            &reading.delegatable_sun.to_string(),
            &reading.energy_limit.to_string(),
        ];
        let command_id = derived_command_id(NAME, &parts);
        let meta =
            CommandMetadata::caused_by(command_id, command_id, command_id, Actor::system(NAME));
        let command = WalletCommand::ObserveResources {
            staked_sun: reading.staked_sun,
            delegatable_sun: reading.delegatable_sun,
            energy_limit: reading.energy_limit,
            at: Utc::now(),
        };
        let outcome = self.buses.wallet.execute(id, command, meta).await?;
        match outcome.result {
            Ok(_) => {
                if !outcome.duplicate {
                    self.gauges.observations.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        staked_sun = reading.staked_sun,
                        delegatable_sun = reading.delegatable_sun,
                        energy_limit = reading.energy_limit,
                        "pool wallet resources observed"
                    );
                }
                Ok(Some((reading, true)))
            }
            Err(refusal @ WalletError::InconsistentResources { .. })
            | Err(refusal @ WalletError::Field(FieldError::QuantityTooLarge { .. })) => {
                self.gauges.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(refusal = %refusal, "the chain's figures for a pool wallet were refused");
                Ok(Some((reading, false)))
            }
            Err(refusal) => {
                tracing::info!(refusal = %refusal, "resources not recorded");
                Ok(Some((reading, false)))
            }
        }
    }

    async fn read_chain(&self, address: &TronAddress) -> Result<WalletReading, Error> {
        let Some(account) = self.node.account(address, Finality::Head).await? else {
            tracing::warn!(wallet = %address, "pool wallet is not activated on the chain");
            return Ok(self.flags(WalletReading::default()));
        };
        let resource = self
            .node
            .account_resource(address, Finality::Head)
            .await?
            .unwrap_or_default();
        let delegatable = self
            .node
            .can_delegated_max_size(address, Resource::Energy, Finality::Head)
            .await?;
        let staked = account
            .frozen_energy
            .saturating_add(account.delegated_energy);
        Ok(self.flags(WalletReading {
            activated: true,
            staked_sun: non_negative("/wallet/getaccount", "energy stake", staked)?,
            delegatable_sun: non_negative(
                "/wallet/getcandelegatedmaxsize",
                "max_size",
                delegatable,
            )?,
            energy_limit: non_negative(
                "/wallet/getaccountresource",
                "EnergyLimit",
                resource.energy_limit,
            )?,
            balance_sun: non_negative("/wallet/getaccount", "balance", account.balance)?,
            low_capacity: false,
            low_balance: false,
        }))
    }

    fn flags(&self, mut r: WalletReading) -> WalletReading {
        r.low_capacity = r.delegatable_sun < self.config.low_capacity_sun;
        r.low_balance = r.balance_sun < self.config.low_balance_sun;
        r
    }

    /// Records the reading; a wallet entering a low state is a warn line and an alert count,
    /// leaving it an info line.
    fn alert(&self, wallet: &str, reading: &WalletReading) {
        let before = self
            .gauges
            .record(wallet, reading.clone())
            .unwrap_or_default();
        if reading.low_capacity && !before.low_capacity {
            self.gauges
                .low_capacity_alerts
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                wallet,
                delegatable_sun = reading.delegatable_sun,
                threshold_sun = self.config.low_capacity_sun,
                "ALERT pool wallet low on delegatable capacity"
            );
        } else if !reading.low_capacity && before.low_capacity {
            tracing::info!(
                wallet,
                delegatable_sun = reading.delegatable_sun,
                "pool wallet capacity back above the threshold"
            );
        }
        if reading.low_balance && !before.low_balance {
            self.gauges
                .low_balance_alerts
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                wallet,
                balance_sun = reading.balance_sun,
                threshold_sun = self.config.low_balance_sun,
                "ALERT pool wallet low on TRX for bandwidth"
            );
        } else if !reading.low_balance && before.low_balance {
            tracing::info!(
                wallet,
                balance_sun = reading.balance_sun,
                "pool wallet TRX balance back above the threshold"
            );
        }
    }
}

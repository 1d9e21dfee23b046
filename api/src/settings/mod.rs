//! The typed settings of every `trx-energy` process, loaded once at start-up by `main`:
//! defaults, then an optional TOML file (`--config`), then the environment. Nothing else reads
//! the environment; the rest of the code receives these values.
//!
//! Each setting is declared once below, with its default, its environment variable, the flat
//! file key of older settings files (still accepted) and its doc; the README's settings table is
//! made from the same declarations (a test keeps the two equal).

pub(crate) mod declare;
mod load;
mod table;

use std::num::NonZeroU32;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::secret::Secret;
use declare::section;
pub use declare::{Declaration, Section};
pub use load::SettingsError;
pub use table::markdown_table;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

section! {
    /// Everything a process is configured with.
    pub struct Settings {
        section
        /// PostgreSQL.
        pub database: DatabaseSettings;
        section
        /// Redis.
        pub redis: RedisSettings;
        section
        /// Local state.
        pub data: DataSettings;
        section
        /// Log lines.
        pub log: LogSettings;
        section
        /// The key vault.
        pub vault: VaultSettings;
        section
        /// The TRON node.
        pub tron: TronSettings;
        section
        /// The built-in chain simulator.
        pub simulator: SimulatorSettings;
        section
        /// The price table.
        pub prices: PriceSettings;
        section
        /// The HTTP API.
        pub http: HttpSettings;
        section
        /// The audit chain.
        pub audit: AuditSettings;
    }
}

section! {
    /// PostgreSQL.
    pub struct DatabaseSettings {
        /// PostgreSQL to use. Unset: a private cluster in `<data dir>/postgres`, started from
        /// the installed PostgreSQL binaries and stopped on exit.
        pub url: Option<Secret> = None, env "DATABASE_URL", flat "database_url";
        /// The most connections the process's pool opens. Unset: sized from the workers the
        /// command runs (docs/connections.md).
        pub pool_size: Option<NonZeroU32> = None, env "TRX_DATABASE_POOL_SIZE", flat "database_pool_size";
    }
}

section! {
    /// Redis.
    pub struct RedisSettings {
        /// Redis, for the API's rate limits.
        pub url: String = "redis://127.0.0.1:6379".into(), env "REDIS_URL", flat "redis_url";
    }
}

section! {
    /// Local state.
    pub struct DataSettings {
        /// Where a process keeps local state: the private cluster, and with the simulator the
        /// development master key and token secret.
        pub dir: PathBuf = PathBuf::from("data"), env "TRX_DATA_DIR", flat "data_dir";
    }
}

section! {
    /// Log lines (on standard error).
    pub struct LogSettings {
        /// `text` or `json` log lines.
        pub format: LogFormat = LogFormat::Text, env "TRX_LOG_FORMAT", flat "log_format";
        /// A tracing filter, e.g. `info,engine=debug`.
        pub filter: String = "info".into(), env "RUST_LOG", flat "log_filter";
    }
}

section! {
    /// The key vault (docs/key-vault.md).
    pub struct VaultSettings {
        /// The vault's master key, 64 hex digits; seals every stored key. Unset with the
        /// simulator: a development key in the data directory; required with a real node.
        pub master_key: Option<Secret> = None, env "TRX_MASTER_KEY", flat "master_key";
        /// The master key before the last change, still accepted for reading until
        /// `trx-energy keys rotate` has re-sealed everything.
        pub previous_master_key: Option<Secret> = None, env "TRX_PREVIOUS_MASTER_KEY", flat "previous_master_key";
        /// Pool-wallet private keys (comma-separated hex) imported into the vault at start.
        pub pool_wallet_keys: Option<Secret> = None, env "TRX_POOL_WALLET_KEYS", flat "pool_wallet_keys";
    }
}

section! {
    /// The TRON node (docs/node-client.md).
    pub struct TronSettings {
        /// A TRON full node's HTTP API. Unset: `run` starts the built-in chain simulator.
        pub node_url: Option<String> = None, env "TRON_NODE_URL", flat "tron_node_url";
        /// Sent to the node as `TRON-PRO-API-KEY` (e.g. for TronGrid).
        pub api_key: Option<Secret> = None, env "TRON_PRO_API_KEY", flat "tron_api_key";
        /// The USDT (TRC20) contract whose transfers are deposits. Unset: the simulator's own
        /// contract, or Tether's on mainnet with a real node.
        pub usdt_contract: Option<String> = None, env "TRX_USDT_CONTRACT", flat "usdt_contract";
    }
}

section! {
    /// The built-in chain simulator of `run` without `TRON_NODE_URL` (docs/simulator.md).
    pub struct SimulatorSettings {
        /// The simulator's port (0: any free port).
        pub port: u16 = 8090, env "TRX_SIM_PORT", flat "sim_port";
        /// Milliseconds between simulated blocks (0: blocks only on `/sim/produce`).
        pub block_time_ms: u64 = 3_000, env "TRX_SIM_BLOCK_TIME_MS", flat "sim_block_time_ms";
        /// Blocks until a block is solid.
        pub confirmations: u64 = 19, env "TRX_SIM_CONFIRMATIONS", flat "sim_confirmations";
        /// Pool wallets created and staked on the simulator at first start.
        pub pool_wallets: u32 = 3, env "TRX_SIM_POOL_WALLETS", flat "sim_pool_wallets";
        /// TRX each simulated pool wallet stakes for energy.
        pub pool_stake_trx: u64 = 1_000_000, env "TRX_SIM_POOL_STAKE_TRX", flat "sim_pool_stake_trx";
    }
}

section! {
    /// The price table.
    pub struct PriceSettings {
        /// A TOML price table (`min_energy`, `max_energy`, `[prices.TRX]` `"1h" = 2160`, …:
        /// unit price per energy per day). Unset: the sample prices.
        pub file: Option<PathBuf> = None, env "TRX_PRICES_FILE", flat "prices_file";
    }
}

section! {
    /// The HTTP API (docs/api.md).
    pub struct HttpSettings {
        /// Where the HTTP API listens.
        pub addr: String = "127.0.0.1:8080".into(), env "TRX_HTTP_ADDR", flat "http_addr";
        /// The HS256 key of the API's bearer tokens, 32 characters or more. Unset with the
        /// simulator: a development secret in the data directory; required with a real node.
        pub jwt_secret: Option<Secret> = None, env "TRX_JWT_SECRET", flat "jwt_secret";
        /// `/health/ready` fails when a projection's oldest unapplied event is older than this
        /// many seconds.
        pub ready_max_lag_secs: u64 = 30, env "TRX_READY_MAX_LAG_SECS", flat "ready_max_lag_secs";
        section
        /// Rate limits per token subject.
        pub rate_limit: RateLimitSettings;
        section
        /// The networks each role's tokens are admitted from.
        pub allow_ips: AllowIpsSettings;
    }
}

section! {
    /// Rate limits per token subject, `BURST/PER_SECOND` (e.g. `100/50` or `5/0.2`).
    pub struct RateLimitSettings {
        /// The rate limit of GET routes, `BURST/PER_SECOND`.
        pub read: String = "100/50".into(), env "TRX_RATE_LIMIT_READ", flat "rate_limit_read";
        /// The rate limit of the other routes, `BURST/PER_SECOND`.
        pub write: String = "40/20".into(), env "TRX_RATE_LIMIT_WRITE", flat "rate_limit_write";
    }
}

section! {
    /// The networks each role's tokens are admitted from: comma-separated CIDRs or addresses.
    pub struct AllowIpsSettings {
        /// Networks `bot` tokens are admitted from. Unset: anywhere.
        pub bot: Option<String> = None, env "TRX_ALLOW_IPS_BOT", flat "allow_ips_bot";
        /// Networks `finance` tokens are admitted from. Unset: anywhere.
        pub finance: Option<String> = None, env "TRX_ALLOW_IPS_FINANCE", flat "allow_ips_finance";
        /// Networks `auditor` tokens are admitted from. Unset: anywhere.
        pub auditor: Option<String> = None, env "TRX_ALLOW_IPS_AUDITOR", flat "allow_ips_auditor";
        /// Networks `admin` tokens are admitted from. Unset: anywhere.
        pub admin: Option<String> = None, env "TRX_ALLOW_IPS_ADMIN", flat "allow_ips_admin";
    }
}

section! {
    /// The audit chain's signed heads (docs/audit.md).
    pub struct AuditSettings {
        /// The audit sequencer signs a head of the chain after this many new events, or after
        /// `TRX_AUDIT_HEAD_INTERVAL_SECS`, whichever comes first.
        pub head_every_events: NonZeroU32 = NonZeroU32::new(10_000).expect("not zero"), env "TRX_AUDIT_HEAD_EVERY_EVENTS", flat "audit_head_every_events";
        /// Seconds after the last signed head at which the sequencer signs the next one while
        /// the chain grows.
        pub head_interval_secs: NonZeroU32 = NonZeroU32::new(60).expect("not zero"), env "TRX_AUDIT_HEAD_INTERVAL_SECS", flat "audit_head_interval_secs";
    }
}

impl Settings {
    /// How often the audit sequencer signs a head of the chain.
    pub fn audit_head_policy(&self) -> projections::audit::HeadPolicy {
        projections::audit::HeadPolicy {
            every_events: i64::from(self.audit.head_every_events.get()),
            interval: std::time::Duration::from_secs(u64::from(
                self.audit.head_interval_secs.get(),
            )),
        }
    }

    /// Every setting, in declaration order.
    pub fn declarations() -> Vec<Declaration> {
        let mut out = Vec::new();
        <Settings as Section>::declare("", &mut out);
        out
    }

    /// The declaration of the setting at `key` (`simulator.port`).
    pub fn declaration(key: &str) -> Option<Declaration> {
        Self::declarations().into_iter().find(|d| d.key == key)
    }

    /// How an error message names the setting at `key`: its environment variable.
    pub fn name_of(key: &str) -> String {
        Self::declaration(key)
            .map(|d| d.env.to_string())
            .unwrap_or_else(|| key.to_string())
    }

    /// Whether the chain is simulated (no `TRON_NODE_URL`): development secrets and the
    /// built-in simulator are allowed only then.
    pub fn simulated(&self) -> bool {
        self.tron.node_url.is_none()
    }
}

#[cfg(test)]
mod tests;

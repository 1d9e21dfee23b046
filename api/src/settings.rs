//! The typed settings of every `trx-energy` process, loaded once at start-up: defaults, then an
//! optional TOML file, then the environment. Nothing else reads the environment.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A secret string: never printed, not even by `Debug`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything a process is configured with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// PostgreSQL to use. Unset: a private cluster in `<data_dir>/postgres`, started from the
    /// installed PostgreSQL binaries and stopped on exit.
    pub database_url: Option<Secret>,
    /// Redis (rate limits); used by the API.
    pub redis_url: String,
    /// Where a process keeps local state (the private cluster).
    pub data_dir: PathBuf,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info,engine=debug`.
    pub log_filter: String,
    /// Connections in each process's database pool.
    pub database_pool_size: u32,
    /// The key vault's master key, 64 hex digits (`TRX_MASTER_KEY`); seals every stored key.
    pub master_key: Option<Secret>,
    /// The master key before the last change (`TRX_PREVIOUS_MASTER_KEY`), still accepted for
    /// reading until `trx-energy keys rotate` has re-sealed everything (docs/key-vault.md).
    pub previous_master_key: Option<Secret>,
    /// A TRON full node (`TRON_NODE_URL`); unset: `run` starts the built-in chain simulator.
    pub tron_node_url: Option<String>,
    /// The node's `TRON-PRO-API-KEY` (`TRON_PRO_API_KEY`), e.g. for TronGrid.
    pub tron_api_key: Option<Secret>,
    /// The USDT (TRC20) contract whose transfers are deposits (`TRX_USDT_CONTRACT`); the
    /// simulator's own contract when unset.
    pub usdt_contract: Option<String>,
    /// Pool-wallet private keys to import into the vault at start (`TRX_POOL_WALLET_KEYS`,
    /// comma-separated hex). Never printed.
    pub pool_wallet_keys: Option<Secret>,
    /// The price table (`TRX_PRICES_FILE`, TOML: min_energy, max_energy, and a table of unit
    /// prices per asset and duration tier); the sample prices when unset.
    pub prices_file: Option<PathBuf>,
    /// The built-in simulator: port, milliseconds between blocks, confirmations until solid.
    pub sim_port: u16,
    pub sim_block_time_ms: u64,
    pub sim_confirmations: u64,
    /// Pool wallets created and staked on the simulator at first start, and TRX staked on each.
    pub sim_pool_wallets: u32,
    pub sim_pool_stake_trx: u64,
    /// Where the HTTP API listens (`TRX_HTTP_ADDR`).
    pub http_addr: String,
    /// The HS256 key of the API's bearer tokens (`TRX_JWT_SECRET`). Unset without
    /// `TRON_NODE_URL`: a development secret kept in the data directory.
    pub jwt_secret: Option<Secret>,
    /// `/health/ready` fails when a projection's oldest unapplied event is older than this many
    /// seconds (`TRX_READY_MAX_LAG_SECS`).
    pub ready_max_lag_secs: u64,
    /// Rate limits per subject, `BURST/PER_SECOND` (`TRX_RATE_LIMIT_READ` for GET routes,
    /// `TRX_RATE_LIMIT_WRITE` for the others), e.g. `100/50` or `5/0.2`.
    pub rate_limit_read: String,
    pub rate_limit_write: String,
    /// The networks each role is admitted from, comma-separated CIDRs (`TRX_ALLOW_IPS_BOT`,
    /// `…_FINANCE`, `…_AUDITOR`, `…_ADMIN`); unset: from anywhere.
    pub allow_ips_bot: Option<String>,
    pub allow_ips_finance: Option<String>,
    pub allow_ips_auditor: Option<String>,
    pub allow_ips_admin: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: None,
            redis_url: "redis://127.0.0.1:6379".into(),
            data_dir: PathBuf::from("data"),
            log_format: LogFormat::Text,
            log_filter: "info".into(),
            database_pool_size: 20,
            master_key: None,
            previous_master_key: None,
            tron_node_url: None,
            tron_api_key: None,
            usdt_contract: None,
            pool_wallet_keys: None,
            prices_file: None,
            sim_port: 8090,
            sim_block_time_ms: 3_000,
            sim_confirmations: 19,
            sim_pool_wallets: 3,
            sim_pool_stake_trx: 1_000_000,
            http_addr: "127.0.0.1:8080".into(),
            jwt_secret: None,
            ready_max_lag_secs: 30,
            rate_limit_read: "100/50".into(),
            rate_limit_write: "40/20".into(),
            allow_ips_bot: None,
            allow_ips_finance: None,
            allow_ips_auditor: None,
            allow_ips_admin: None,
        }
    }
}

/// Why settings could not be loaded; names the setting.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("settings file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: &'static str, message: String },
}

/// The environment variables read, and the setting each one sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("DATABASE_URL", "database_url"),
    ("REDIS_URL", "redis_url"),
    ("TRX_DATA_DIR", "data_dir"),
    ("TRX_LOG_FORMAT", "log_format"),
    ("RUST_LOG", "log_filter"),
    ("TRX_DATABASE_POOL_SIZE", "database_pool_size"),
    ("TRX_MASTER_KEY", "master_key"),
    ("TRX_PREVIOUS_MASTER_KEY", "previous_master_key"),
    ("TRON_NODE_URL", "tron_node_url"),
    ("TRON_PRO_API_KEY", "tron_api_key"),
    ("TRX_USDT_CONTRACT", "usdt_contract"),
    ("TRX_POOL_WALLET_KEYS", "pool_wallet_keys"),
    ("TRX_PRICES_FILE", "prices_file"),
    ("TRX_SIM_PORT", "sim_port"),
    ("TRX_SIM_BLOCK_TIME_MS", "sim_block_time_ms"),
    ("TRX_SIM_CONFIRMATIONS", "sim_confirmations"),
    ("TRX_SIM_POOL_WALLETS", "sim_pool_wallets"),
    ("TRX_SIM_POOL_STAKE_TRX", "sim_pool_stake_trx"),
    ("TRX_HTTP_ADDR", "http_addr"),
    ("TRX_JWT_SECRET", "jwt_secret"),
    ("TRX_READY_MAX_LAG_SECS", "ready_max_lag_secs"),
    ("TRX_RATE_LIMIT_READ", "rate_limit_read"),
    ("TRX_RATE_LIMIT_WRITE", "rate_limit_write"),
    ("TRX_ALLOW_IPS_BOT", "allow_ips_bot"),
    ("TRX_ALLOW_IPS_FINANCE", "allow_ips_finance"),
    ("TRX_ALLOW_IPS_AUDITOR", "allow_ips_auditor"),
    ("TRX_ALLOW_IPS_ADMIN", "allow_ips_admin"),
];

/// Parses a whole-number variable, naming it when it is not one.
fn number<T: std::str::FromStr>(name: &'static str, v: &str) -> Result<T, SettingsError> {
    v.parse().map_err(|_| SettingsError::Env {
        name,
        message: format!("{v:?} is not a whole number in range"),
    })
}

impl Settings {
    /// The rate limits of the two route classes.
    pub fn rate_limits(&self) -> Result<crate::http::ratelimit::Limits, SettingsError> {
        use crate::http::ratelimit::{Limit, Limits};
        let parse = |name: &'static str, v: &str| {
            Limit::parse(v).map_err(|message| SettingsError::Env { name, message })
        };
        Ok(Limits {
            read: parse("TRX_RATE_LIMIT_READ", &self.rate_limit_read)?,
            write: parse("TRX_RATE_LIMIT_WRITE", &self.rate_limit_write)?,
        })
    }

    /// The IP allowlist of each role that has one.
    pub fn allowlist(&self) -> Result<crate::http::allowlist::Allowlist, SettingsError> {
        use crate::http::allowlist::{parse_list, Allowlist};
        use crate::http::Role;
        let mut list = Allowlist::default();
        for (name, role, value) in [
            ("TRX_ALLOW_IPS_BOT", Role::Bot, &self.allow_ips_bot),
            (
                "TRX_ALLOW_IPS_FINANCE",
                Role::Finance,
                &self.allow_ips_finance,
            ),
            (
                "TRX_ALLOW_IPS_AUDITOR",
                Role::Auditor,
                &self.allow_ips_auditor,
            ),
            ("TRX_ALLOW_IPS_ADMIN", Role::Admin, &self.allow_ips_admin),
        ] {
            if let Some(v) = value {
                let networks =
                    parse_list(v).map_err(|message| SettingsError::Env { name, message })?;
                list = list.with(role, networks);
            }
        }
        Ok(list)
    }

    /// Defaults, overlaid by the file (if given) and then by the environment map.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Self, SettingsError> {
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str::<Settings>(&text).map_err(|e| SettingsError::File {
                    path: path.to_path_buf(),
                    message: e.message().to_string(),
                })?
            }
            None => Settings::default(),
        };
        let get = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        if let Some(v) = get("DATABASE_URL") {
            settings.database_url = Some(Secret::new(v));
        }
        if let Some(v) = get("REDIS_URL") {
            settings.redis_url = v;
        }
        if let Some(v) = get("TRX_DATA_DIR") {
            settings.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("TRX_LOG_FORMAT") {
            settings.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(SettingsError::Env {
                        name: "TRX_LOG_FORMAT",
                        message: format!("{v:?} is not one of text, json"),
                    })
                }
            };
        }
        if let Some(v) = get("RUST_LOG") {
            settings.log_filter = v;
        }
        if let Some(v) = get("TRX_DATABASE_POOL_SIZE") {
            settings.database_pool_size =
                v.parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| SettingsError::Env {
                        name: "TRX_DATABASE_POOL_SIZE",
                        message: format!("{v:?} is not a positive whole number"),
                    })?;
        }
        if let Some(v) = get("TRX_MASTER_KEY") {
            settings.master_key = Some(Secret::new(v));
        }
        if let Some(v) = get("TRX_PREVIOUS_MASTER_KEY") {
            settings.previous_master_key = Some(Secret::new(v));
        }
        if let Some(v) = get("TRON_NODE_URL") {
            settings.tron_node_url = Some(v);
        }
        if let Some(v) = get("TRON_PRO_API_KEY") {
            settings.tron_api_key = Some(Secret::new(v));
        }
        if let Some(v) = get("TRX_USDT_CONTRACT") {
            settings.usdt_contract = Some(v);
        }
        if let Some(v) = get("TRX_POOL_WALLET_KEYS") {
            settings.pool_wallet_keys = Some(Secret::new(v));
        }
        if let Some(v) = get("TRX_PRICES_FILE") {
            settings.prices_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("TRX_SIM_PORT") {
            settings.sim_port = number("TRX_SIM_PORT", &v)?;
        }
        if let Some(v) = get("TRX_SIM_BLOCK_TIME_MS") {
            settings.sim_block_time_ms = number("TRX_SIM_BLOCK_TIME_MS", &v)?;
        }
        if let Some(v) = get("TRX_SIM_CONFIRMATIONS") {
            settings.sim_confirmations = number("TRX_SIM_CONFIRMATIONS", &v)?;
        }
        if let Some(v) = get("TRX_SIM_POOL_WALLETS") {
            settings.sim_pool_wallets = number("TRX_SIM_POOL_WALLETS", &v)?;
        }
        if let Some(v) = get("TRX_SIM_POOL_STAKE_TRX") {
            settings.sim_pool_stake_trx = number("TRX_SIM_POOL_STAKE_TRX", &v)?;
        }
        if let Some(v) = get("TRX_RATE_LIMIT_READ") {
            settings.rate_limit_read = v;
        }
        if let Some(v) = get("TRX_RATE_LIMIT_WRITE") {
            settings.rate_limit_write = v;
        }
        for (name, slot) in [
            ("TRX_ALLOW_IPS_BOT", &mut settings.allow_ips_bot),
            ("TRX_ALLOW_IPS_FINANCE", &mut settings.allow_ips_finance),
            ("TRX_ALLOW_IPS_AUDITOR", &mut settings.allow_ips_auditor),
            ("TRX_ALLOW_IPS_ADMIN", &mut settings.allow_ips_admin),
        ] {
            if let Some(v) = get(name) {
                *slot = Some(v);
            }
        }
        if let Some(v) = get("TRX_READY_MAX_LAG_SECS") {
            settings.ready_max_lag_secs = number("TRX_READY_MAX_LAG_SECS", &v)?;
        }
        if let Some(v) = get("TRX_HTTP_ADDR") {
            settings.http_addr = v;
        }
        if let Some(v) = get("TRX_JWT_SECRET") {
            settings.jwt_secret = Some(Secret::new(v));
        }
        settings.rate_limits()?;
        settings.allowlist()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_environment_overrides_the_file_which_overrides_the_defaults() {
        let dir = std::env::temp_dir().join(format!("trx-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("settings.toml");
        std::fs::write(
            &file,
            "redis_url = \"redis://file\"\nlog_format = \"json\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(&file), &env(&[("REDIS_URL", "redis://env")])).unwrap();
        assert_eq!(s.redis_url, "redis://env");
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.data_dir, PathBuf::from("data"));
        assert_eq!(s.database_url, None);
    }

    #[test]
    fn a_bad_value_names_the_variable() {
        let err = Settings::load(None, &env(&[("TRX_DATABASE_POOL_SIZE", "0")])).unwrap_err();
        assert!(err.to_string().contains("TRX_DATABASE_POOL_SIZE"), "{err}");
        let err = Settings::load(None, &env(&[("TRX_LOG_FORMAT", "xml")])).unwrap_err();
        assert!(err.to_string().contains("TRX_LOG_FORMAT"), "{err}");
        for (name, bad) in [
            ("TRX_RATE_LIMIT_READ", "100"),
            ("TRX_RATE_LIMIT_WRITE", "0/5"),
            ("TRX_RATE_LIMIT_WRITE", "5/-1"),
            ("TRX_ALLOW_IPS_ADMIN", "10.0.0.0/40"),
            ("TRX_ALLOW_IPS_BOT", "localhost"),
        ] {
            let err = Settings::load(None, &env(&[(name, bad)])).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn rate_limits_and_allowlists_come_from_the_environment() {
        let s = Settings::load(
            None,
            &env(&[
                ("TRX_RATE_LIMIT_READ", "7/0.5"),
                ("TRX_ALLOW_IPS_ADMIN", "10.0.0.0/8,192.0.2.1"),
            ]),
        )
        .unwrap();
        let limits = s.rate_limits().unwrap();
        assert_eq!(limits.read.burst, 7);
        assert_eq!(limits.read.per_second, 0.5);
        assert_eq!(limits.write.burst, 40, "the default");
        let list = s.allowlist().unwrap();
        use crate::http::Role;
        assert!(list.admits(Role::Admin, Some("192.0.2.1".parse().unwrap())));
        assert!(!list.admits(Role::Admin, Some("192.0.2.2".parse().unwrap())));
        assert!(list.admits(Role::Finance, Some("192.0.2.2".parse().unwrap())));
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("trx-settings-u-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("settings.toml");
        std::fs::write(&file, "redis_uri = \"x\"\n").unwrap();
        let err = Settings::load(Some(&file), &HashMap::new()).unwrap_err();
        assert!(err.to_string().contains("redis_uri"), "{err}");
    }

    #[test]
    fn the_master_keys_come_from_the_environment_and_are_never_printed() {
        let current = "ab".repeat(32);
        let previous = "cd".repeat(32);
        let s = Settings::load(
            None,
            &env(&[
                ("TRX_MASTER_KEY", &current),
                ("TRX_PREVIOUS_MASTER_KEY", &previous),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.master_key.as_ref().map(Secret::expose),
            Some(current.as_str())
        );
        assert_eq!(
            s.previous_master_key.as_ref().map(Secret::expose),
            Some(previous.as_str())
        );
        let shown = format!("{s:?}");
        assert!(!shown.contains(&current) && !shown.contains(&previous));
    }

    #[test]
    fn the_database_url_is_never_printed() {
        let s =
            Settings::load(None, &env(&[("DATABASE_URL", "postgres://u:hunter2@db/x")])).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}

//! Development mode: what `trx-energy` does only when no TRON node is configured (no
//! `TRON_NODE_URL`), so that `run` works on a fresh machine with no keys and no chain. None of
//! it is used with a real node:
//!
//! - the built-in chain simulator, and the pool wallets it funds and stakes through `/sim/…`;
//! - a development master key and token secret, made at first start and kept in the data
//!   directory (`dev-master.key`, `dev-jwt.secret`, mode 0600);
//! - the USDT contract: the simulator's own, else Tether's on mainnet.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context};
use engine::domain::TronAddress;
use serde_json::json;
use tron_adapter::node::{Finality, NodeClient};
use tron_adapter::simulator::{SimConfig, SimHandle, Simulator};
use tron_adapter::vault::MasterKey;

use crate::secret::Secret;
use crate::settings::Settings;

/// Tether's USDT contract on TRON mainnet: the deposits' token with a real node unless
/// `TRX_USDT_CONTRACT` names another.
pub const MAINNET_USDT: &str = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t";

/// TRX a simulated pool wallet holds beyond its stake (for fees).
const STAKE_SPARE_TRX: u64 = 1_000;

/// Starts the built-in chain simulator with the `/sim/…` endpoints.
pub async fn start_simulator(settings: &Settings) -> anyhow::Result<SimHandle> {
    let sim = &settings.simulator;
    let config = SimConfig {
        port: sim.port,
        block_interval: (sim.block_time_ms > 0).then(|| Duration::from_millis(sim.block_time_ms)),
        confirmations: sim.confirmations,
        dev: true,
        ..SimConfig::default()
    };
    Simulator::start(config)
        .await
        .context("start the built-in TRON simulator")
}

/// The contract whose transfers are USDT deposits.
pub fn usdt_contract(
    settings: &Settings,
    simulator: Option<&SimHandle>,
) -> anyhow::Result<TronAddress> {
    Ok(match (&settings.tron.usdt_contract, simulator) {
        (Some(text), _) => TronAddress::parse(text).context("TRX_USDT_CONTRACT")?,
        (None, Some(sim)) => sim.usdt_contract(),
        (None, None) => TronAddress::parse(MAINNET_USDT)?,
    })
}

/// Whether `data_dir` holds a development master key.
pub fn has_master_key(data_dir: &Path) -> bool {
    data_dir.join("dev-master.key").exists()
}

/// The development master key of `data_dir`, made at first use.
pub fn master_key(data_dir: &Path) -> anyhow::Result<MasterKey> {
    let path = data_dir.join("dev-master.key");
    let key = if path.exists() {
        let text = std::fs::read_to_string(&path).context("read the development master key")?;
        MasterKey::from_hex(text.trim()).context("the development master key")?
    } else {
        let hex = MasterKey::generate_hex();
        write_private(&path, hex.as_bytes()).context("create the development master key")?;
        MasterKey::from_hex(hex.as_str())?
    };
    tracing::warn!(path = %path.display(),
        "TRX_MASTER_KEY is not set: using a development master key kept in the data directory (simulator only)");
    Ok(key)
}

/// The development token secret of `data_dir`, made at first use.
pub fn jwt_secret(data_dir: &Path) -> anyhow::Result<Secret> {
    let path = data_dir.join("dev-jwt.secret");
    if !path.exists() {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        write_private(&path, hex::encode(bytes).as_bytes())
            .context("create the development token secret")?;
    }
    let text = std::fs::read_to_string(&path).context("read the development token secret")?;
    tracing::warn!(path = %path.display(),
        "TRX_JWT_SECRET is not set: using a development token secret kept in the data directory (simulator only)");
    Ok(Secret::new(text.trim()))
}

/// Writes a new file only its owner may read (fails if it exists: never overwrite a key).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    Ok(())
}

/// Activates and stakes a pool wallet on the simulator unless the chain knows it already.
pub async fn fund_wallet(
    sim: &SimHandle,
    node: &NodeClient,
    wallet: &TronAddress,
    stake_trx: u64,
) -> anyhow::Result<()> {
    if node.account(wallet, Finality::Head).await?.is_some() {
        return Ok(());
    }
    let http = reqwest::Client::new();
    for (path, body) in [
        (
            "activate",
            json!({"address": wallet.to_base58(), "balance": (stake_trx + STAKE_SPARE_TRX) * 1_000_000}),
        ),
        (
            "stake",
            json!({"address": wallet.to_base58(), "amount": stake_trx * 1_000_000}),
        ),
    ] {
        let response = http
            .post(format!("{}/sim/{path}", sim.base_url()))
            .body(body.to_string())
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(anyhow!(
                "simulator /sim/{path} for {wallet}: HTTP {}",
                response.status()
            ));
        }
    }
    tracing::info!(%wallet, stake_trx, "pool wallet funded and staked on the simulator");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "trx-dev-{name}-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros()
        ))
    }

    #[test]
    fn the_development_secrets_are_made_once_and_kept() {
        let data = dir("secrets");
        let key = master_key(&data).unwrap();
        assert_eq!(
            master_key(&data).unwrap().fingerprint(),
            key.fingerprint(),
            "the second start reads the same key"
        );
        let secret = jwt_secret(&data).unwrap();
        assert_eq!(jwt_secret(&data).unwrap(), secret);
        assert!(secret.expose().len() >= 32);
        #[cfg(unix)]
        for file in ["dev-master.key", "dev-jwt.secret"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file} is readable by its owner only");
        }
        std::fs::remove_dir_all(&data).unwrap();
    }

    #[test]
    fn the_usdt_contract_is_the_configured_one_else_mainnets() {
        let mut settings = Settings::default();
        assert_eq!(
            usdt_contract(&settings, None).unwrap().to_base58(),
            MAINNET_USDT
        );
        settings.tron.usdt_contract = Some("not an address".into());
        let err = usdt_contract(&settings, None).unwrap_err();
        assert!(format!("{err:#}").contains("TRX_USDT_CONTRACT"), "{err:#}");
    }
}

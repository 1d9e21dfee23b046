//! `trx-energy run`: the whole engine in one process — the built-in chain simulator (unless
//! `TRON_NODE_URL` names a node), the pool wallets (imported into the vault, or created and
//! staked on the simulator), the process managers, the scheduler, the wallet allocator, the
//! chain workers, the deposit watcher and the wallet sync. The projector runtime is started beside it by `main`. Stops cleanly on
//! SIGTERM or Ctrl-C: every task finishes its batch and commits its checkpoint.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use chrono::Utc;
use engine::domain::wallet::WalletCommand;
use engine::domain::{KeyRef, OrderPolicy, PriceTable, TronAddress};
use engine::process::scheduler::run_scheduler;
use engine::process::{run_reactor, Buses, DepositFlow, OrderFlow, RunnerConfig};
use engine::store::{Actor, CommandMetadata};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tron_adapter::node::{ApiKey, Finality, NodeClient, NodeConfig};
use tron_adapter::simulator::{SimConfig, SimHandle, Simulator};
use tron_adapter::vault::{KeyVault, Keyring, MasterKey};
use tron_adapter::worker::{
    Allocator, ChainParams, ChainWake, ChainWorker, ChainWorkerConfig, DepositWatcher,
    DepositWatcherConfig, WalletGauges, WalletSync, WalletSyncConfig,
};
use tron_adapter::PrivateKey;

use crate::settings::Settings;

/// The running engine.
pub struct System {
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
    pub simulator: Option<SimHandle>,
    pub node_url: String,
    pub wallets: Vec<TronAddress>,
    pub buses: Arc<Buses>,
    /// Pool-wallet capacity and balance gauges, with their alerts.
    pub wallet_gauges: Arc<WalletGauges>,
    /// The key vault, the node and the prices, for the HTTP API.
    pub vault: Arc<KeyVault>,
    pub node: NodeClient,
    pub prices: PriceTable,
}

const STAKE_SPARE_TRX: u64 = 1_000;
/// Tether's USDT contract on TRON mainnet.
const MAINNET_USDT: &str = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t";

impl System {
    pub async fn start(settings: &Settings, pool: &PgPool) -> anyhow::Result<System> {
        let (simulator, node) = connect_node(settings).await?;
        let node_url = simulator
            .as_ref()
            .map(|s| s.base_url().to_string())
            .or_else(|| settings.tron_node_url.clone())
            .unwrap_or_default();
        let keyring = keyring(settings, simulator.is_some())?;
        let vault = Arc::new(KeyVault::new(pool.clone(), keyring));
        import_keys(settings, &vault).await?;
        let mut wallets = vault_wallets(&vault).await?;
        if let Some(sim) = &simulator {
            // Deposit addresses need a seed; on the simulator one is made at first start (for a
            // real node, `trx-energy keys init-deposit-seed`).
            vault
                .init_deposit_seed(&tron_adapter::bip32::DepositSeed::generate())
                .await?;
            while wallets.len() < settings.sim_pool_wallets as usize {
                let (address, _) = vault.store_wallet_key(&PrivateKey::generate()).await?;
                wallets.push(address);
            }
            // The simulated chain lives in memory: fund and stake the wallets on every start.
            for w in &wallets {
                fund_on_simulator(sim, &node, w, settings.sim_pool_stake_trx).await?;
            }
        }
        if wallets.is_empty() {
            return Err(anyhow!(
                "no pool wallets: set TRX_POOL_WALLET_KEYS or import keys with `trx-energy keys import-wallet`"
            ));
        }
        let price_table = prices(settings)?;
        let policy = OrderPolicy {
            prices: price_table.clone(),
            pool_wallets: wallets.iter().copied().collect(),
            ..OrderPolicy::default()
        };
        let buses = Buses::new(pool.clone(), policy);
        register_wallets(&buses, &wallets).await?;

        let (tx, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let config = RunnerConfig::default();
        let flow = Arc::new(OrderFlow::new(buses.clone()));
        let p = pool.clone();
        let (c, r) = (config.clone(), rx.clone());
        tasks.spawn(async move {
            (
                "order-flow",
                run_reactor(p, flow, c, r).await.map_err(Into::into),
            )
        });
        let deposits = Arc::new(DepositFlow::new(buses.clone()));
        let p = pool.clone();
        let (c, r) = (config.clone(), rx.clone());
        tasks.spawn(async move {
            (
                "deposit-flow",
                run_reactor(p, deposits, c, r).await.map_err(Into::into),
            )
        });
        let params = Arc::new(ChainParams::new(
            node.clone(),
            wallets[0],
            Duration::from_secs(30),
        ));
        let wake = ChainWake::new();
        let allocator =
            Arc::new(Allocator::new(buses.clone(), node.clone(), params).with_wake(wake.clone()));
        let p = pool.clone();
        let (c, r) = (config.clone(), rx.clone());
        tasks.spawn(async move {
            (
                "wallet-allocator",
                run_reactor(p, allocator, c, r).await.map_err(Into::into),
            )
        });
        let b = buses.clone();
        let r = rx.clone();
        tasks.spawn(async move {
            (
                "scheduler",
                run_scheduler(b, Duration::from_millis(250), r)
                    .await
                    .map_err(Into::into),
            )
        });
        let worker = ChainWorker::with_wake(
            buses.clone(),
            node.clone(),
            vault.clone(),
            chain_worker_config(settings, simulator.is_some()),
            wake,
        );
        let r = rx.clone();
        tasks.spawn(async move { ("chain-worker", worker.run(r).await.map_err(Into::into)) });
        let usdt = match (&settings.usdt_contract, &simulator) {
            (Some(text), _) => TronAddress::parse(text).context("TRX_USDT_CONTRACT")?,
            (None, Some(sim)) => sim.usdt_contract(),
            (None, None) => TronAddress::parse(MAINNET_USDT)?,
        };
        let watcher =
            DepositWatcher::new(buses.clone(), node.clone(), DepositWatcherConfig::new(usdt));
        let r = rx.clone();
        tasks.spawn(async move { ("deposit-watcher", watcher.run(r).await.map_err(Into::into)) });
        let sync = WalletSync::new(buses.clone(), node.clone(), WalletSyncConfig::default());
        let wallet_gauges = sync.gauges();
        let r = rx.clone();
        tasks.spawn(async move { ("wallet-sync", sync.run(r).await.map_err(Into::into)) });

        Ok(System {
            shutdown: tx,
            tasks,
            simulator,
            node_url,
            wallets,
            buses,
            wallet_gauges,
            vault,
            node,
            prices: price_table,
        })
    }

    /// Signals every task to stop after its batch and waits for them.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let mut failed = Vec::new();
        while let Some(done) = self.tasks.join_next().await {
            match done {
                Ok((_, Ok(()))) => {}
                Ok((name, Err(e))) => failed.push(format!("{name}: {e:#}")),
                Err(e) => failed.push(format!("a task panicked: {e}")),
            }
        }
        if let Some(sim) = self.simulator {
            sim.shutdown().await;
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(anyhow!("stopped with errors: {}", failed.join("; ")))
        }
    }
}

async fn connect_node(settings: &Settings) -> anyhow::Result<(Option<SimHandle>, NodeClient)> {
    let (simulator, url) = match &settings.tron_node_url {
        Some(url) => (None, url.clone()),
        None => {
            let config = SimConfig {
                port: settings.sim_port,
                block_interval: (settings.sim_block_time_ms > 0)
                    .then(|| Duration::from_millis(settings.sim_block_time_ms)),
                confirmations: settings.sim_confirmations,
                dev: true,
                ..SimConfig::default()
            };
            let sim = Simulator::start(config)
                .await
                .context("start the built-in TRON simulator")?;
            let url = sim.base_url().to_string();
            (Some(sim), url)
        }
    };
    let mut config = NodeConfig::new(url);
    config.api_key = settings
        .tron_api_key
        .as_ref()
        .map(|k| ApiKey::new(k.expose()));
    Ok((simulator, NodeClient::new(config)?))
}

/// The vault's keyring. With the simulator and no `TRX_MASTER_KEY`, a development key kept in
/// the data directory (never for a real node).
pub(crate) fn keyring(settings: &Settings, simulated: bool) -> anyhow::Result<Keyring> {
    if settings.master_key.is_some() || !simulated {
        return crate::cli::keys::keyring(settings).map_err(|e| {
            anyhow!("{e} (a master key is required with TRON_NODE_URL; `trx-energy keys generate-master-key` makes one)")
        });
    }
    let path = settings.data_dir.join("dev-master.key");
    let key = if path.exists() {
        let text = std::fs::read_to_string(&path).context("read the development master key")?;
        MasterKey::from_hex(text.trim()).context("the development master key")?
    } else {
        std::fs::create_dir_all(&settings.data_dir)?;
        let hex = MasterKey::generate_hex();
        write_private(&path, hex.as_bytes())?;
        MasterKey::from_hex(hex.as_str())?
    };
    tracing::warn!(path = %path.display(),
        "TRX_MASTER_KEY is not set: using a development master key kept in the data directory (simulator only)");
    Ok(Keyring::new(key))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .context("create the development master key")?;
    file.write_all(bytes)?;
    Ok(())
}

async fn import_keys(settings: &Settings, vault: &KeyVault) -> anyhow::Result<()> {
    let Some(keys) = &settings.pool_wallet_keys else {
        return Ok(());
    };
    for (i, text) in keys
        .expose()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .enumerate()
    {
        let key = PrivateKey::from_hex(text)
            .map_err(|e| anyhow!("TRX_POOL_WALLET_KEYS entry {}: {e}", i + 1))?;
        let (address, new) = vault.store_wallet_key(&key).await?;
        if new {
            tracing::info!(%address, "pool wallet key imported into the vault");
        }
    }
    Ok(())
}

pub(crate) async fn vault_wallets(vault: &KeyVault) -> anyhow::Result<Vec<TronAddress>> {
    let mut out = Vec::new();
    for stored in vault.list().await? {
        if stored.purpose == "wallet" {
            if let Some(address) = stored.address {
                out.push(TronAddress::parse(&address)?);
            }
        }
    }
    Ok(out)
}

/// Activates and stakes a pool wallet on the simulator unless the chain knows it already.
async fn fund_on_simulator(
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

async fn register_wallets(buses: &Buses, wallets: &[TronAddress]) -> anyhow::Result<()> {
    for address in wallets {
        let id = address.to_base58();
        let (wallet, _) = buses.wallet.load(&id).await?;
        if wallet.address().is_some() {
            continue;
        }
        let register = WalletCommand::RegisterWallet {
            address: *address,
            key_ref: KeyRef::new(format!("vault:wallet:{}", address.to_hex())),
            at: Utc::now(),
        };
        let meta = CommandMetadata::new(Actor::system("run"));
        let outcome = buses.wallet.execute(&id, register, meta).await?;
        outcome
            .result
            .map_err(|e| anyhow!("register pool wallet {id}: {e}"))?;
    }
    Ok(())
}

/// The chain workers look at a waiting transaction about once a block.
fn chain_worker_config(settings: &Settings, simulated: bool) -> ChainWorkerConfig {
    let mut config = ChainWorkerConfig::default();
    if simulated {
        config.confirm_poll = Duration::from_millis(settings.sim_block_time_ms.clamp(10, 1_000));
    }
    config
}

pub(crate) fn prices(settings: &Settings) -> anyhow::Result<PriceTable> {
    match &settings.prices_file {
        None => Ok(PriceTable::sample()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read TRX_PRICES_FILE {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("TRX_PRICES_FILE {}", path.display()))
        }
    }
}

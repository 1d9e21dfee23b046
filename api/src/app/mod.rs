//! The composition root: [`App::build`] opens, once, what a command's [`Plan`] needs (the
//! database, and for the engine or the API the vault, the TRON node or the built-in
//! simulator, the price list and the buses); [`App::spawn`] starts the plan's workers (the
//! engine's, the projector runtime, the HTTP API) until the [`Shutdown`] signal; [`App::close`]
//! closes the database (and stops the private cluster or the simulator this process started).
//!
//! `main` parses the command line and calls a `cli` module; the module parses its arguments
//! and uses the app. Development-only parts (the simulator's bootstrap, development secrets)
//! are in [`dev`].

pub mod database;
pub mod dev;
mod plan;
pub mod secrets;
mod server;
mod shutdown;
pub mod workers;

use std::sync::Arc;

use anyhow::{anyhow, Context};
use chrono::Utc;
use engine::domain::wallet::WalletCommand;
use engine::domain::{KeyRef, OrderPolicy, PriceTable, TronAddress};
use engine::process::Buses;
use engine::store::{Actor, CommandMetadata};
use projections::audit::AuditSigner;
use projections::RuntimeHandle;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tron_adapter::node::{ApiKey, NodeClient, NodeConfig};
use tron_adapter::simulator::SimHandle;
use tron_adapter::vault::KeyVault;
use tron_adapter::PrivateKey;

pub use database::Database;
pub use plan::{
    Plan, Projector, POOL_API, POOL_API_BESIDE_WORKERS, POOL_BASE, POOL_ENGINE, POOL_PROJECTOR,
};
pub use server::{api_state, ApiServer};
pub use shutdown::{os_signal, Shutdown};
pub use workers::HeadSigning;

use crate::settings::Settings;

/// What the engine and the API share: opened once by [`App::build`].
pub struct Services {
    pub vault: Arc<KeyVault>,
    pub prices: PriceTable,
    pub buses: Arc<Buses>,
    /// The pool wallets in the vault.
    pub wallets: Vec<TronAddress>,
    /// The TRON node (the simulator's when it runs); `None` for an API without
    /// `TRON_NODE_URL` (quotes then say `receiver_activated: null`).
    pub node: Option<NodeClient>,
    /// The built-in simulator, when the engine runs without `TRON_NODE_URL`.
    pub simulator: Option<SimHandle>,
    /// The audit key, which signs heads of the audit chain (the sequencer's, and
    /// `GET /v1/audit/head`'s).
    pub audit_signer: Arc<AuditSigner>,
}

/// A process's parts, built for its plan.
pub struct App {
    settings: Settings,
    plan: Plan,
    database: Database,
    services: Option<Services>,
    /// The audit key and how often the sequencer signs with it, when this process has the key.
    head_signing: HeadSigning,
}

impl App {
    /// Opens what `plan` needs, each once.
    pub async fn build(settings: &Settings, plan: Plan) -> anyhow::Result<App> {
        if plan.api {
            // The API's own settings are checked before anything is opened or started.
            server::check_settings(settings)?;
        }
        let pool_size = plan.pool_size(settings);
        let database = Database::open(settings, pool_size)
            .await
            .context("open the database")?;
        tracing::debug!(pool_size, "database pool");
        let services = if plan.needs_services() {
            Some(services(settings, &plan, &database.pool).await?)
        } else {
            None
        };
        let head_signing = match (&services, &plan.projector) {
            (_, None) => None,
            (Some(services), Some(_)) => {
                Some((services.audit_signer.clone(), settings.audit_head_policy()))
            }
            (None, Some(_)) => projector_signer(settings, &database.pool)
                .await?
                .map(|signer| (signer, settings.audit_head_policy())),
        };
        Ok(App {
            settings: settings.clone(),
            plan,
            database,
            services,
            head_signing,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.database.pool
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The engine's and the API's parts (`None` for a plan with neither).
    pub fn services(&self) -> Option<&Services> {
        self.services.as_ref()
    }

    /// Starts the plan's workers: the projector runtime, the engine's workers (after
    /// registering the pool wallets), then the API.
    pub async fn spawn(&self, shutdown: &Shutdown) -> anyhow::Result<Running> {
        let pool = self.pool();
        let projector = match &self.plan.projector {
            Some(args) => Some(workers::start_projector_signing(
                pool,
                args,
                self.head_signing.clone(),
            )?),
            None => None,
        };
        let mut tasks = JoinSet::new();
        let mut gauges = None;
        if self.plan.engine {
            let services = self.services.as_ref().expect("the engine's services");
            register_wallets(&services.buses, &services.wallets).await?;
            let (list, wallet_gauges) = workers::engine_workers(&self.settings, pool, services)?;
            for worker in list {
                let name = worker.name;
                let run = worker.run(shutdown.receiver());
                tasks.spawn(async move { (name, run.await) });
            }
            gauges = Some(wallet_gauges);
        }
        let server = if self.plan.api {
            let services = self.services.as_ref().expect("the API's services");
            let state = api_state(&self.settings, pool, services, gauges)?;
            Some(ApiServer::start(&self.settings, state).await?)
        } else {
            None
        };
        Ok(Running {
            shutdown: shutdown.clone(),
            tasks,
            projector,
            server,
        })
    }

    /// Closes the database, and stops the simulator and the private cluster if this process
    /// started them.
    pub async fn close(self) -> anyhow::Result<()> {
        if let Some(sim) = self.services.and_then(|s| s.simulator) {
            sim.shutdown().await;
        }
        self.database.close().await?;
        Ok(())
    }
}

/// The workers of a process, running.
pub struct Running {
    shutdown: Shutdown,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
    projector: Option<RuntimeHandle>,
    server: Option<ApiServer>,
}

impl Running {
    /// The API's URL, when it serves.
    pub fn api_url(&self) -> Option<&str> {
        self.server.as_ref().map(|s| s.url.as_str())
    }

    /// Completes when a projector worker stops on an error, naming it (never without a
    /// projector).
    pub async fn projector_failure(&mut self) -> (&'static str, projections::Error) {
        match &mut self.projector {
            Some(handle) => handle.wait_any_failure().await,
            None => std::future::pending().await,
        }
    }

    /// Signals every worker to stop after its batch and waits for them: the API first (no
    /// new commands), then the engine's workers, then the projector.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.signal();
        let mut failed = Vec::new();
        if let Some(server) = self.server {
            if let Err(e) = server.shutdown().await {
                failed.push(format!("the HTTP API: {e:#}"));
            }
        }
        while let Some(done) = self.tasks.join_next().await {
            match done {
                Ok((_, Ok(()))) => {}
                Ok((name, Err(e))) => failed.push(format!("{name}: {e:#}")),
                Err(e) => failed.push(format!("a task panicked: {e}")),
            }
        }
        if let Some(projector) = self.projector {
            if let Err(e) = projector.shutdown().await {
                failed.push(format!("a projection had stopped on an error: {e}"));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(anyhow!("stopped with errors: {}", failed.join("; ")))
        }
    }
}

/// The vault, the node (or the simulator), the pool wallets, the prices and the buses.
async fn services(settings: &Settings, plan: &Plan, pool: &PgPool) -> anyhow::Result<Services> {
    let simulator = if plan.engine && settings.simulated() {
        Some(dev::start_simulator(settings).await?)
    } else {
        None
    };
    let node_url = match &simulator {
        Some(sim) => Some(sim.base_url().to_string()),
        None => settings.tron.node_url.clone(),
    };
    let node = match node_url {
        None => None,
        Some(url) => {
            let mut config = NodeConfig::new(url);
            config.api_key = settings
                .tron
                .api_key
                .as_ref()
                .map(|k| ApiKey::new(k.expose()));
            Some(NodeClient::new(config)?)
        }
    };
    let vault = Arc::new(KeyVault::new(pool.clone(), secrets::keyring(settings)?));
    if plan.engine {
        import_wallet_keys(settings, &vault).await?;
    }
    let mut wallets = vault_wallets(&vault).await?;
    if let (Some(sim), Some(node)) = (&simulator, &node) {
        // Deposit addresses need a seed; on the simulator one is made at first start (for a
        // real node, `trx-energy keys init-deposit-seed`).
        vault
            .init_deposit_seed(&tron_adapter::bip32::DepositSeed::generate())
            .await?;
        while wallets.len() < settings.simulator.pool_wallets as usize {
            let (address, _) = vault.store_wallet_key(&PrivateKey::generate()).await?;
            wallets.push(address);
        }
        // The simulated chain lives in memory: fund and stake the wallets on every start.
        for w in &wallets {
            dev::fund_wallet(sim, node, w, settings.simulator.pool_stake_trx).await?;
        }
    }
    if plan.engine && wallets.is_empty() {
        return Err(anyhow!(
            "no pool wallets: set TRX_POOL_WALLET_KEYS or import keys with `trx-energy keys import-wallet`"
        ));
    }
    let prices = prices(settings)?;
    let policy = OrderPolicy {
        prices: prices.clone(),
        pool_wallets: wallets.iter().copied().collect(),
        ..OrderPolicy::default()
    };
    let buses = Buses::new(pool.clone(), policy);
    let audit_signer = secrets::audit_signer(&vault).await?;
    Ok(Services {
        vault,
        prices,
        buses,
        wallets,
        node,
        simulator,
        audit_signer,
    })
}

/// The audit key of a projector-only process (`project`): opened when `TRX_MASTER_KEY` is set;
/// without it the sequencer numbers events but signs no heads, and says so.
async fn projector_signer(
    settings: &Settings,
    pool: &PgPool,
) -> anyhow::Result<Option<Arc<AuditSigner>>> {
    if settings.vault.master_key.is_none() {
        tracing::warn!("TRX_MASTER_KEY is not set: if this process runs the audit sequencer, it will not sign heads of the chain (docs/audit.md)");
        return Ok(None);
    }
    let keyring = secrets::configured_keyring(settings).map_err(|e| anyhow!(e))?;
    let vault = KeyVault::new(pool.clone(), keyring);
    Ok(Some(secrets::audit_signer(&vault).await?))
}

/// The price table: `TRX_PRICES_FILE`, or the sample prices.
pub fn prices(settings: &Settings) -> anyhow::Result<PriceTable> {
    match &settings.prices.file {
        None => Ok(PriceTable::sample()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read TRX_PRICES_FILE {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("TRX_PRICES_FILE {}", path.display()))
        }
    }
}

/// Imports `TRX_POOL_WALLET_KEYS` into the vault (a key stored already is left as it is).
async fn import_wallet_keys(settings: &Settings, vault: &KeyVault) -> anyhow::Result<()> {
    let Some(keys) = &settings.vault.pool_wallet_keys else {
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

/// The pool wallets whose keys the vault holds.
async fn vault_wallets(vault: &KeyVault) -> anyhow::Result<Vec<TronAddress>> {
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

/// Registers each pool wallet's aggregate (once: a registered wallet is left as it is).
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

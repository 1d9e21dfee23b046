//! `trx-energy serve` (the HTTP API alone) and the API inside `trx-energy run`: the token secret,
//! the application state, and a server task that stops with the process.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use engine::domain::{OrderPolicy, PriceTable};
use engine::process::Buses;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tron_adapter::node::{ApiKey, NodeClient, NodeConfig};
use tron_adapter::vault::KeyVault;

use crate::http::{AppState, Application, TokenKeys};
use crate::settings::{Secret, Settings};

/// The tokens' HS256 secret: `TRX_JWT_SECRET`, or without `TRON_NODE_URL` (the simulator) a
/// development secret kept in `<data_dir>/dev-jwt.secret`, made at first use.
pub fn jwt_secret(settings: &Settings) -> anyhow::Result<Secret> {
    if let Some(secret) = &settings.jwt_secret {
        if secret.expose().len() < 32 {
            anyhow::bail!("TRX_JWT_SECRET must be at least 32 characters long");
        }
        return Ok(secret.clone());
    }
    if settings.tron_node_url.is_some() {
        anyhow::bail!("TRX_JWT_SECRET is not set (required with TRON_NODE_URL; 32+ characters)");
    }
    let path = settings.data_dir.join("dev-jwt.secret");
    if !path.exists() {
        std::fs::create_dir_all(&settings.data_dir)?;
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        write_private(&path, hex::encode(bytes).as_bytes())?;
    }
    let text = std::fs::read_to_string(&path).context("read the development token secret")?;
    tracing::warn!(path = %path.display(),
        "TRX_JWT_SECRET is not set: using a development token secret kept in the data directory (simulator only)");
    Ok(Secret::new(text.trim()))
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
        .context("create the development token secret")?;
    file.write_all(bytes)?;
    Ok(())
}

/// The API serving in the background.
pub struct ApiServer {
    pub url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl ApiServer {
    /// Binds `settings.http_addr` and serves.
    pub async fn start(settings: &Settings, state: AppState) -> anyhow::Result<ApiServer> {
        let app = Application::build(&settings.http_addr, state)
            .await
            .with_context(|| format!("bind the HTTP API to {}", settings.http_addr))?;
        let url = format!("http://{}", app.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        tracing::info!(%url, "HTTP API listening");
        Ok(ApiServer { url, stop, task })
    }

    /// Stops accepting, finishes the requests in flight.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?.context("HTTP API")?;
        Ok(())
    }
}

/// The application state from the pieces a process has.
pub fn state(
    settings: &Settings,
    pool: &PgPool,
    buses: Arc<Buses>,
    vault: Arc<KeyVault>,
    node: Option<NodeClient>,
    prices: PriceTable,
) -> anyhow::Result<AppState> {
    let limiter = crate::http::ratelimit::RateLimiter::new(
        &settings.redis_url,
        settings.rate_limits()?,
        "trx:",
    )
    .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
    Ok(AppState::new(
        pool.clone(),
        buses,
        vault,
        node,
        prices,
        TokenKeys::new(&jwt_secret(settings)?),
    )
    .with_rate_limiter(limiter)
    .with_ready_max_lag(std::time::Duration::from_secs(settings.ready_max_lag_secs))
    .with_allowlist(settings.allowlist()?))
}

/// `trx-energy serve`: the API alone, beside engines run elsewhere (`run`, or its parts). Without
/// `TRON_NODE_URL` quotes say `receiver_activated: null`.
pub async fn serve(
    settings: &Settings,
    pool: &PgPool,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let simulated = settings.tron_node_url.is_none();
    let vault = Arc::new(KeyVault::new(
        pool.clone(),
        crate::cli::run::keyring(settings, simulated)?,
    ));
    let prices = crate::cli::run::prices(settings)?;
    let policy = OrderPolicy {
        prices: prices.clone(),
        pool_wallets: crate::cli::run::vault_wallets(&vault)
            .await?
            .into_iter()
            .collect(),
        ..OrderPolicy::default()
    };
    let node = match &settings.tron_node_url {
        None => None,
        Some(url) => {
            let mut config = NodeConfig::new(url.clone());
            config.api_key = settings
                .tron_api_key
                .as_ref()
                .map(|k| ApiKey::new(k.expose()));
            Some(NodeClient::new(config)?)
        }
    };
    let buses = Buses::new(pool.clone(), policy);
    let state = state(settings, pool, buses, vault, node, prices)?;
    let server = ApiServer::start(settings, state).await?;
    println!("HTTP API at {}/v1", server.url);
    println!("a token: trx-energy token issue --role bot --subject my-bot --ttl 30d");
    shutdown.await;
    server.shutdown().await
}

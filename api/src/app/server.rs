//! The HTTP API inside a process: its state from the app's parts and the settings, and a server
//! task that stops with the process.

use std::sync::Arc;

use anyhow::Context;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tron_adapter::worker::WalletGauges;

use super::Services;
use crate::http::allowlist::Allowlist;
use crate::http::ratelimit::{Limits, RateLimiter};
use crate::http::{AppState, Application};
use crate::settings::Settings;

/// Prefix of the rate limiter's Redis keys.
const REDIS_PREFIX: &str = "trx:";

/// Checks the settings only the API reads (rate limits, allowlists, the token secret); an
/// error names the variable.
pub fn check_settings(settings: &Settings) -> anyhow::Result<()> {
    Limits::from_settings(&settings.http.rate_limit)?;
    Allowlist::from_settings(&settings.http.allow_ips)?;
    if let Some(secret) = &settings.http.jwt_secret {
        if secret.expose().len() < super::secrets::MIN_JWT_SECRET {
            anyhow::bail!(
                "TRX_JWT_SECRET must be at least {} characters long",
                super::secrets::MIN_JWT_SECRET
            );
        }
    }
    Ok(())
}

/// The API's state: the app's parts, the token keys, rate limits, allowlists and readiness.
pub fn api_state(
    settings: &Settings,
    pool: &PgPool,
    services: &Services,
    wallet_gauges: Option<Arc<WalletGauges>>,
) -> anyhow::Result<AppState> {
    let limits = Limits::from_settings(&settings.http.rate_limit)?;
    let allowlist = Allowlist::from_settings(&settings.http.allow_ips)?;
    let limiter = RateLimiter::new(&settings.redis.url, limits, REDIS_PREFIX)
        .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
    let mut state = AppState::new(
        pool.clone(),
        services.buses.clone(),
        services.vault.clone(),
        services.node.clone(),
        services.prices.clone(),
        super::secrets::token_keys(settings)?,
    )
    .with_rate_limiter(limiter)
    .with_ready_max_lag(std::time::Duration::from_secs(
        settings.http.ready_max_lag_secs,
    ))
    .with_allowlist(allowlist)
    .with_audit_signer(services.audit_signer.clone());
    if let Some(gauges) = wallet_gauges {
        state = state.with_wallet_gauges(gauges);
    }
    Ok(state)
}

/// The API serving in the background.
pub struct ApiServer {
    pub url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl ApiServer {
    /// Binds `TRX_HTTP_ADDR` and serves.
    pub async fn start(settings: &Settings, state: AppState) -> anyhow::Result<ApiServer> {
        let addr = &settings.http.addr;
        let app = Application::build(addr, state)
            .await
            .with_context(|| format!("bind the HTTP API to {addr}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apis_settings_are_checked_naming_the_variable() {
        assert!(check_settings(&Settings::default()).is_ok());
        let mut bad = Settings::default();
        bad.http.rate_limit.read = "100".into();
        let err = check_settings(&bad).unwrap_err().to_string();
        assert!(err.contains("TRX_RATE_LIMIT_READ"), "{err}");
        let mut bad = Settings::default();
        bad.http.allow_ips.admin = Some("10.0.0.0/40".into());
        let err = check_settings(&bad).unwrap_err().to_string();
        assert!(err.contains("TRX_ALLOW_IPS_ADMIN"), "{err}");
    }
}

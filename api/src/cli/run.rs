//! `trx-energy run`: the whole engine in one process (the app's [`Plan::run`]): the built-in
//! chain simulator (unless `TRON_NODE_URL` names a node), the pool wallets, every worker of the
//! order lifecycle, the projector runtime and the HTTP API. Prints the store's state and where
//! everything is, then runs until SIGTERM or Ctrl-C: every task finishes its batch and commits
//! its checkpoint.

use std::future::Future;

use crate::app::{App, Plan, Shutdown};
use crate::settings::Settings;

/// Runs the engine until `stop` completes; the exit code.
pub async fn run(settings: &Settings, stop: impl Future<Output = ()>) -> anyhow::Result<u8> {
    let app = App::build(settings, Plan::run()).await?;
    print!("{}", crate::status::report(app.pool()).await?);
    let shutdown = Shutdown::new();
    let running = app.spawn(&shutdown).await?;
    let services = app.services().expect("run builds the engine's services");
    match (&services.simulator, &settings.tron.node_url) {
        (Some(sim), _) => {
            println!("TRON node: built-in simulator at {}", sim.base_url());
            println!(
                "  outside customer (pays deposits with POST /sim/transfer): {}",
                sim.customer()
            );
            println!("  USDT contract: {}", sim.usdt_contract());
        }
        (None, url) => println!("TRON node: {}", url.as_deref().unwrap_or_default()),
    }
    for w in &services.wallets {
        println!("pool wallet: {w}");
    }
    if let Some(url) = running.api_url() {
        println!("HTTP API at {url}/v1 (docs/api.md)");
    }
    println!(
        "audit key (auditors check signed heads with it): {}",
        services.audit_signer.public_key()
    );
    println!("  a token: trx-energy token issue --role bot --subject my-bot --ttl 30d");
    println!("trx-energy is running; press Ctrl-C (or send SIGTERM) to stop");
    stop.await;
    tracing::info!("shutting down");
    if let Err(e) = running.stop().await {
        tracing::error!(error = %e, "the engine stopped with errors");
    }
    app.close().await?;
    Ok(0)
}

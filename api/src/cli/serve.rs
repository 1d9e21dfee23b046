//! `trx-energy serve`: the HTTP API alone (the app's [`Plan::serve`]), beside engines run
//! elsewhere (`run`, or its parts). Without `TRON_NODE_URL` quotes say
//! `receiver_activated: null`.

use std::future::Future;

use crate::app::{App, Plan, Shutdown};
use crate::settings::Settings;

/// Serves until `stop` completes; the exit code.
pub async fn serve(settings: &Settings, stop: impl Future<Output = ()>) -> anyhow::Result<u8> {
    let app = App::build(settings, Plan::serve()).await?;
    let running = app.spawn(&Shutdown::new()).await?;
    if let Some(url) = running.api_url() {
        println!("HTTP API at {url}/v1");
    }
    println!("a token: trx-energy token issue --role bot --subject my-bot --ttl 30d");
    stop.await;
    let stopped = running.stop().await;
    app.close().await?;
    stopped.map(|()| 0)
}

//! `trx-energy simulate`: the TRON chain simulator on its own (docs/simulator.md). It answers
//! like a full node on `/wallet/…` and `/walletsolidity/…`; with `--dev` it also serves the
//! `/sim/…` admin endpoints (fund accounts, stake, pay from an outside customer, faults).

use std::net::IpAddr;
use std::time::Duration;

use tron_adapter::node::ApiKey;
use tron_adapter::simulator::{SimConfig, Simulator};

/// Options of `trx-energy simulate`.
/// (No `Debug`: it may carry an API key.)
#[derive(Clone, clap::Args)]
pub struct SimulateArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Milliseconds between blocks (the chain's clock still moves 3 s per block); 0 produces
    /// blocks only on `POST /sim/produce`.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    pub block_time_ms: u64,
    /// Blocks on top of a block before /walletsolidity/ sees it.
    #[arg(long, value_name = "K", default_value_t = 19)]
    pub confirmations: u64,
    /// Serve the /sim/… admin endpoints (activate, stake, transfer, faults, produce, advance).
    #[arg(long)]
    pub dev: bool,
    /// Require this TRON-PRO-API-KEY header on node requests (like TronGrid).
    #[arg(
        long,
        value_name = "KEY",
        env = "TRX_SIMULATOR_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
}

impl SimulateArgs {
    pub fn config(&self) -> SimConfig {
        SimConfig {
            host: self.host,
            port: self.port,
            block_interval: (self.block_time_ms > 0)
                .then(|| Duration::from_millis(self.block_time_ms)),
            confirmations: self.confirmations,
            dev: self.dev,
            api_key: self.api_key.clone().map(ApiKey::new),
            ..SimConfig::default()
        }
    }

    /// The settings line printed at start: block production, depth, admin endpoints.
    pub fn summary(&self) -> String {
        let blocks = match (self.block_time_ms, self.dev) {
            (0, true) => "blocks only on POST /sim/produce".to_string(),
            (0, false) => "no blocks (--block-time-ms 0 without --dev)".to_string(),
            (ms, _) => format!("blocks every {ms} ms"),
        };
        let admin = if self.dev {
            "on (/sim/…)"
        } else {
            "off (--dev)"
        };
        format!(
            "{blocks}, solid after {} blocks, admin endpoints {admin}",
            self.confirmations
        )
    }
}

/// Runs the simulator until `stop` resolves. Prints where it listens and who the outside
/// customer is (its address, never its key).
pub async fn run(
    args: SimulateArgs,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let handle = Simulator::start(args.config()).await?;
    println!("TRON simulator listening on {}", handle.base_url());
    println!("  {}", args.summary());
    println!("  outside customer: {}", handle.customer().to_base58());
    println!("  USDT contract:    {}", handle.usdt_contract().to_base58());
    stop.await;
    tracing::info!("simulator stopping");
    handle.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn simulate_starts_on_a_free_port_and_stops_when_told() {
        let args = SimulateArgs {
            port: 0,
            host: IpAddr::from([127, 0, 0, 1]),
            block_time_ms: 0,
            confirmations: 2,
            dev: true,
            api_key: None,
        };
        let config = args.config();
        assert!(
            config.block_interval.is_none(),
            "0 ms: blocks only on demand"
        );
        assert_eq!(config.confirmations, 2);
        assert!(config.dev);
        assert_eq!(
            args.summary(),
            "blocks only on POST /sim/produce, solid after 2 blocks, admin endpoints on (/sim/…)"
        );
        run(args, async {}).await.unwrap();
    }
}

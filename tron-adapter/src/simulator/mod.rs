//! A TRON chain simulator that answers like a full node (docs/simulator.md,
//! docs/adr/0005-chain-simulator.md): the subset of java-tron's HTTP API the engine uses, over
//! a chain with blocks every N ms, solidification after K blocks, Stake 2.0 with the node's energy
//! formula, the node's validation errors, TRX and a USDT TRC20 contract, and fault injection.
//! Embedded in tests with [`Simulator::start`]; run alone as `trx-energy simulate`.
//!
//! Layout: [`state`] (accounts, delegations, balances), [`resources`] (the node's arithmetic),
//! [`execute`] (signature, validation, bandwidth, execution), [`contract`] (USDT), [`block`],
//! [`chain`] (blocks, pool, solid view, reorg), [`render`] (JSON shapes), [`request`] (servlet
//! parameters and errors), [`http`] (the node routes), [`admin`] (`/sim/…`), [`faults`].

pub mod admin;
pub mod block;
pub mod chain;
pub mod contract;
pub mod execute;
pub mod faults;
pub mod http;
pub mod render;
pub mod request;
pub mod resources;
pub mod state;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use chain::{Chain, View, WorldOp};
pub use contract::UsdtCosts;
pub use faults::Faults;
pub use state::NetworkParams;

use crate::keys::sha256;
use crate::node::ApiKey;
use crate::{PrivateKey, TronAddress};

/// Mainnet USDT, `TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t`.
pub const MAINNET_USDT: &str = "41a614f803b6fd780986a42c78ec9c7f77e6ded13c";

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("simulator configuration: {0}")]
    Config(String),
}

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Real time between blocks; `None` produces blocks only when asked
    /// ([`SimHandle::produce_blocks`], `POST /sim/produce`).
    pub block_interval: Option<Duration>,
    /// Virtual milliseconds each block adds to the chain's clock (the node's 3,000).
    pub slot_ms: i64,
    /// Blocks on top of a block before `/walletsolidity/` sees it (mainnet ≈ 19).
    pub confirmations: u64,
    /// Serve the `/sim/…` admin endpoints.
    pub dev: bool,
    /// Genesis time (ms since the epoch); `None` is now, rounded down to a slot.
    pub genesis_time_ms: Option<i64>,
    pub network: NetworkParams,
    pub usdt_contract: TronAddress,
    pub usdt_costs: UsdtCosts,
    /// TRX (sun) and USDT (base units) the outside customer starts with.
    pub customer_trx: i64,
    pub customer_usdt: u128,
    /// Largest request body; larger ones get HTTP 413.
    pub body_limit: usize,
    /// When set, node requests must carry it in `TRON-PRO-API-KEY` (HTTP 401 otherwise).
    pub api_key: Option<ApiKey>,
    /// Pool size at which broadcasts get `SERVER_BUSY`.
    pub max_pending: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8090,
            block_interval: Some(Duration::from_millis(3_000)),
            slot_ms: resources::SLOT_MS,
            confirmations: 19,
            dev: false,
            genesis_time_ms: None,
            network: NetworkParams::default(),
            usdt_contract: TronAddress::from_hex(MAINNET_USDT).expect("a valid constant"),
            usdt_costs: UsdtCosts::default(),
            customer_trx: 1_000_000_000 * resources::TRX,
            customer_usdt: 10_000_000 * 1_000_000,
            body_limit: 4 * 1024 * 1024,
            api_key: None,
            max_pending: 10_000,
        }
    }
}

impl SimConfig {
    /// For tests: a free port on 127.0.0.1, a block every 5 ms, solid after 3, admin on.
    pub fn for_tests() -> Self {
        Self {
            port: 0,
            block_interval: Some(Duration::from_millis(5)),
            confirmations: 3,
            dev: true,
            ..Self::default()
        }
    }

    /// For tests that step the chain themselves: like [`SimConfig::for_tests`] but no block is
    /// produced unless asked for.
    pub fn manual() -> Self {
        Self {
            block_interval: None,
            ..Self::for_tests()
        }
    }
}

/// The state every route shares.
pub struct Shared {
    pub config: SimConfig,
    chain: Mutex<Chain>,
    faults: Mutex<Faults>,
    customer_key: PrivateKey,
    /// The head block number, published after each block.
    head_tx: watch::Sender<u64>,
}

impl Shared {
    /// The chain, locked. A panic elsewhere never makes the lock unusable.
    pub fn chain(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn customer_key(&self) -> &PrivateKey {
        &self.customer_key
    }

    /// Produces `n` blocks now; returns the new head number.
    pub fn produce(&self, n: u64) -> u64 {
        let head = {
            let mut chain = self.chain();
            for _ in 0..n {
                chain.produce_block();
            }
            chain.head_number()
        };
        self.head_tx.send_replace(head);
        head
    }

    /// Publishes the head after a change made outside [`Shared::produce`] (a reorg).
    pub fn publish_head(&self) {
        let head = self.chain().head_number();
        self.head_tx.send_replace(head);
    }
}

/// A running simulator. Dropping it stops the server and the block producer.
pub struct SimHandle {
    base_url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    head_rx: watch::Receiver<u64>,
    shutdown: Option<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

/// The simulator's entry point.
pub struct Simulator;

fn key_from_label(label: &str) -> PrivateKey {
    PrivateKey::from_bytes(&sha256(label.as_bytes())).expect("sha256 of a label is a valid key")
}

impl Simulator {
    /// Binds, creates the genesis block and starts serving (and producing blocks).
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        if config.slot_ms <= 0 {
            return Err(SimError::Config("slot_ms must be positive".into()));
        }
        if config.block_interval.is_some_and(|d| d.is_zero()) {
            return Err(SimError::Config(
                "the block interval must be positive".into(),
            ));
        }
        let addr = SocketAddr::new(config.host, config.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimError::Bind { addr, source })?;

        let genesis_ts = config.genesis_time_ms.unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            now - now % resources::SLOT_MS
        });
        let customer_key = key_from_label("trx-energy simulator: outside customer");
        let witness_key = key_from_label("trx-energy simulator: witness");
        let mut world = state::World::new(config.network.clone(), genesis_ts, config.usdt_contract);
        let customer = customer_key.address();
        world.accounts.insert(
            customer,
            state::Account::new(customer, config.customer_trx, genesis_ts),
        );
        world.usdt.insert(customer, config.customer_usdt);
        let chain = Chain::new(
            chain::ChainSettings {
                confirmations: config.confirmations,
                slot_ms: config.slot_ms,
                costs: config.usdt_costs.clone(),
                max_pending: config.max_pending,
            },
            world,
            witness_key,
        );
        let (head_tx, head_rx) = watch::channel(0);
        let shared = Arc::new(Shared {
            config: config.clone(),
            chain: Mutex::new(chain),
            faults: Mutex::new(Faults::default()),
            customer_key,
            head_tx,
        });

        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let app = http::router(shared.clone());
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = shutdown_rx.await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "simulator server stopped");
            }
        });
        let mut tasks = vec![server];
        if let Some(interval) = config.block_interval {
            let producer = shared.clone();
            tasks.push(tokio::spawn(async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    producer.produce(1);
                }
            }));
        }
        tracing::info!(%addr, confirmations = config.confirmations, dev = config.dev, "simulator listening");
        Ok(SimHandle {
            base_url: format!("http://{addr}"),
            addr,
            shared,
            head_rx,
            shutdown: Some(shutdown_tx),
            tasks,
        })
    }
}

impl SimHandle {
    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The outside customer whose key the simulator holds (`/sim/transfer` pays from it).
    pub fn customer(&self) -> TronAddress {
        self.shared.customer_key().address()
    }

    pub fn usdt_contract(&self) -> TronAddress {
        self.shared.config.usdt_contract
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn head_number(&self) -> u64 {
        self.shared.chain().head_number()
    }

    pub fn solid_number(&self) -> u64 {
        self.shared.chain().solid_number()
    }

    /// Produces `n` blocks now (in either mode); returns the new head number.
    pub fn produce_blocks(&self, n: u64) -> u64 {
        self.shared.produce(n)
    }

    /// Moves the chain's clock: the next block is `ms` later than it would have been.
    pub fn advance_time(&self, ms: i64) {
        self.shared.chain().advance(ms);
    }

    /// Waits (bounded by `timeout`) until the head reaches `number`; false on timeout.
    pub async fn wait_for_block(&self, number: u64, timeout: Duration) -> bool {
        let mut rx = self.head_rx.clone();
        tokio::time::timeout(timeout, rx.wait_for(|head| *head >= number))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops serving and producing.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

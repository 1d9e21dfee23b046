//! The workers a process runs, each under its name: the engine's (process managers, scheduler,
//! allocator, chain worker, deposit watcher, wallet sync) and the projector runtime. Adding one
//! is a line in [`engine_workers`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use projections::audit::{AuditSigner, HeadPolicy};
use projections::runtime::{ProjectionWorker, Worker as ProjectorWorker};
use projections::{Runtime, RuntimeConfig, RuntimeHandle};
use sqlx::PgPool;
use tokio::sync::watch;
use tron_adapter::worker::{
    Allocator, ChainParams, ChainWake, ChainWorker, ChainWorkerConfig, DepositWatcher,
    DepositWatcherConfig, WalletGauges, WalletSync, WalletSyncConfig,
};

use engine::process::scheduler::run_scheduler;
use engine::process::{run_reactor, DepositFlow, OrderFlow, RunnerConfig};

use super::plan::Projector;
use super::Services;
use crate::settings::Settings;

/// A named task that runs until the shutdown signal.
pub struct NamedWorker {
    pub name: &'static str,
    run: Box<dyn FnOnce(watch::Receiver<bool>) -> BoxFuture<'static, anyhow::Result<()>> + Send>,
}

impl NamedWorker {
    fn new<F, Fut, E>(name: &'static str, run: F) -> Self
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<anyhow::Error>,
    {
        Self {
            name,
            run: Box::new(move |stop| Box::pin(async move { run(stop).await.map_err(Into::into) })),
        }
    }

    /// Runs the worker until `stop` turns true.
    pub fn run(self, stop: watch::Receiver<bool>) -> BoxFuture<'static, anyhow::Result<()>> {
        (self.run)(stop)
    }
}

/// The engine's workers, and the pool wallets' gauges the wallet sync keeps (for `/metrics`).
pub fn engine_workers(
    settings: &Settings,
    pool: &PgPool,
    services: &Services,
) -> anyhow::Result<(Vec<NamedWorker>, Arc<WalletGauges>)> {
    let node = services
        .node
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the engine needs a TRON node"))?;
    let buses = services.buses.clone();
    let config = RunnerConfig::default();
    let wake = ChainWake::new();
    let params = Arc::new(ChainParams::new(
        node.clone(),
        services.wallets[0],
        Duration::from_secs(30),
    ));
    let allocator =
        Arc::new(Allocator::new(buses.clone(), node.clone(), params).with_wake(wake.clone()));
    let chain = ChainWorker::with_wake(
        buses.clone(),
        node.clone(),
        services.vault.clone(),
        chain_worker_config(settings),
        wake,
    );
    let usdt = super::dev::usdt_contract(settings, services.simulator.as_ref())?;
    let watcher = DepositWatcher::new(buses.clone(), node.clone(), DepositWatcherConfig::new(usdt));
    let sync = WalletSync::new(buses.clone(), node, WalletSyncConfig::default());
    let gauges = sync.gauges();
    let order_flow = Arc::new(OrderFlow::new(buses.clone()));
    let deposit_flow = Arc::new(DepositFlow::new(buses.clone()));
    let (p1, p2, p3) = (pool.clone(), pool.clone(), pool.clone());
    let (c1, c2, c3) = (config.clone(), config.clone(), config);
    let workers = vec![
        NamedWorker::new("order-flow", move |stop| {
            run_reactor(p1, order_flow, c1, stop)
        }),
        NamedWorker::new("deposit-flow", move |stop| {
            run_reactor(p2, deposit_flow, c2, stop)
        }),
        NamedWorker::new("wallet-allocator", move |stop| {
            run_reactor(p3, allocator, c3, stop)
        }),
        NamedWorker::new("scheduler", move |stop| {
            run_scheduler(buses, Duration::from_millis(250), stop)
        }),
        NamedWorker::new("chain-worker", move |stop| chain.run(stop)),
        NamedWorker::new("deposit-watcher", move |stop| async move {
            watcher.run(stop).await
        }),
        NamedWorker::new(
            "wallet-sync",
            move |stop| async move { sync.run(stop).await },
        ),
    ];
    Ok((workers, gauges))
}

/// The chain worker looks at a waiting transaction about once a block.
fn chain_worker_config(settings: &Settings) -> ChainWorkerConfig {
    let mut config = ChainWorkerConfig::default();
    if settings.simulated() {
        config.confirm_poll =
            Duration::from_millis(settings.simulator.block_time_ms.clamp(10, 1_000));
    }
    config
}

/// The audit key and how often the sequencer signs a head of the chain with it; `None`: the
/// sequencer numbers events and signs nothing.
pub type HeadSigning = Option<(Arc<AuditSigner>, HeadPolicy)>;

/// The projector runtime's workers `args` asks for: projections by name, and the audit
/// sequencer (signing heads with `signing`); every one by default.
pub fn projector_workers(
    args: &Projector,
    signing: HeadSigning,
) -> Result<Vec<Arc<dyn ProjectorWorker>>, projections::Error> {
    let mut workers: Vec<Arc<dyn ProjectorWorker>> = Vec::new();
    let all = args.only.is_empty();
    for p in projections::projection::all() {
        if all || args.only.iter().any(|n| n == p.name()) {
            workers.push(Arc::new(ProjectionWorker::new(p)));
        }
    }
    let sequencer = projections::audit::SEQUENCER;
    if all || args.only.iter().any(|n| n == sequencer) {
        workers.push(Arc::new(match signing {
            Some((signer, policy)) => projections::audit::Sequencer::signing(signer, policy),
            None => projections::audit::Sequencer::new(),
        }));
    }
    for name in &args.only {
        if !workers.iter().any(|w| w.name() == name) {
            let mut known = projections::projection::names();
            known.push(sequencer);
            return Err(projections::Error::UnknownProjection(
                name.clone(),
                known.join(", "),
            ));
        }
    }
    Ok(workers)
}

/// Starts the projector runtime in this process.
pub fn start_projector(
    pool: &PgPool,
    args: &Projector,
) -> Result<RuntimeHandle, projections::Error> {
    start_projector_signing(pool, args, None)
}

/// [`start_projector`], its sequencer signing heads of the chain with `signing`.
pub fn start_projector_signing(
    pool: &PgPool,
    args: &Projector,
    signing: HeadSigning,
) -> Result<RuntimeHandle, projections::Error> {
    let config = RuntimeConfig {
        batch_size: args.batch_size,
        application_name: format!("trx-energy projector pid {}", std::process::id()),
        ..RuntimeConfig::default()
    };
    let workers = projector_workers(args, signing)?;
    let names: Vec<&str> = workers.iter().map(|w| w.name()).collect();
    tracing::info!(workers = %names.join(", "), "projector runtime starting");
    Ok(Runtime::new(pool.clone(), workers, config).spawn())
}

//! `trx-energy project`: runs the projector runtime (every projection and the audit sequencer,
//! or the ones named with `--only`) until SIGTERM or Ctrl-C. Several processes may run it: one
//! owns each projection, the others stand by and take over within about a second when the
//! owner stops (docs/projections.md). `trx-energy run` starts the same runtime.

use std::future::Future;
use std::sync::Arc;

use projections::runtime::{ProjectionWorker, Worker};
use projections::{Runtime, RuntimeConfig, RuntimeHandle};
use sqlx::PgPool;

/// Options of `trx-energy project`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProjectArgs {
    /// Run only these workers (projection names, or `audit_sequencer`); repeatable. Default:
    /// every projection and the audit sequencer.
    #[arg(long = "only", value_name = "NAME")]
    pub only: Vec<String>,
    /// Events per batch.
    #[arg(long, default_value_t = 500)]
    pub batch_size: i64,
}

impl Default for ProjectArgs {
    fn default() -> Self {
        Self {
            only: Vec::new(),
            batch_size: 500,
        }
    }
}

/// The workers `args` asks for.
pub fn workers(args: &ProjectArgs) -> Result<Vec<Arc<dyn Worker>>, projections::Error> {
    let mut workers: Vec<Arc<dyn Worker>> = Vec::new();
    let all = args.only.is_empty();
    for p in projections::projection::all() {
        if all || args.only.iter().any(|n| n == p.name()) {
            workers.push(Arc::new(ProjectionWorker::new(p)));
        }
    }
    let sequencer = projections::audit::SEQUENCER;
    if all || args.only.iter().any(|n| n == sequencer) {
        workers.push(Arc::new(projections::audit::Sequencer::new()));
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

/// Starts the runtime in this process.
pub fn start(pool: &PgPool, args: &ProjectArgs) -> Result<RuntimeHandle, projections::Error> {
    let config = RuntimeConfig {
        batch_size: args.batch_size,
        application_name: format!("trx-energy projector pid {}", std::process::id()),
        ..RuntimeConfig::default()
    };
    let workers = workers(args)?;
    let names: Vec<&str> = workers.iter().map(|w| w.name()).collect();
    tracing::info!(workers = %names.join(", "), "projector runtime starting");
    Ok(Runtime::new(pool.clone(), workers, config).spawn())
}

/// Runs until `shutdown` completes (exit code 0), or until a worker stops on an error (exit
/// code 1: every other worker is stopped too, releasing its ownership to a standby process).
pub async fn run(args: ProjectArgs, pool: &PgPool, shutdown: impl Future<Output = ()>) -> u8 {
    let mut handle = match start(pool, &args) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let failed = tokio::select! {
        _ = shutdown => None,
        (name, error) = handle.wait_any_failure() => Some((name, error)),
    };
    let stopped = handle.shutdown().await;
    match failed {
        None => match stopped {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        },
        Some((name, error)) => {
            eprintln!("error: {name} stopped: {error}");
            1
        }
    }
}

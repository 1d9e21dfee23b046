//! `trx-energy project`: runs the projector runtime (every projection and the audit sequencer,
//! or the ones named with `--only`) until SIGTERM or Ctrl-C. Several processes may run it: one
//! owns each projection, the others stand by and take over within about a second when the
//! owner stops (docs/projections.md). `trx-energy run` starts the same runtime.

use std::future::Future;

use crate::app::{App, Plan, Projector, Shutdown};
use crate::settings::Settings;

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

impl From<ProjectArgs> for Projector {
    fn from(args: ProjectArgs) -> Self {
        Projector {
            only: args.only,
            batch_size: args.batch_size,
        }
    }
}

/// Runs until `stop` completes (exit code 0), or until a worker stops on an error (exit code
/// 1: every other worker is stopped too, releasing its ownership to a standby process); an
/// unknown `--only` name is exit code 2.
pub async fn run(
    args: ProjectArgs,
    settings: &Settings,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<u8> {
    let projector = Projector::from(args);
    if let Err(e) = crate::app::workers::projector_workers(&projector, None) {
        eprintln!("error: {e}");
        return Ok(2);
    }
    let app = App::build(settings, Plan::project(projector)).await?;
    let mut running = app.spawn(&Shutdown::new()).await?;
    let failed = tokio::select! {
        _ = stop => None,
        (name, error) = running.projector_failure() => Some((name, error)),
    };
    let stopped = running.stop().await;
    app.close().await?;
    Ok(match (failed, stopped) {
        (None, Ok(())) => 0,
        (None, Err(e)) => {
            eprintln!("error: {e}");
            1
        }
        (Some((name, error)), _) => {
            eprintln!("error: {name} stopped: {error}");
            1
        }
    })
}

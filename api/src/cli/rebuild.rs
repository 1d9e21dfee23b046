//! `trx-energy rebuild <projection> | --all [--check]`: builds the projection's tables again from
//! position zero into shadow tables while the live projection keeps running, catches up and
//! swaps them in atomically; with `--check`, compares the fresh build with the live tables,
//! prints the rows that differ and exits 1 if any do. A progress bar (events per second, ETA)
//! is drawn on a terminal.

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use projections::rebuild::{rebuild, Phase, RebuildOptions, RebuildReport};
use sqlx::PgPool;

/// Options of `trx-energy rebuild`.
#[derive(Debug, Clone, clap::Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["projection", "all"]))]
pub struct RebuildArgs {
    /// The projection to rebuild (account_balances, orders, deposits, wallet_utilisation,
    /// daily_finance).
    pub projection: Option<String>,
    /// Rebuild every projection, in one pass over the log.
    #[arg(long)]
    pub all: bool,
    /// Compare a fresh rebuild with the live tables instead of swapping; exit 1 on differences.
    #[arg(long)]
    pub check: bool,
    /// Events per batch.
    #[arg(long, default_value_t = 5_000)]
    pub batch_size: i64,
}

fn bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:10} [{bar:40}] {human_pos}/{human_len} events, {per_sec}, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Runs a rebuild; returns the exit code.
pub async fn run(
    args: RebuildArgs,
    pool: &PgPool,
    out: &mut impl Write,
    err: &mut impl Write,
) -> u8 {
    let projections = if args.all {
        projections::projection::all()
    } else {
        let name = args.projection.as_deref().unwrap_or_default();
        match projections::projection::by_name(name) {
            Ok(p) => vec![p],
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return 2;
            }
        }
    };
    let options = RebuildOptions {
        batch_size: args.batch_size,
        check: args.check,
        ..RebuildOptions::default()
    };
    let bar = bar();
    let result = rebuild(pool, &projections, &options, |p| {
        bar.set_length(p.total);
        bar.set_position(p.events);
        bar.set_message(match p.phase {
            Phase::Building => "building",
            Phase::Indexing => "indexing",
            Phase::Swapping => "swapping",
            Phase::Comparing => "comparing",
            Phase::Done => "done",
        });
    })
    .await;
    bar.finish_and_clear();
    match result {
        Ok(report) => report_outcome(&report, out),
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            1
        }
    }
}

fn report_outcome(report: &RebuildReport, out: &mut impl Write) -> u8 {
    let names = report.projections.join(", ");
    let speed = format!(
        "{} events in {:.2} s ({:.0} events/s)",
        report.events,
        report.elapsed.as_secs_f64(),
        report.events_per_second()
    );
    if report.swapped {
        let _ = writeln!(
            out,
            "rebuilt {names}: {speed}; swapped in at log position {}",
            report.position
        );
        return 0;
    }
    if report.differences.is_empty() {
        let _ = writeln!(
            out,
            "check {names}: no differences ({speed}, compared at log position {})",
            report.position
        );
        return 0;
    }
    for d in &report.differences {
        let _ = writeln!(
            out,
            "{}: {} rows only in the live table, {} rows only in the rebuild",
            d.table, d.only_live, d.only_rebuilt
        );
        for row in &d.live_rows {
            let _ = writeln!(out, "  live:    {row}");
        }
        for row in &d.rebuilt_rows {
            let _ = writeln!(out, "  rebuilt: {row}");
        }
    }
    let _ = writeln!(
        out,
        "check {names}: {} tables differ (compared at log position {})",
        report.differences.len(),
        report.position
    );
    1
}

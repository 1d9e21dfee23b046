//! `trx-energy audit …`: verify the hash chain against the events table, an aggregate's history,
//! its state as of a time or log position, and exports an auditor can verify offline
//! (docs/audit.md).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use projections::audit::query::{export, history, state_at, verify_export, AsOf};
use projections::audit::{catch_up, verify};
use sqlx::PgPool;

/// The `audit` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AuditCommand {
    /// Sequence whatever is not yet in the chain, then recompute the chain from the events
    /// table: prints `ok <N> events` (exit 0), or names the first event altered, inserted,
    /// deleted or reordered (exit 1).
    Verify,
    /// An aggregate's events in order, with audit numbers, times and actors.
    History {
        /// account, order, deposit or wallet.
        aggregate_type: String,
        id: String,
    },
    /// An aggregate's state as of a time or a log position, as JSON.
    State {
        /// account, order, deposit or wallet.
        aggregate_type: String,
        id: String,
        /// Events recorded at or before this time (RFC 3339).
        #[arg(
            long,
            value_name = "RFC3339",
            conflicts_with = "at_position",
            required_unless_present = "at_position"
        )]
        at_time: Option<String>,
        /// Events at or before this global position.
        #[arg(long, value_name = "N")]
        at_position: Option<i64>,
    },
    /// Audit numbers FROM..=TO as JSON lines with their hashes (to standard output, or --output).
    Export {
        #[arg(long)]
        from: i64,
        #[arg(long)]
        to: i64,
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Check an export offline (no database): prints `ok <N> lines` or the first bad line.
    VerifyExport { file: PathBuf },
}

/// Runs one `audit` command; returns the exit code. `pool` is not used by `verify-export`.
pub async fn run(
    command: AuditCommand,
    pool: Option<&PgPool>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> u8 {
    match execute(command, pool, out).await {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            if matches!(e, Failure::Usage(_)) {
                2
            } else {
                1
            }
        }
    }
}

/// Whether a command needs the database.
pub fn needs_database(command: &AuditCommand) -> bool {
    !matches!(command, AuditCommand::VerifyExport { .. })
}

enum Failure {
    Usage(String),
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Usage(s) | Failure::Other(s) => f.write_str(s),
        }
    }
}

impl From<projections::Error> for Failure {
    fn from(e: projections::Error) -> Self {
        match e {
            projections::Error::UnknownAggregateType(_) => Failure::Usage(e.to_string()),
            e => Failure::Other(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Other(e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Other(e.to_string())
    }
}

async fn execute(
    command: AuditCommand,
    pool: Option<&PgPool>,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    if let AuditCommand::VerifyExport { file } = &command {
        let input =
            File::open(file).map_err(|e| Failure::Other(format!("{}: {e}", file.display())))?;
        return match verify_export(BufReader::new(input)) {
            Ok(n) => {
                writeln!(out, "ok {n} lines")?;
                Ok(0)
            }
            Err(problem) => {
                writeln!(out, "FAILED: {problem}")?;
                Ok(1)
            }
        };
    }
    let pool = pool.ok_or_else(|| Failure::Other("no database".into()))?;
    let mut conn = pool.acquire().await?;
    match command {
        AuditCommand::Verify => {
            catch_up(&mut conn, std::time::Duration::from_secs(30)).await?;
            let report = verify(pool).await?;
            if report.is_ok() {
                writeln!(out, "ok {} events", report.events)?;
                return Ok(0);
            }
            let first = &report.problems[0];
            writeln!(out, "FAILED: {first}")?;
            for p in report.problems.iter().skip(1) {
                writeln!(out, "  also {p}")?;
            }
            Ok(1)
        }
        AuditCommand::History { aggregate_type, id } => {
            let t = projections::audit::query::aggregate_type(&aggregate_type)?;
            let entries = history(&mut conn, t, &id).await?;
            if entries.is_empty() {
                writeln!(out, "no events for {t} {id}")?;
                return Ok(1);
            }
            for e in entries {
                writeln!(out, "{}", e.line())?;
            }
            Ok(0)
        }
        AuditCommand::State {
            aggregate_type,
            id,
            at_time,
            at_position,
        } => {
            let as_of = match (at_time, at_position) {
                (_, Some(p)) => AsOf::Position(p),
                (Some(t), None) => AsOf::Time(
                    DateTime::parse_from_rfc3339(&t)
                        .map_err(|e| Failure::Usage(format!("--at-time {t:?}: {e}")))?
                        .with_timezone(&Utc),
                ),
                (None, None) => {
                    return Err(Failure::Usage("give --at-time or --at-position".into()))
                }
            };
            let report = state_at(&mut conn, &aggregate_type, &id, as_of).await?;
            let text =
                serde_json::to_string_pretty(&report).map_err(|e| Failure::Other(e.to_string()))?;
            writeln!(out, "{text}")?;
            Ok(0)
        }
        AuditCommand::Export { from, to, output } => {
            if from < 1 || to < from {
                return Err(Failure::Usage(format!(
                    "--from {from} --to {to}: give 1 <= FROM <= TO"
                )));
            }
            let n = match output {
                Some(path) => {
                    let file = File::create(&path)
                        .map_err(|e| Failure::Other(format!("{}: {e}", path.display())))?;
                    let mut w = BufWriter::new(file);
                    let n = export(&mut conn, from, to, &mut w).await?;
                    w.flush()?;
                    n
                }
                None => export(&mut conn, from, to, out).await?,
            };
            if n == 0 {
                return Err(Failure::Other(format!(
                    "no audit numbers between {from} and {to}"
                )));
            }
            Ok(0)
        }
        AuditCommand::VerifyExport { .. } => Ok(0),
    }
}

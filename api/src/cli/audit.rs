//! `trx-energy audit …`: verify the hash chain (against the events and every signed head),
//! print an aggregate's history or state as of a time or log position, export a range ending
//! with a signed head, and check an export or the API's pages offline (docs/audit.md).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use projections::audit::heads::GivenHead;
use projections::audit::offline::{heads_hold, verify_export, Finding, OfflineSummary};
use projections::audit::query::{export, history, state_at, AsOf};
use projections::audit::{
    catch_up, verify_with_options, AuditPublicKey, SignedHead, VerifyOptions,
};
use sqlx::PgPool;
use tron_adapter::vault::KeyVault;

use crate::settings::Settings;

/// The `audit` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AuditCommand {
    /// Sequence whatever is not yet in the chain, recompute the chain from the events table and
    /// hold it to every stored signed head (and to the heads given): prints `ok <N> events`
    /// (exit 0), or names the first event altered, inserted, deleted or reordered, or the range
    /// a rewrite behind a signed head lies in (exit 1).
    Verify {
        #[command(flatten)]
        anchor: Anchor,
    },
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
    /// Audit numbers FROM..=TO as JSON lines with their hashes, then a head of them signed with
    /// the audit key (to standard output, or --output). Needs TRX_MASTER_KEY, which opens the
    /// audit key in the vault.
    Export {
        #[arg(long)]
        from: i64,
        #[arg(long)]
        to: i64,
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Check an export offline (no database): prints `ok <N> lines …` or the first bad line.
    VerifyExport {
        file: PathBuf,
        #[command(flatten)]
        anchor: Anchor,
    },
    /// Check the chain from the HTTP API alone (an auditor's token, no database): every page of
    /// /v1/audit/log, held to /v1/audit/head, to every head of /v1/audit/heads and to the heads
    /// given.
    VerifyApi {
        /// The API's base URL, e.g. http://127.0.0.1:8080.
        url: String,
        /// An auditor's (or admin's) bearer token.
        #[arg(long, env = "TRX_API_TOKEN", hide_env_values = true)]
        token: String,
        #[command(flatten)]
        anchor: Anchor,
    },
}

/// What an auditor holds the chain to, besides what comes with it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Anchor {
    /// The audit key's public half (64 hex digits) as you hold it: every head must be signed
    /// by it. Without it, heads are checked against the key they name, which is printed.
    #[arg(long, value_name = "HEX")]
    pub public_key: Option<String>,
    /// A signed head saved earlier (GET /v1/audit/head, or an export's last line); repeatable.
    /// The chain must still have the hash it signed.
    #[arg(long = "head", value_name = "FILE")]
    pub heads: Vec<PathBuf>,
}

impl Anchor {
    fn public_key(&self) -> Result<Option<AuditPublicKey>, Failure> {
        self.public_key
            .as_deref()
            .map(|k| {
                AuditPublicKey::from_hex(k)
                    .map_err(|e| Failure::Usage(format!("--public-key: {e}")))
            })
            .transpose()
    }

    fn heads(&self) -> Result<Vec<(String, SignedHead)>, Failure> {
        self.heads.iter().map(|p| read_head(p)).collect()
    }
}

/// A signed head from a file: the JSON object alone, or JSON lines whose last line is one (an
/// export).
fn read_head(path: &Path) -> Result<(String, SignedHead), Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("--head {}: {e}", path.display())))?;
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let head = serde_json::from_str::<SignedHead>(text.trim())
        .or_else(|_| serde_json::from_str::<SignedHead>(last))
        .map_err(|e| {
            Failure::Usage(format!("--head {}: not a signed head: {e}", path.display()))
        })?;
    Ok((format!("the head in {}", path.display()), head))
}

/// Runs one `audit` command; returns the exit code. `pool` is not used by `verify-export` and
/// `verify-api`.
pub async fn run(
    command: AuditCommand,
    settings: &Settings,
    pool: Option<&PgPool>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> u8 {
    match execute(command, settings, pool, out).await {
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
    !matches!(
        command,
        AuditCommand::VerifyExport { .. } | AuditCommand::VerifyApi { .. }
    )
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

impl From<crate::cli::verify_api::VerifyApiError> for Failure {
    fn from(e: crate::cli::verify_api::VerifyApiError) -> Self {
        Failure::Other(e.to_string())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(format!("{e:#}"))
    }
}

/// Prints what an offline check vouches for (exit 0) or its finding (exit 1).
fn offline_outcome(
    checked: Result<OfflineSummary, Finding>,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    match checked {
        Ok(summary) => {
            writeln!(out, "{summary}")?;
            Ok(0)
        }
        Err(finding) => {
            writeln!(out, "FAILED: {finding}")?;
            Ok(1)
        }
    }
}

async fn execute(
    command: AuditCommand,
    settings: &Settings,
    pool: Option<&PgPool>,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    match command {
        AuditCommand::VerifyExport { file, anchor } => {
            let (trusted, saved) = (anchor.public_key()?, anchor.heads()?);
            let input = File::open(&file)
                .map_err(|e| Failure::Other(format!("{}: {e}", file.display())))?;
            let checked = verify_export(BufReader::new(input), trusted, &saved);
            return offline_outcome(checked, out);
        }
        AuditCommand::VerifyApi { url, token, anchor } => {
            let (trusted, saved) = (anchor.public_key()?, anchor.heads()?);
            let checked = crate::cli::verify_api::verify_api(&url, &token, trusted, &saved).await?;
            return offline_outcome(checked, out);
        }
        _ => {}
    }
    let pool = pool.ok_or_else(|| Failure::Other("no database".into()))?;
    let mut conn = pool.acquire().await?;
    match command {
        AuditCommand::Verify { anchor } => {
            let options = VerifyOptions {
                public_key: anchor.public_key()?,
                heads: anchor
                    .heads()?
                    .into_iter()
                    .map(|(origin, head)| GivenHead { origin, head })
                    .collect(),
            };
            catch_up(&mut conn, std::time::Duration::from_secs(30)).await?;
            drop(conn);
            let report = verify_with_options(pool, options).await?;
            if report.is_ok() {
                writeln!(out, "ok {} events", report.events)?;
                let heads = &report.heads;
                match &heads.newest {
                    None => writeln!(
                        out,
                        "no signed head yet: the chain is anchored only by what auditors saved"
                    )?,
                    Some(newest) => {
                        writeln!(out, "{}, the newest {newest}", heads_hold(heads.checked))?;
                        if newest.range.to < heads.chain_to {
                            writeln!(
                                out,
                                "#{}..#{} are not yet covered by a signed head",
                                newest.range.to + 1,
                                heads.chain_to
                            )?;
                        }
                    }
                }
                if let (Some(key), None) = (&heads.key, &anchor.public_key) {
                    writeln!(
                        out,
                        "heads signed by key {key} (fingerprint {}): compare it with the audit \
                         key you hold, or give it with --public-key",
                        key.fingerprint()
                    )?;
                }
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
            let keyring = crate::app::secrets::existing_keyring(settings).map_err(|e| {
                Failure::Other(format!(
                    "{e}: the export's head is signed with the audit key, which the vault keeps \
                     under the master key"
                ))
            })?;
            let vault = KeyVault::new(pool.clone(), keyring);
            let signer = crate::app::secrets::audit_signer(&vault).await?;
            let n = match output {
                Some(path) => {
                    let file = File::create(&path)
                        .map_err(|e| Failure::Other(format!("{}: {e}", path.display())))?;
                    let mut w = BufWriter::new(file);
                    let n = export(&mut conn, from, to, &signer, &mut w).await?;
                    w.flush()?;
                    n
                }
                None => export(&mut conn, from, to, &signer, out).await?,
            };
            if n == 0 {
                return Err(Failure::Other(format!(
                    "no audit numbers between {from} and {to}"
                )));
            }
            Ok(0)
        }
        AuditCommand::VerifyExport { .. } | AuditCommand::VerifyApi { .. } => Ok(0),
    }
}

//! `trx-energy token issue|revoke|list`: the API's bearer tokens (docs/api.md). The token is
//! printed once, on standard output; only its id is stored.

use std::io::Write;

use sqlx::PgPool;

use crate::http::auth::{self, Role};
use crate::settings::Settings;

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Print a new token for a subject in a role, valid for a time (e.g. 30d, 12h, 15m).
    Issue {
        #[arg(long)]
        role: Role,
        #[arg(long)]
        subject: String,
        #[arg(long, default_value = "30d", value_parser = auth::parse_ttl)]
        ttl: chrono::TimeDelta,
    },
    /// Revoke a token by its id (the `jti` that `issue` and `list` show).
    Revoke { jti: String },
    /// List issued tokens (ids, subjects, roles, expiry, revocation; never the tokens).
    List,
}

impl clap::ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        &Role::ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

pub async fn run(
    cmd: TokenCommand,
    settings: &Settings,
    pool: &PgPool,
    out: &mut impl Write,
    err: &mut impl Write,
) -> u8 {
    let result: anyhow::Result<()> = async {
        match cmd {
            TokenCommand::Issue { role, subject, ttl } => {
                let keys = crate::app::secrets::token_keys(settings)?;
                let issued = auth::issue(pool, &keys, &subject, role, ttl).await?;
                writeln!(out, "{}", issued.token)?;
                writeln!(
                    err,
                    "token {} for {} ({}) expires at {}",
                    issued.claims.jti,
                    subject,
                    role,
                    chrono::DateTime::from_timestamp(issued.claims.exp, 0)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default()
                )?;
            }
            TokenCommand::Revoke { jti } => {
                if !auth::revoke(pool, &jti).await? {
                    anyhow::bail!("no token {jti}");
                }
                writeln!(out, "revoked {jti}")?;
            }
            TokenCommand::List => {
                for t in auth::list(pool).await? {
                    writeln!(
                        out,
                        "{}  {:<8} {:<24} expires {}{}",
                        t.jti,
                        t.role,
                        t.subject,
                        t.expires_at.to_rfc3339(),
                        t.revoked_at
                            .map(|r| format!("  revoked {}", r.to_rfc3339()))
                            .unwrap_or_default()
                    )?;
                }
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "error: {e:#}");
            1
        }
    }
}

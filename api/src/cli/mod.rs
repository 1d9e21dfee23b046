//! The `trx-energy` command line: [`Cli`] (what `main` parses) and [`dispatch`], which hands
//! each command to its module. A module parses its own arguments and uses the composition root
//! ([`crate::app`]): `run` (the whole engine), `serve` (the API), `project` (the projector
//! runtime), `token`, `keys`, `rebuild`, `audit` (one-shot commands on the database; its
//! `verify-api` is a client of the API alone, in `verify_api`), `tron`
//! (offline, no settings), `simulate` (the chain simulator alone) and `bench-http`. Modules
//! whose output tests read take the streams to write to and return the exit code (0 done, 1
//! refused with a reason on the error stream).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::app::{os_signal, App, Plan};
use crate::settings::Settings;

pub mod audit;
pub mod bench_http;
pub mod keys;
pub mod project;
pub mod rebuild;
pub mod run;
pub mod serve;
pub mod simulate;
pub mod token;
pub mod tron;
pub mod verify_api;

#[derive(Parser)]
#[command(
    name = "trx-energy",
    version,
    about = "Event-sourced order engine for renting TRON energy",
    long_about = "Event-sourced order engine for renting TRON energy.\n\n\
        Settings come from the environment (DATABASE_URL, REDIS_URL, TRX_DATA_DIR, TRX_LOG_FORMAT, \
        RUST_LOG, TRX_DATABASE_POOL_SIZE, …: the README's settings table lists them all) over an \
        optional TOML file (--config). Without DATABASE_URL a private PostgreSQL cluster is \
        started in TRX_DATA_DIR (default ./data)."
)]
pub struct Cli {
    /// A TOML settings file; environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Apply the database migrations and exit.
    Migrate,
    /// Run the whole engine until SIGTERM or Ctrl-C: the built-in chain simulator (unless
    /// TRON_NODE_URL is set), pool wallets, process managers, scheduler, wallet allocator, chain
    /// workers and projections.
    Run,
    /// Run the HTTP API alone (TRX_HTTP_ADDR, default 127.0.0.1:8080) until SIGTERM or Ctrl-C.
    Serve,
    /// The HTTP API's bearer tokens: issue, revoke, list.
    Token {
        #[command(subcommand)]
        cmd: token::TokenCommand,
    },
    /// Print the event store's state: events, aggregates, commands, reader checkpoints.
    Status,
    /// TRON by hand: addresses, decoding/encoding/signing raw transactions (offline).
    Tron {
        #[command(subcommand)]
        cmd: tron::TronCommand,
    },
    /// The key vault: rotate the master key, import wallet keys, deposit addresses.
    Keys {
        #[command(subcommand)]
        cmd: keys::KeysCommand,
    },
    /// The TRON chain simulator alone: a full node's HTTP API over a simulated chain
    /// (docs/simulator.md). `--dev` adds the /sim/… admin endpoints.
    Simulate(simulate::SimulateArgs),
    /// Run the projector runtime alone (read models and the audit sequencer) until SIGTERM or
    /// Ctrl-C; a second process stands by and takes over when the first stops.
    Project(project::ProjectArgs),
    /// The HTTP API's benchmark: place-order rate against pgbench's insert rate, memory, and
    /// order → broadcast latency (runs `serve` and `run` as child processes on fresh databases).
    BenchHttp(bench_http::BenchHttpArgs),
    /// Rebuild a projection (or --all) into shadow tables and swap them in; --check compares.
    Rebuild(rebuild::RebuildArgs),
    /// The audit log: verify the hash chain and its signed heads, histories, states as of a
    /// moment, exports, and checks of an export or of the API's pages without a database.
    Audit {
        #[command(subcommand)]
        cmd: audit::AuditCommand,
    },
}

/// Runs a command that needs the settings (every one but `tron`); returns the exit code.
pub async fn dispatch(command: Command, settings: &Settings) -> anyhow::Result<u8> {
    // The streams a one-shot command writes to (locked only by those: the long-running ones
    // log from every thread).
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    let streams = || (stdout.lock(), stderr.lock());
    match command {
        Command::Tron { .. } => unreachable!("`tron` runs before the settings are loaded"),
        Command::Run => run::run(settings, os_signal()).await,
        Command::Serve => serve::serve(settings, os_signal()).await,
        Command::Project(args) => project::run(args, settings, os_signal()).await,
        Command::Simulate(args) => simulate::run(args, os_signal()).await.map(|()| 0),
        Command::BenchHttp(args) => bench_http::run(settings, &args).await.map(|()| 0),
        Command::Keys { cmd } => {
            let ((mut out, mut err), stdin) = (streams(), std::io::stdin());
            Ok(keys::run(cmd, settings, &mut stdin.lock(), &mut out, &mut err).await)
        }
        Command::Token { cmd } => {
            let app = App::build(settings, Plan::tool()).await?;
            let (mut out, mut err) = streams();
            let code = token::run(cmd, settings, app.pool(), &mut out, &mut err).await;
            app.close().await?;
            Ok(code)
        }
        Command::Rebuild(args) => {
            let app = App::build(settings, Plan::tool()).await?;
            let (mut out, mut err) = streams();
            let code = rebuild::run(args, app.pool(), &mut out, &mut err).await;
            app.close().await?;
            Ok(code)
        }
        Command::Audit { cmd } => {
            if !audit::needs_database(&cmd) {
                let (mut out, mut err) = streams();
                return Ok(audit::run(cmd, settings, None, &mut out, &mut err).await);
            }
            let app = App::build(settings, Plan::tool()).await?;
            let (mut out, mut err) = streams();
            let code = audit::run(cmd, settings, Some(app.pool()), &mut out, &mut err).await;
            app.close().await?;
            Ok(code)
        }
        Command::Migrate => {
            // Opening the database applies the migrations.
            App::build(settings, Plan::tool()).await?.close().await?;
            println!("migrations applied");
            Ok(0)
        }
        Command::Status => {
            let app = App::build(settings, Plan::tool()).await?;
            print!("{}", crate::status::report(app.pool()).await?);
            app.close().await?;
            Ok(0)
        }
    }
}

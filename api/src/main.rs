//! `trx-energy`: the one binary of the energy-rental engine. `trx-energy --help` lists what it does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use api::database::Database;
use api::settings::Settings;
use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: under load glibc's malloc took about a quarter of
/// the API's CPU (docs/api.md, "Benchmark").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "trx-energy",
    version,
    about = "Event-sourced order engine for renting TRON energy",
    long_about = "Event-sourced order engine for renting TRON energy.\n\n\
        Settings come from the environment (DATABASE_URL, REDIS_URL, TRX_DATA_DIR, TRX_LOG_FORMAT, \
        RUST_LOG, TRX_DATABASE_POOL_SIZE) over an optional TOML file (--config). Without \
        DATABASE_URL a private PostgreSQL cluster is started in TRX_DATA_DIR (default ./data)."
)]
struct Cli {
    /// A TOML settings file; environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        cmd: api::cli::token::TokenCommand,
    },
    /// Print the event store's state: events, aggregates, commands, reader checkpoints.
    Status,
    /// TRON by hand: addresses, decoding/encoding/signing raw transactions (offline).
    Tron {
        #[command(subcommand)]
        cmd: api::cli::tron::TronCommand,
    },
    /// The key vault: rotate the master key, import wallet keys, deposit addresses.
    Keys {
        #[command(subcommand)]
        cmd: api::cli::keys::KeysCommand,
    },
    /// The TRON chain simulator alone: a full node's HTTP API over a simulated chain
    /// (docs/simulator.md). `--dev` adds the /sim/… admin endpoints.
    Simulate(api::cli::simulate::SimulateArgs),
    /// Run the projector runtime alone (read models and the audit sequencer) until SIGTERM or
    /// Ctrl-C; a second process stands by and takes over when the first stops.
    Project(api::cli::project::ProjectArgs),
    /// The HTTP API's benchmark: place-order rate against pgbench's insert rate, memory, and
    /// order → broadcast latency (runs `serve` and `run` as child processes on fresh databases).
    BenchHttp(api::cli::bench_http::BenchHttpArgs),
    /// Rebuild a projection (or --all) into shadow tables and swap them in; --check compares.
    Rebuild(api::cli::rebuild::RebuildArgs),
    /// The audit log: verify the hash chain, histories, states as of a moment, exports.
    Audit {
        #[command(subcommand)]
        cmd: api::cli::audit::AuditCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `tron …` works offline and needs no settings (docs/tron-protocol.md): it runs before they
    // are read, so a broken setting, a missing --config file or an absent database cannot stop it.
    let command = match cli.command {
        Command::Tron { cmd } => {
            let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
            let code = api::cli::tron::run(
                cmd,
                &mut stdin.lock(),
                &mut stdout.lock(),
                &mut stderr.lock(),
            );
            return ExitCode::from(code);
        }
        command => command,
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = match Settings::load(cli.config.as_deref(), &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    api::telemetry::init(&settings);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(command, settings)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Tron { .. } => unreachable!("`tron` runs before the settings are loaded"),
        Command::Keys { cmd } => {
            let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
            let code = api::cli::keys::run(
                cmd,
                &settings,
                &mut stdin.lock(),
                &mut stdout.lock(),
                &mut stderr.lock(),
            )
            .await;
            return Ok(ExitCode::from(code));
        }
        Command::Project(args) => {
            let db = Database::open(&settings)
                .await
                .context("open the database")?;
            let code = api::cli::project::run(args, &db.pool, shutdown_signal()).await;
            db.close().await?;
            return Ok(ExitCode::from(code));
        }
        Command::Rebuild(args) => {
            let db = Database::open(&settings)
                .await
                .context("open the database")?;
            let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
            let code =
                api::cli::rebuild::run(args, &db.pool, &mut stdout.lock(), &mut stderr.lock())
                    .await;
            db.close().await?;
            return Ok(ExitCode::from(code));
        }
        Command::Audit { cmd } => {
            let db = if api::cli::audit::needs_database(&cmd) {
                Some(
                    Database::open(&settings)
                        .await
                        .context("open the database")?,
                )
            } else {
                None
            };
            let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
            let code = api::cli::audit::run(
                cmd,
                db.as_ref().map(|d| &d.pool),
                &mut stdout.lock(),
                &mut stderr.lock(),
            )
            .await;
            if let Some(db) = db {
                db.close().await?;
            }
            return Ok(ExitCode::from(code));
        }
        Command::Token { cmd } => {
            let db = Database::open(&settings)
                .await
                .context("open the database")?;
            let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
            let code = api::cli::token::run(
                cmd,
                &settings,
                &db.pool,
                &mut stdout.lock(),
                &mut stderr.lock(),
            )
            .await;
            db.close().await?;
            return Ok(ExitCode::from(code));
        }
        Command::Serve => {
            let db = Database::open(&settings)
                .await
                .context("open the database")?;
            let served = api::cli::serve::serve(&settings, &db.pool, shutdown_signal()).await;
            db.close().await?;
            served?;
        }
        Command::BenchHttp(args) => {
            api::cli::bench_http::run(&settings, &args).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Simulate(args) => {
            api::cli::simulate::run(args, shutdown_signal()).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Migrate => {
            let db = Database::open(&settings)
                .await
                .context("open the database")?;
            println!("migrations applied");
            db.close().await?;
        }
        Command::Status => {
            let db = Database::open(&settings)
                .await
                .context("open the database")?;
            print!("{}", api::status::report(&db.pool).await?);
            db.close().await?;
        }
        Command::Run => {
            let db = Database::open(&settings)
                .await
                .context("open the database")?;
            print!("{}", api::status::report(&db.pool).await?);
            let projector =
                api::cli::project::start(&db.pool, &api::cli::project::ProjectArgs::default())?;
            let system = api::cli::run::System::start(&settings, &db.pool).await?;
            match &system.simulator {
                Some(sim) => {
                    println!("TRON node: built-in simulator at {}", system.node_url);
                    println!(
                        "  outside customer (pays deposits with POST /sim/transfer): {}",
                        sim.customer()
                    );
                    println!("  USDT contract: {}", sim.usdt_contract());
                }
                None => println!("TRON node: {}", system.node_url),
            }
            for w in &system.wallets {
                println!("pool wallet: {w}");
            }
            let state = api::cli::serve::state(
                &settings,
                &db.pool,
                system.buses.clone(),
                system.vault.clone(),
                Some(system.node.clone()),
                system.prices.clone(),
            )?
            .with_wallet_gauges(system.wallet_gauges.clone());
            let server = api::cli::serve::ApiServer::start(&settings, state).await?;
            println!("HTTP API at {}/v1 (docs/api.md)", server.url);
            println!("  a token: trx-energy token issue --role bot --subject my-bot --ttl 30d");
            println!("trx-energy is running; press Ctrl-C (or send SIGTERM) to stop");
            shutdown_signal().await;
            tracing::info!("shutting down");
            if let Err(e) = server.shutdown().await {
                tracing::error!(error = %e, "the HTTP API stopped with an error");
            }
            if let Err(e) = system.shutdown().await {
                tracing::error!(error = %e, "the engine stopped with errors");
            }
            if let Err(e) = projector.shutdown().await {
                tracing::error!(error = %e, "a projection had stopped on an error");
            }
            db.close().await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

//! `trx-energy`: the one binary of the energy-rental engine. `trx-energy --help` lists what it
//! does; `api::cli` has a module per command and `api::app` composes the processes.

use std::collections::HashMap;
use std::process::ExitCode;

use api::cli::{Cli, Command};
use api::settings::Settings;
use clap::Parser;

/// mimalloc instead of the system allocator: under load glibc's malloc took about a quarter of
/// the API's CPU (docs/api.md, "Benchmark").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `tron …` works offline and needs no settings (docs/tron-protocol.md): it runs before they
    // are read, so a broken setting, a missing --config file or an absent database cannot stop it.
    if let Command::Tron { cmd } = cli.command {
        let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
        let (input, out, err) = (&mut stdin.lock(), &mut stdout.lock(), &mut stderr.lock());
        return ExitCode::from(api::cli::tron::run(cmd, input, out, err));
    }
    // The one place the environment is read.
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
    match runtime.block_on(api::cli::dispatch(cli.command, &settings)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

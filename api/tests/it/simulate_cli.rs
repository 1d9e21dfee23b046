//! `trx-energy simulate` through the real binary: `--help` lists its flags, the defaults are the
//! documented 3 s blocks and 19 confirmations, and a child started with small numbers produces
//! blocks on its own and solidifies at the depth it was given (checked over HTTP).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use api::cli::simulate::SimulateArgs;
use clap::Parser;
use serde_json::{json, Value};
use tron_adapter::simulator::SimConfig;

const BIN: &str = env!("CARGO_BIN_EXE_trx-energy");
/// How long a bounded wait may take before the test fails.
const LIMIT: Duration = Duration::from_secs(30);

/// A running `trx-energy simulate`, killed when dropped (also when a test fails).
struct Simulate {
    child: Child,
    lines: Receiver<String>,
}

impl Simulate {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .arg("simulate")
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("TRX_SIMULATOR_API_KEY")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(LIMIT)
            .expect("the simulator printed nothing more")
    }

    /// The URL from "TRON simulator listening on <url>", and the settings line after it.
    fn url_and_summary(&self) -> (String, String) {
        let first = self.next_line();
        let url = first
            .strip_prefix("TRON simulator listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_string();
        (url, self.next_line())
    }
}

impl Drop for Simulate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post(url: &str, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

/// `getnodeinfo`'s head and solid numbers, from one answer.
async fn head_and_solid(url: &str) -> (u64, u64) {
    let info = post(url, "/wallet/getnodeinfo", json!({})).await;
    let number = |key: &str| -> u64 {
        let text = info[key].as_str().unwrap();
        let (num, _) = text.split_once(',').unwrap();
        num.strip_prefix("Num:").unwrap().parse().unwrap()
    };
    (number("block"), number("solidityBlock"))
}

async fn block_number(url: &str, path: &str) -> u64 {
    post(url, path, json!({}))
        .await
        .pointer("/block_header/raw_data/number")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

#[test]
fn help_lists_the_port_block_time_confirmations_and_dev_flags() {
    let output = Command::new(BIN)
        .args(["simulate", "--help"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    // Each flag has its own option line (not only a mention in the description), with the
    // default where there is one.
    let line_of = |flag: &str| {
        help.lines()
            .map(str::trim_start)
            .find(|line| line.split_whitespace().next() == Some(flag))
            .unwrap_or_else(|| panic!("no option line for {flag} in:\n{help}"))
            .to_string()
    };
    assert!(line_of("--port").ends_with("[default: 8090]"));
    assert!(line_of("--block-time-ms").ends_with("[default: 3000]"));
    assert!(line_of("--confirmations").ends_with("[default: 19]"));
    for flag in ["--host", "--dev", "--api-key"] {
        line_of(flag);
    }
}

/// `trx-energy simulate`'s arguments on their own, parsed the way the binary parses them.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: SimulateArgs,
}

#[test]
fn the_defaults_are_3000_ms_blocks_and_19_confirmations() {
    let cli = Cli::try_parse_from(["simulate"]).unwrap();
    assert_eq!(cli.args.block_time_ms, 3_000);
    assert_eq!(cli.args.confirmations, 19);
    assert_eq!(cli.args.port, 8090);
    assert!(!cli.args.dev);
    let config = cli.args.config();
    assert_eq!(config.block_interval, Some(Duration::from_millis(3_000)));
    assert_eq!(config.confirmations, 19);
    assert!(!config.dev);
    // The library's own default agrees with the command's.
    let library = SimConfig::default();
    assert_eq!(library.block_interval, config.block_interval);
    assert_eq!(library.confirmations, config.confirmations);
    assert_eq!(library.port, config.port);

    let cli = Cli::try_parse_from([
        "simulate",
        "--port",
        "0",
        "--block-time-ms",
        "7",
        "--confirmations",
        "2",
        "--dev",
    ])
    .unwrap();
    let config = cli.args.config();
    assert_eq!(config.port, 0);
    assert_eq!(config.block_interval, Some(Duration::from_millis(7)));
    assert_eq!(config.confirmations, 2);
    assert!(config.dev);
    let manual = Cli::try_parse_from(["simulate", "--block-time-ms", "0"]).unwrap();
    assert_eq!(manual.args.config().block_interval, None);
}

#[tokio::test]
async fn a_simulator_started_with_small_numbers_makes_blocks_and_solidifies_at_that_depth() {
    let sim = Simulate::start(&[
        "--port",
        "0",
        "--block-time-ms",
        "20",
        "--confirmations",
        "2",
        "--dev",
    ]);
    let (url, summary) = sim.url_and_summary();
    assert!(summary.contains("blocks every 20 ms"), "{summary}");
    assert!(summary.contains("solid after 2 blocks"), "{summary}");

    // 20 blocks come by themselves (at the default 3 s they would take a minute).
    let started = Instant::now();
    let (head, solid) = loop {
        let (head, solid) = head_and_solid(&url).await;
        if head >= 20 {
            break (head, solid);
        }
        assert!(
            started.elapsed() < LIMIT,
            "only {head} blocks after {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(head - solid, 2, "one answer: head {head}, solid {solid}");

    // The two paths, read one after the other while blocks keep coming: the solid block read
    // first is at least 2 below the head read after it, and the solid block read after a head
    // is at least that head − 2.
    let solid_first = block_number(&url, "/walletsolidity/getnowblock").await;
    let head_after = block_number(&url, "/wallet/getnowblock").await;
    assert!(head_after >= solid_first + 2, "{head_after} {solid_first}");
    let head_first = block_number(&url, "/wallet/getnowblock").await;
    let solid_after = block_number(&url, "/walletsolidity/getnowblock").await;
    assert!(solid_after + 2 >= head_first, "{solid_after} {head_first}");

    // --dev: the admin endpoints answer.
    let response = reqwest::get(format!("{url}/sim/info")).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn with_0_ms_blocks_come_only_when_asked_for_and_it_says_so() {
    let sim = Simulate::start(&[
        "--port",
        "0",
        "--block-time-ms",
        "0",
        "--confirmations",
        "2",
        "--dev",
    ]);
    let (url, summary) = sim.url_and_summary();
    assert!(
        summary.contains("blocks only on POST /sim/produce"),
        "{summary}"
    );
    assert!(!summary.contains("every 0 ms"), "{summary}");
    let (head, _) = head_and_solid(&url).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(head_and_solid(&url).await.0, head, "no block by itself");
    post(&url, "/sim/produce", json!({"blocks": 5})).await;
    assert_eq!(head_and_solid(&url).await, (head + 5, head + 3));
}

//! `trx-energy run` as a user starts it: one process with the built-in simulator, every worker
//! and the HTTP API. Another process (this test, with a token from `trx-energy token issue`)
//! opens an account over HTTP, a customer pays its deposit address on the simulated chain, and an
//! order placed over HTTP with that money ends up delegated on the chain.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use engine::domain::TronAddress;
use engine::testing::TestDb;
use serde_json::json;
use tron_adapter::node::{Finality, NodeClient, NodeConfig};
use tron_adapter::vault::MasterKey;

async fn poll<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_credits_a_simulated_deposit_and_delegates_a_paid_order() {
    let db = TestDb::new().await;
    let master = MasterKey::generate_hex();
    let data = std::env::temp_dir().join(format!(
        "trx-run-{}-{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_trx-energy"))
        .arg("run")
        .env("DATABASE_URL", db.url())
        .env("TRX_MASTER_KEY", master.as_str())
        .env("TRX_DATA_DIR", &data)
        .env("TRX_SIM_PORT", "0")
        .env("TRX_HTTP_ADDR", "127.0.0.1:0")
        .env("TRX_SIM_BLOCK_TIME_MS", "20")
        .env("TRX_SIM_CONFIRMATIONS", "3")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start trx-energy run");
    let stdout = child.stdout.take().unwrap();
    let (sim_url, api_url, wallets, audit_key) = tokio::task::spawn_blocking(move || {
        let mut url = None;
        let mut api = None;
        let mut audit_key = None;
        let mut wallets = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("TRON node: built-in simulator at ") {
                url = Some(rest.trim().to_string());
            }
            if let Some(rest) = line.strip_prefix("HTTP API at ") {
                let base = rest.split_whitespace().next().unwrap_or("");
                api = Some(base.trim_end_matches("/v1").to_string());
            }
            if let Some(k) = line.strip_prefix("audit key (auditors check signed heads with it): ")
            {
                audit_key = Some(k.trim().to_string());
            }
            if let Some(w) = line.strip_prefix("pool wallet: ") {
                wallets.push(TronAddress::parse(w.trim()).unwrap());
            }
            if line.starts_with("trx-energy is running") {
                break;
            }
        }
        (
            url.expect("the simulator's URL is printed"),
            api.expect("the API's URL is printed"),
            wallets,
            audit_key.expect("the audit key's public half is printed"),
        )
    })
    .await
    .unwrap();
    assert_eq!(wallets.len(), 3, "three pool wallets by default");

    // This process plays the bot, over the HTTP API: a token from `trx-energy token issue`, an
    // account, its deposit address, a payment to it on the simulated chain.
    let issue = Command::new(env!("CARGO_BIN_EXE_trx-energy"))
        .args([
            "token",
            "issue",
            "--role",
            "bot",
            "--subject",
            "the-bot",
            "--ttl",
            "1h",
        ])
        .env("DATABASE_URL", db.url())
        .env("TRX_DATA_DIR", &data)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run trx-energy token issue");
    assert!(issue.status.success(), "{issue:?}");
    let token = String::from_utf8(issue.stdout).unwrap().trim().to_string();
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let mut request = http
            .request(method, format!("{api_url}/v1{path}"))
            .bearer_auth(&token)
            .header("idempotency-key", "run-order-1");
        if let Some(b) = body {
            request = request
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            (
                status,
                serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            )
        }
    };
    let (status, body) = call(
        reqwest::Method::POST,
        "/accounts",
        Some(json!({"account_id": "tg:1"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(reqwest::Method::GET, "/accounts/tg:1/deposit-address", None).await;
    assert_eq!(status, 200, "{body}");
    let address = body["address"].as_str().unwrap().to_string();
    let sim = |path: &str, body: serde_json::Value| {
        let request = http
            .post(format!("{sim_url}/sim/{path}"))
            .body(body.to_string());
        async move {
            let r = request.send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        }
    };
    sim(
        "transfer",
        json!({"to": address, "asset": "TRX", "amount": 100_000_000}),
    )
    .await;
    poll("the deposit is credited", || async {
        let (_, b) = call(reqwest::Method::GET, "/accounts/tg:1/balances", None).await;
        b["balances"][0]["available"] == 100_000_000
    })
    .await;

    // An order to an activated receiver ends up delegated on the chain.
    let receiver = tron_adapter::PrivateKey::generate().address();
    sim(
        "activate",
        json!({"address": receiver.to_base58(), "balance": 1_000_000}),
    )
    .await;
    let (status, quote) = call(
        reqwest::Method::POST,
        "/quotes",
        Some(json!({"energy": 65_000, "duration": "1d", "receiver": receiver.to_base58()})),
    )
    .await;
    assert_eq!(status, 200, "{quote}");
    assert_eq!(quote["receiver_activated"], true);
    let (status, order) = call(
        reqwest::Method::POST,
        "/orders",
        Some(
            json!({"account_id": "tg:1", "energy": 65_000, "duration": "1d",
                    "receiver": receiver.to_base58()}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    let order_path = format!("/orders/{}", order["order_id"].as_str().unwrap());
    poll("the order is active", || async {
        call(reqwest::Method::GET, &order_path, None).await.1["status"] == "Active"
    })
    .await;
    let (_, active) = call(reqwest::Method::GET, &order_path, None).await;
    assert_eq!(active["delegation_txid"].as_str().map(str::len), Some(64));
    let node = NodeClient::new(NodeConfig::new(&sim_url)).unwrap();
    let energy = node
        .account_resource(&receiver, Finality::Head)
        .await
        .unwrap()
        .unwrap()
        .energy_limit;
    assert!(energy >= 65_000, "the receiver has {energy} energy");

    // The sequencer signed heads of the audit chain with the audit key `run` printed.
    let stored: Vec<(String,)> =
        sqlx::query_as("SELECT encode(public_key, 'hex') FROM audit_heads ORDER BY to_seq")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert!(
        !stored.is_empty(),
        "the sequencer signs a head at its first batch"
    );
    assert!(
        stored.iter().all(|(k,)| *k == audit_key),
        "signed by the printed key {audit_key}: {stored:?}"
    );

    // SIGTERM: a clean stop.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(&data);
}

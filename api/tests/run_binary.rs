//! `trx-energy run` as a user starts it: one process with the built-in simulator and every
//! worker. Another process (this test) opens an account, a customer pays its deposit address
//! on the simulated chain, and an order placed with that money ends up delegated on the chain.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use engine::domain::account::AccountCommand;
use engine::domain::order::{OrderCommand, OrderPolicy, OrderStatus};
use engine::domain::{AccountId, Asset, DurationTier, PriceTable, TronAddress};
use engine::process::Buses;
use engine::store::{Actor, CommandMetadata};
use engine::testing::TestDb;
use serde_json::json;
use tron_adapter::node::{Finality, NodeClient, NodeConfig};
use tron_adapter::vault::{KeyVault, Keyring, MasterKey};

fn meta() -> CommandMetadata {
    CommandMetadata::new(Actor::new("bot", "bot"))
}

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
        .env("TRX_SIM_BLOCK_TIME_MS", "20")
        .env("TRX_SIM_CONFIRMATIONS", "3")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start trx-energy run");
    let stdout = child.stdout.take().unwrap();
    let (sim_url, wallets) = tokio::task::spawn_blocking(move || {
        let mut url = None;
        let mut wallets = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("TRON node: built-in simulator at ") {
                url = Some(rest.trim().to_string());
            }
            if let Some(w) = line.strip_prefix("pool wallet: ") {
                wallets.push(TronAddress::parse(w.trim()).unwrap());
            }
            if line.starts_with("trx-energy is running") {
                break;
            }
        }
        (url.expect("the simulator's URL is printed"), wallets)
    })
    .await
    .unwrap();
    assert_eq!(wallets.len(), 3, "three pool wallets by default");

    // This process plays the bot: an account, its deposit address, a payment to it.
    let buses = Buses::new(
        db.pool.clone(),
        OrderPolicy {
            prices: PriceTable::sample(),
            pool_wallets: wallets.iter().copied().collect::<BTreeSet<_>>(),
            ..OrderPolicy::default()
        },
    );
    let open = AccountCommand::OpenAccount {
        account_id: AccountId::parse("tg:1").unwrap(),
        at: Utc::now(),
    };
    assert!(buses
        .account
        .execute("tg:1", open, meta())
        .await
        .unwrap()
        .is_accepted());
    let vault = KeyVault::new(
        db.pool.clone(),
        Keyring::new(MasterKey::from_hex(master.as_str()).unwrap()),
    );
    let address = vault.deposit_address("tg:1").await.unwrap().address;
    let http = reqwest::Client::new();
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
        json!({"to": address.to_base58(), "asset": "TRX", "amount": 100_000_000}),
    )
    .await;
    poll("the deposit is credited", || async {
        buses
            .account
            .load("tg:1")
            .await
            .unwrap()
            .0
            .balance(Asset::Trx)
            .available
            == 100_000_000
    })
    .await;

    // An order to an activated receiver ends up delegated on the chain.
    let receiver = tron_adapter::PrivateKey::generate().address();
    sim(
        "activate",
        json!({"address": receiver.to_base58(), "balance": 1_000_000}),
    )
    .await;
    let place = OrderCommand::PlaceOrder {
        account_id: AccountId::parse("tg:1").unwrap(),
        receiver,
        energy: 65_000,
        duration: DurationTier::OneDay,
        asset: Asset::Trx,
        max_price: None,
        at: Utc::now(),
    };
    assert!(buses
        .order
        .execute("o-1", place, meta())
        .await
        .unwrap()
        .is_accepted());
    poll("the order is active", || async {
        buses.order.load("o-1").await.unwrap().0.status() == OrderStatus::Active
    })
    .await;
    let node = NodeClient::new(NodeConfig::new(&sim_url)).unwrap();
    let energy = node
        .account_resource(&receiver, Finality::Head)
        .await
        .unwrap()
        .unwrap()
        .energy_limit;
    assert!(energy >= 65_000, "the receiver has {energy} energy");

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

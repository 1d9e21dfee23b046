//! Shared helpers for the simulator tests: a simulator on 127.0.0.1 with a client that retries
//! fast, keys, transaction building from the node's head block, admin calls and bounded polls.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::{json, Value};
use tron_adapter::keys::sha256;
use tron_adapter::node::{Finality, NodeClient, NodeConfig, RetryPolicy, TransactionInfo};
use tron_adapter::simulator::{SimConfig, SimHandle, Simulator};
use tron_adapter::tx::{self, ContractCall, Resource, SignedTransaction, TxContract, TxId};
use tron_adapter::{PrivateKey, TronAddress};

pub const TRX: i64 = 1_000_000;
/// How long a bounded poll may take before the test fails.
pub const POLL_LIMIT: Duration = Duration::from_secs(20);

/// A deterministic key for a test role.
pub fn key(label: &str) -> PrivateKey {
    PrivateKey::from_bytes(&sha256(label.as_bytes())).unwrap()
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(40),
    }
}

pub fn client_for(sim: &SimHandle) -> NodeClient {
    let mut config = NodeConfig::new(sim.base_url());
    config.retry = fast_retry();
    config.timeout = Duration::from_secs(5);
    NodeClient::new(config).unwrap()
}

pub async fn start(config: SimConfig) -> (SimHandle, NodeClient) {
    let sim = Simulator::start(config).await.unwrap();
    let client = client_for(&sim);
    (sim, client)
}

/// `POST /sim/<path>`; panics unless HTTP 200.
pub async fn admin(sim: &SimHandle, path: &str, body: Value) -> Value {
    let (status, value) = admin_raw(sim, path, body).await;
    assert_eq!(status, 200, "/sim/{path}: {value}");
    value
}

pub async fn admin_raw(sim: &SimHandle, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/sim/{path}", sim.base_url()))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Creates and funds `address` with `trx` whole TRX.
pub async fn activate(sim: &SimHandle, address: &TronAddress, trx: i64) {
    admin(
        sim,
        "activate",
        json!({"address": address.to_base58(), "balance": trx * TRX}),
    )
    .await;
}

/// Stakes `trx` whole TRX for energy.
pub async fn stake(sim: &SimHandle, address: &TronAddress, trx: i64) -> Value {
    admin(
        sim,
        "stake",
        json!({"address": address.to_base58(), "amount": trx * TRX}),
    )
    .await
}

/// Builds on the node's head block (timestamp = head time) with a one-hour expiration, so a
/// slow machine never sees it expire by accident.
pub async fn build(client: &NodeClient, call: ContractCall) -> tx::RawData {
    build_contract(client, TxContract::new(call)).await
}

pub async fn build_contract(client: &NodeClient, contract: TxContract) -> tx::RawData {
    let mut params = client.reference().await.unwrap();
    params.expiration = params.timestamp + 3_600_000;
    tx::build(contract, &params).unwrap()
}

pub async fn signed(
    client: &NodeClient,
    owner: &PrivateKey,
    call: ContractCall,
) -> SignedTransaction {
    SignedTransaction::sign(build(client, call).await, owner)
}

pub fn delegate(
    owner: &TronAddress,
    receiver: &TronAddress,
    sun: i64,
    lock: bool,
    lock_period: i64,
) -> ContractCall {
    ContractCall::DelegateResource(tx::DelegateResource {
        owner: *owner,
        resource: Resource::Energy,
        balance: sun,
        receiver: *receiver,
        lock,
        lock_period,
    })
}

pub fn undelegate(owner: &TronAddress, receiver: &TronAddress, sun: i64) -> ContractCall {
    ContractCall::UnDelegateResource(tx::UnDelegateResource {
        owner: *owner,
        resource: Resource::Energy,
        balance: sun,
        receiver: *receiver,
    })
}

pub fn transfer(owner: &TronAddress, to: &TronAddress, sun: i64) -> ContractCall {
    ContractCall::Transfer(tx::Transfer {
        owner: *owner,
        to: *to,
        amount: sun,
    })
}

/// Polls `gettransactioninfobyid` on `finality` until the transaction is there (bounded).
pub async fn wait_info(client: &NodeClient, txid: &TxId, finality: Finality) -> TransactionInfo {
    let deadline = tokio::time::Instant::now() + POLL_LIMIT;
    loop {
        if let Some(info) = client.transaction_info(txid, finality).await.unwrap() {
            return info;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{txid} never reached {finality:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the head is at least `blocks` past its current number (bounded).
pub async fn wait_blocks(sim: &SimHandle, blocks: u64) {
    let target = sim.head_number() + blocks;
    assert!(
        sim.wait_for_block(target, POLL_LIMIT).await,
        "block {target} never came"
    );
}

/// The account's `EnergyLimit` on the head (0 when absent or no account).
pub async fn energy_limit(client: &NodeClient, address: &TronAddress) -> i64 {
    client
        .account_resource(address, Finality::Head)
        .await
        .unwrap()
        .map(|r| r.energy_limit)
        .unwrap_or(0)
}

//! Every fault of `/sim/faults` once against the client: what is transient is retried, what is
//! not is reported as a typed error or a classified reply.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tron_adapter::node::{
    BroadcastClass, Finality, NodeClient, NodeConfig, NodeError, ResponseCode,
};
use tron_adapter::simulator::SimConfig;
use tron_adapter::tx::TxContract;

async fn funded() -> (
    tron_adapter::simulator::SimHandle,
    NodeClient,
    tron_adapter::PrivateKey,
) {
    let (sim, client) = start(SimConfig::for_tests()).await;
    let owner = key("faulty owner");
    activate(&sim, &owner.address(), 1_000).await;
    stake(&sim, &owner.address(), 500).await;
    activate(&sim, &key("faulty renter").address(), 1).await;
    (sim, client, owner)
}

fn lend(owner: &tron_adapter::PrivateKey, trx: i64) -> tron_adapter::tx::ContractCall {
    delegate(
        &owner.address(),
        &key("faulty renter").address(),
        trx * TRX,
        false,
        0,
    )
}

#[tokio::test]
async fn a_lost_response_after_acceptance_is_retried_and_reported_as_already_known() {
    let (sim, client, owner) = funded().await;
    let tx = signed(&client, &owner, lend(&owner, 10)).await;
    admin(&sim, "faults", json!({"lose_broadcast_responses": 1})).await;
    let reply = client.broadcast_hex(&tx).await.unwrap();
    // The first answer was lost; the retry found the transaction already pooled.
    assert_eq!(reply.code, ResponseCode::DupTransactionError);
    assert_eq!(reply.class(), BroadcastClass::AlreadyKnown);
    let info = wait_info(&client, &tx.txid(), Finality::Head).await;
    assert!(info.succeeded());
    // Without retries the loss is a transient transport error.
    let tx = signed(&client, &owner, lend(&owner, 11)).await;
    admin(&sim, "faults", json!({"lose_broadcast_responses": 1})).await;
    let mut config = NodeConfig::new(sim.base_url());
    config.retry.max_attempts = 1;
    let single = NodeClient::new(config).unwrap();
    let err = single.broadcast_hex(&tx).await.unwrap_err();
    assert!(matches!(err, NodeError::Transport { .. }), "{err:?}");
    assert!(err.is_transient());
    wait_info(&client, &tx.txid(), Finality::Head).await;
}

#[tokio::test]
async fn http_5xx_is_retried_and_gives_up_after_the_attempts() {
    let (sim, client, _) = funded().await;
    admin(&sim, "faults", json!({"http_5xx": 2})).await;
    client.now_block(Finality::Head).await.unwrap();
    let text = reqwest::get(format!("{}/sim/faults", sim.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let left: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(left["http_5xx"], 0, "both 503s were met and retried past");
    admin(&sim, "faults", json!({"http_5xx": 10})).await;
    let err = client.node_info().await.unwrap_err();
    match &err {
        NodeError::GaveUp { attempts, last, .. } => {
            assert_eq!(*attempts, 4);
            assert!(matches!(**last, NodeError::Http { status: 503, .. }));
        }
        other => panic!("{other:?}"),
    }
    admin(&sim, "faults", json!({"clear": true})).await;
    client.node_info().await.unwrap();
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let (sim, _, _) = funded().await;
    let mut config = NodeConfig::new(sim.base_url());
    config.timeout = Duration::from_millis(300);
    config.retry = fast_retry();
    let client = NodeClient::new(config).unwrap();
    admin(&sim, "faults", json!({"timeouts": 1, "hang_ms": 5_000})).await;
    let block = client.now_block(Finality::Head).await;
    assert!(block.is_ok(), "{block:?}");
    admin(&sim, "faults", json!({"timeouts": 4, "hang_ms": 5_000})).await;
    let err = client.now_block(Finality::Head).await.unwrap_err();
    match err {
        NodeError::GaveUp { last, .. } => assert!(matches!(*last, NodeError::Timeout { .. })),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn latency_slows_answers_but_they_arrive() {
    let (sim, client, owner) = funded().await;
    let latency = Duration::from_millis(150);
    admin(
        &sim,
        "faults",
        json!({"latency_ms": latency.as_millis() as u64}),
    )
    .await;
    // Every node request waits first, on both paths (only lower bounds: a slow machine may
    // take longer, never shorter).
    let started = Instant::now();
    client.now_block(Finality::Head).await.unwrap();
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());
    let started = Instant::now();
    client.now_block(Finality::Solid).await.unwrap();
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());
    let tx = signed(&client, &owner, lend(&owner, 10)).await;
    let started = Instant::now();
    assert_eq!(
        client.broadcast_hex(&tx).await.unwrap().class(),
        BroadcastClass::Accepted
    );
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());
    let started = Instant::now();
    wait_info(&client, &tx.txid(), Finality::Head).await;
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());
    let faults = admin(&sim, "faults", json!({"latency_ms": 0})).await;
    assert_eq!(faults["latency_ms"], 0);
}

#[tokio::test]
async fn an_accepted_transaction_that_is_never_included_stays_unseen_until_it_expires() {
    let (sim, client, owner) = start_manual_funded().await;
    admin(&sim, "faults", json!({"never_include": 1})).await;
    let head = client.now_block(Finality::Head).await.unwrap();
    let mut params = tron_adapter::tx::TxParams::new(head.ref_block(), head.timestamp);
    params.expiration = head.timestamp + 60_000;
    let raw = tron_adapter::tx::build(TxContract::new(lend(&owner, 10)), &params).unwrap();
    let tx = tron_adapter::tx::SignedTransaction::sign(raw, &owner);
    assert_eq!(
        client.broadcast_hex(&tx).await.unwrap().class(),
        BroadcastClass::Accepted
    );
    sim.produce_blocks(3);
    assert!(client
        .transaction_info(&tx.txid(), Finality::Head)
        .await
        .unwrap()
        .is_none());
    // Resending the same bytes: the node has it (so it is not resent), yet it never lands.
    assert_eq!(
        client.broadcast_hex(&tx).await.unwrap().class(),
        BroadcastClass::AlreadyKnown
    );
    // Past its expiration (60 s = 20 blocks) it is provably not executed: only now rebuild.
    sim.produce_blocks(25);
    assert!(client
        .transaction_info(&tx.txid(), Finality::Head)
        .await
        .unwrap()
        .is_none());
    let head = client.now_block(Finality::Head).await.unwrap();
    assert!(head.timestamp > tx.raw.expiration);
    let rebuilt = signed(&client, &owner, lend(&owner, 10)).await;
    assert_ne!(rebuilt.txid(), tx.txid());
    assert_eq!(
        client.broadcast_hex(&rebuilt).await.unwrap().class(),
        BroadcastClass::Accepted
    );
    sim.produce_blocks(1);
    assert!(client
        .transaction_info(&rebuilt.txid(), Finality::Head)
        .await
        .unwrap()
        .is_some());
}

async fn start_manual_funded() -> (
    tron_adapter::simulator::SimHandle,
    NodeClient,
    tron_adapter::PrivateKey,
) {
    let (sim, client) = start(SimConfig::manual()).await;
    let owner = key("faulty owner");
    activate(&sim, &owner.address(), 1_000).await;
    stake(&sim, &owner.address(), 500).await;
    activate(&sim, &key("faulty renter").address(), 1).await;
    sim.produce_blocks(1);
    (sim, client, owner)
}

#[tokio::test]
async fn server_busy_is_retried_with_the_same_bytes() {
    let (sim, client, owner) = funded().await;
    admin(&sim, "faults", json!({"server_busy": 2})).await;
    let tx = signed(&client, &owner, lend(&owner, 10)).await;
    let reply = client.broadcast_hex(&tx).await.unwrap();
    assert_eq!(reply.class(), BroadcastClass::Accepted, "{reply:?}");
    // When it stays busy the client returns the transient reply for the caller to retry later.
    admin(&sim, "faults", json!({"server_busy": 10})).await;
    let tx = signed(&client, &owner, lend(&owner, 11)).await;
    let reply = client.broadcast_hex(&tx).await.unwrap();
    assert_eq!(reply.code, ResponseCode::ServerBusy);
    assert_eq!(reply.class(), BroadcastClass::Transient);
}

#[tokio::test]
async fn garbage_from_the_node_is_a_typed_error_not_retried() {
    let (sim, client, _) = funded().await;
    admin(&sim, "faults", json!({"garbage": 1})).await;
    let err = client.now_block(Finality::Head).await.unwrap_err();
    assert!(matches!(err, NodeError::Malformed { .. }), "{err:?}");
    assert!(!err.is_transient());
    client.now_block(Finality::Head).await.unwrap();
}

#[tokio::test]
async fn a_node_built_transaction_that_differs_from_the_request_is_refused() {
    let (sim, client, owner) = funded().await;
    let contract = TxContract::new(lend(&owner, 10));
    let raw = client.build_via_node(&contract).await.unwrap();
    assert_eq!(raw.contracts[0], contract);
    admin(&sim, "faults", json!({"tamper_built": 1})).await;
    let err = client.build_via_node(&contract).await.unwrap_err();
    assert!(matches!(err, NodeError::NodeBuilt(_)), "{err:?}");
    // The engine signs only what it built; the untampered node build is usable as is.
    let tx = tron_adapter::tx::SignedTransaction::sign(raw, &owner);
    assert_eq!(
        client.broadcast_hex(&tx).await.unwrap().class(),
        BroadcastClass::Accepted
    );
}

#[tokio::test]
async fn the_api_key_header_is_sent_when_configured() {
    let mut config = SimConfig::for_tests();
    config.api_key = Some(tron_adapter::node::ApiKey::new("test-key-123"));
    assert!(!format!("{config:?}").contains("test-key-123"));
    let sim = tron_adapter::simulator::Simulator::start(config)
        .await
        .unwrap();
    let anonymous = client_for(&sim);
    let err = anonymous.now_block(Finality::Head).await.unwrap_err();
    assert!(
        matches!(err, NodeError::Http { status: 401, .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());
    let mut keyed = NodeConfig::new(sim.base_url());
    keyed.api_key = Some(tron_adapter::node::ApiKey::new("test-key-123"));
    let debug = format!("{keyed:?}");
    assert!(
        !debug.contains("test-key-123"),
        "the key never shows: {debug}"
    );
    let client = NodeClient::new(keyed).unwrap();
    client.now_block(Finality::Head).await.unwrap();
}

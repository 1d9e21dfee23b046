//! Bad input: garbage JSON, wrong types, unknown addresses, odd-length hex and oversized bodies
//! sent to the simulator get the node's error shapes, never a crash; a node answering garbage
//! gets a typed client error, never a panic.

use crate::common;

use axum::routing::any;
use axum::Router;
use common::*;
use serde_json::{json, Value};
use tron_adapter::node::{Finality, NodeClient, NodeConfig, NodeError};
use tron_adapter::simulator::SimConfig;
use tron_adapter::tx::{
    ContractCall, RefBlock, Resource, SignedTransaction, TxContract, TxId, TxParams,
};

async fn post(base: &str, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn error_of(text: &str) -> String {
    let value: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    value["Error"]
        .as_str()
        .unwrap_or_else(|| panic!("not an Error shape: {text}"))
        .to_string()
}

#[tokio::test]
async fn the_simulator_answers_bad_requests_with_the_nodes_error_shapes() {
    let (sim, client) = start(SimConfig::for_tests()).await;
    let base = sim.base_url().to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        ("/wallet/getaccount", "{not json".into(), "JSONException"),
        ("/wallet/getaccount", "[1,2,3]".into(), "JSONException"),
        (
            "/wallet/getaccount",
            "\"just a string\"".into(),
            "JSONException",
        ),
        (
            "/wallet/getblockbynum",
            r#"{"num": "twelve"}"#.into(),
            "ParseException",
        ),
        (
            "/wallet/getblockbynum",
            r#"{"num": {"a": 1}}"#.into(),
            "ParseException",
        ),
        (
            "/wallet/getaccount",
            r#"{"address": 42}"#.into(),
            "ParseException",
        ),
        (
            "/wallet/getaccount",
            r#"{"address": "T-not-an-address", "visible": true}"#.into(),
            "NullPointerException",
        ),
        (
            "/wallet/getaccount",
            r#"{"address": "41abc"}"#.into(),
            "NullPointerException",
        ),
        (
            "/wallet/getaccount",
            r#"{"visible": 7}"#.into(),
            "ParseException",
        ),
        (
            "/wallet/broadcasthex",
            r#"{"transaction": "abc"}"#.into(),
            "DecoderException",
        ),
        (
            "/wallet/broadcasthex",
            r#"{"transaction": "zz"}"#.into(),
            "DecoderException",
        ),
        (
            "/wallet/broadcasthex",
            r#"{"transaction": "0a0b0c"}"#.into(),
            "InvalidProtocolBufferException",
        ),
        ("/wallet/broadcasthex", "{}".into(), "NullPointerException"),
        (
            "/wallet/broadcasttransaction",
            r#"{"signature": []}"#.into(),
            "NullPointerException",
        ),
        (
            "/wallet/broadcasttransaction",
            r#"{"raw_data": 5}"#.into(),
            "ParseException",
        ),
        (
            "/wallet/gettransactionbyid",
            r#"{"value": "abc"}"#.into(),
            "DecoderException",
        ),
        (
            "/wallet/gettransactioninfobyid",
            r#"{"value": true}"#.into(),
            "ParseException",
        ),
        (
            "/wallet/getcandelegatedmaxsize",
            r#"{"owner_address": "41a614f803b6fd780986a42c78ec9c7f77e6ded13c", "type": 9}"#.into(),
            "IllegalArgumentException",
        ),
        (
            "/wallet/getblock",
            r#"{"id_or_num": "not-a-block"}"#.into(),
            "IllegalArgumentException",
        ),
        (
            "/wallet/delegateresource",
            r#"{"owner_address": "41a614f803b6fd780986a42c78ec9c7f77e6ded13c"}"#.into(),
            "NullPointerException",
        ),
        (
            "/wallet/triggerconstantcontract",
            r#"{"contract_address": "41a614f803b6fd780986a42c78ec9c7f77e6ded13c"}"#.into(),
            "IllegalArgumentException",
        ),
    ];
    for (path, body, class) in cases {
        let (status, text) = post(&base, path, body.clone()).await;
        assert_eq!(status, 200, "{path} {body}: {text}");
        let error = error_of(&text);
        assert!(
            error.starts_with("class ") && error.contains(class),
            "{path} {body}: {error}"
        );
    }

    // Unknown but valid addresses and ids: `{}`, as the node says "not found".
    let nobody = key("nobody at all").address();
    for (path, body) in [
        ("/wallet/getaccount", json!({"address": nobody.to_hex()})),
        (
            "/wallet/getaccountresource",
            json!({"address": nobody.to_base58(), "visible": true}),
        ),
        (
            "/walletsolidity/getaccount",
            json!({"address": nobody.to_hex()}),
        ),
        (
            "/wallet/getcandelegatedmaxsize",
            json!({"owner_address": nobody.to_hex(), "type": 1}),
        ),
        (
            "/wallet/getdelegatedresourcev2",
            json!({"fromAddress": nobody.to_hex(), "toAddress": nobody.to_hex()}),
        ),
        (
            "/wallet/gettransactionbyid",
            json!({"value": "00".repeat(32)}),
        ),
        (
            "/wallet/gettransactioninfobyid",
            json!({"value": "11".repeat(32)}),
        ),
        ("/wallet/getblockbynum", json!({"num": 99_999_999})),
        ("/wallet/getblockbynum", json!({"num": -1})),
    ] {
        let (status, text) = post(&base, path, body.to_string()).await;
        assert_eq!((status, text.as_str()), (200, "{}"), "{path}");
    }
    let (_, text) = post(
        &base,
        "/wallet/gettransactioninfobyblocknum",
        r#"{"num": 99999999}"#,
    )
    .await;
    assert_eq!(text, "[]");

    // Oversized body: HTTP 413. Unknown endpoint: 404. Broadcast on the solidity path: 404.
    let (status, _) = post(&base, "/wallet/getaccount", vec![b'a'; 5 * 1024 * 1024]).await;
    assert_eq!(status, 413);
    let (status, _) = post(&base, "/wallet/nosuchthing", "{}").await;
    assert_eq!(status, 404);
    let (status, _) = post(&base, "/walletsolidity/broadcasthex", "{}").await;
    assert_eq!(status, 404);

    // Admin endpoints refuse bad bodies with 400 and stay up.
    for body in [
        json!("nope"),
        json!({"address": "x"}),
        json!({"address": nobody.to_base58(), "balance": "lots"}),
        json!({"extra": 1}),
    ] {
        let (status, value) = admin_raw(&sim, "activate", body).await;
        assert_eq!(status, 400, "{value}");
        assert!(value["Error"].is_string());
    }
    let (status, _) = admin_raw(
        &sim,
        "stake",
        json!({"address": nobody.to_base58(), "amount": 5_000_000}),
    )
    .await;
    assert_eq!(status, 400, "staking on an account that does not exist");
    let (status, _) = admin_raw(
        &sim,
        "transfer",
        json!({"to": nobody.to_base58(), "asset": "DOGE", "amount": 1}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = admin_raw(&sim, "faults", json!({"unknown_fault": 1})).await;
    assert_eq!(status, 400);

    // Still serving.
    client.now_block(Finality::Head).await.unwrap();
}

#[tokio::test]
async fn the_admin_endpoints_are_not_served_unless_the_simulator_runs_for_dev() {
    let config = SimConfig {
        dev: false,
        ..SimConfig::manual()
    };
    let (sim, client) = start(config).await;
    let base = sim.base_url().to_string();
    let who = key("not a dev account").address();
    let head = sim.head_number();
    // Bodies a dev simulator accepts (HTTP 200): only the missing route makes them 404.
    for (path, body) in [
        (
            "activate",
            json!({"address": who.to_base58(), "balance": 100 * TRX}),
        ),
        ("stake", json!({"address": who.to_base58(), "amount": TRX})),
        (
            "transfer",
            json!({"to": who.to_base58(), "asset": "TRX", "amount": TRX}),
        ),
        ("faults", json!({"http_5xx": 1})),
        ("produce", json!({"blocks": 3})),
        ("advance", json!({"ms": 60_000})),
    ] {
        let (status, text) = post(&base, &format!("/sim/{path}"), body.to_string()).await;
        assert_eq!(status, 404, "POST /sim/{path}: {text}");
    }
    for path in ["faults", "info"] {
        let status = reqwest::get(format!("{base}/sim/{path}"))
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "GET /sim/{path}");
    }
    // The node is served, and none of the calls above took effect.
    let (status, text) = post(&base, "/wallet/getnowblock", "{}").await;
    assert_eq!(status, 200, "{text}");
    let status = reqwest::get(format!("{base}/wallet/getnowblock"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert_eq!(sim.head_number(), head, "no block was produced");
    assert!(client
        .account(&who, Finality::Head)
        .await
        .unwrap()
        .is_none());
    let mut config = NodeConfig::new(sim.base_url());
    config.retry.max_attempts = 1;
    let single = NodeClient::new(config).unwrap();
    single.node_info().await.expect("no 5xx fault was set");
}

#[tokio::test]
async fn visible_true_answers_in_base58_and_text() {
    let (sim, _) = start(SimConfig::for_tests()).await;
    let base = sim.base_url().to_string();
    let who = key("visible account").address();
    activate(&sim, &who, 5).await;
    let (_, text) = post(
        &base,
        "/wallet/getaccount",
        json!({"address": who.to_base58(), "visible": true}).to_string(),
    )
    .await;
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["address"], who.to_base58());
    // GET with the query string works too.
    let text = reqwest::get(format!("{base}/wallet/getnowblock?visible=true"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let block: Value = serde_json::from_str(&text).unwrap();
    assert!(block["block_header"]["raw_data"]["witness_address"]
        .as_str()
        .unwrap()
        .starts_with('T'));
    // broadcasttransaction: the message is hex unless visible.
    let body = json!({"raw_data": {"contract": [], "ref_block_bytes": "0000", "ref_block_hash": "0000000000000000", "expiration": 1, "timestamp": 1}, "signature": []});
    let (_, text) = post(&base, "/wallet/broadcasttransaction", body.to_string()).await;
    let hexed: Value = serde_json::from_str(&text).unwrap();
    let mut visible = body.clone();
    visible["visible"] = json!(true);
    let (_, text) = post(&base, "/wallet/broadcasttransaction", visible.to_string()).await;
    let plain: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(hexed["code"], plain["code"]);
    assert_eq!(
        hex::decode(hexed["message"].as_str().unwrap()).unwrap(),
        plain["message"].as_str().unwrap().as_bytes()
    );
}

/// A fake node that answers every request with the same body and status.
async fn fake_node(status: u16, body: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new().fallback(any(move || async move {
        (axum::http::StatusCode::from_u16(status).unwrap(), body)
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), task)
}

/// The typed error a call must give.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Malformed,
    Servlet,
    Http(u16),
    GaveUpOn(u16),
}

impl Refusal {
    fn matches(self, error: &NodeError) -> bool {
        match (self, error) {
            (Self::Malformed, NodeError::Malformed { .. }) => true,
            (Self::Servlet, NodeError::Servlet { .. }) => true,
            (Self::Http(want), NodeError::Http { status, .. }) => *status == want,
            (Self::GaveUpOn(want), NodeError::GaveUp { last, .. }) => {
                matches!(**last, NodeError::Http { status, .. } if status == want)
            }
            _ => false,
        }
    }
}

fn client_of(base: String) -> NodeClient {
    let mut config = NodeConfig::new(base);
    config.retry = fast_retry();
    NodeClient::new(config).unwrap()
}

fn shown<T: std::fmt::Debug>(result: Result<T, NodeError>) -> Result<String, NodeError> {
    result.map(|value| format!("{value:?}"))
}

/// Every typed call the client makes whose answer is one JSON object, with what it returned.
async fn every_object_call(client: &NodeClient) -> Vec<(&'static str, Result<String, NodeError>)> {
    let txid = TxId([7u8; 32]);
    let who = key("garbage account").address();
    let contract = TxContract::new(ContractCall::Transfer(tron_adapter::tx::Transfer {
        owner: who,
        to: key("garbage recipient").address(),
        amount: TRX,
    }));
    let params = TxParams::new(RefBlock::from_block_id(&[1u8; 32]), 1_700_000_000_000);
    let tx = SignedTransaction::sign(
        tron_adapter::tx::build(contract, &params).unwrap(),
        &key("garbage account"),
    );
    vec![
        ("now_block", shown(client.now_block(Finality::Head).await)),
        (
            "block_by_num",
            shown(client.block_by_num(5, Finality::Solid).await),
        ),
        (
            "head_header",
            shown(client.head_header(Finality::Head).await),
        ),
        (
            "transaction_info",
            shown(client.transaction_info(&txid, Finality::Solid).await),
        ),
        (
            "transaction",
            shown(client.transaction(&txid, Finality::Head).await),
        ),
        ("account", shown(client.account(&who, Finality::Head).await)),
        (
            "account_resource",
            shown(client.account_resource(&who, Finality::Head).await),
        ),
        (
            "can_delegated_max_size",
            shown(
                client
                    .can_delegated_max_size(&who, Resource::Energy, Finality::Head)
                    .await,
            ),
        ),
        (
            "delegated_resources",
            shown(client.delegated_resources(&who, &who, Finality::Head).await),
        ),
        ("node_info", shown(client.node_info().await)),
        ("chain_parameters", shown(client.chain_parameters().await)),
        (
            "trc20_balance_of",
            shown(client.trc20_balance_of(&who, &who, Finality::Head).await),
        ),
        ("broadcast_hex", shown(client.broadcast_hex(&tx).await)),
    ]
}

#[tokio::test]
async fn a_node_answering_garbage_gets_typed_errors() {
    // None of these is an answer the protocol allows for any call: every call is refused with
    // the typed error given, never accepted as an empty answer, never a panic.
    let answers: &[(u16, &'static str, Refusal)] = &[
        (200, "<html>hello</html>", Refusal::Malformed),
        (200, "", Refusal::Malformed),
        (200, "[1, 2", Refusal::Malformed),
        (200, "null", Refusal::Malformed),
        (200, "42", Refusal::Malformed),
        (200, "true", Refusal::Malformed),
        (200, "\"text\"", Refusal::Malformed),
        (200, "[]", Refusal::Malformed),
        (200, "[5]", Refusal::Malformed),
        (200, "[[]]", Refusal::Malformed),
        (200, "{\"blockID\": 5}", Refusal::Malformed),
        (200, "{\"id\": \"not hex\"}", Refusal::Malformed),
        (
            200,
            "{\"txID\": \"00\", \"raw_data_hex\": \"zz\"}",
            Refusal::Malformed,
        ),
        (200, "{\"result\": \"yes\"}", Refusal::Malformed),
        (
            200,
            "{\"block\": \"Num:x\", \"solidityBlock\": 3}",
            Refusal::Malformed,
        ),
        (200, "{\"Error\": {\"nested\": true}}", Refusal::Servlet),
        (404, "not here", Refusal::Http(404)),
        (500, "{}", Refusal::GaveUpOn(500)),
    ];
    for (status, body, refusal) in answers {
        let (base, task) = fake_node(*status, body).await;
        let client = client_of(base);
        for (call, result) in every_object_call(&client).await {
            match result {
                Err(e) => assert!(refusal.matches(&e), "{status} {body} {call}: {e:?}"),
                Ok(value) => panic!("{status} {body} {call}: accepted as {value}"),
            }
        }
        task.abort();
    }

    // `{}` is the node's "not found" (or "0") where the protocol says so, and nowhere else.
    let (base, task) = fake_node(200, "{}").await;
    let client = client_of(base);
    for (call, result) in every_object_call(&client).await {
        let allowed = match call {
            "block_by_num" | "transaction_info" | "transaction" | "account"
            | "account_resource" => Some("None"),
            "can_delegated_max_size" => Some("0"),
            "delegated_resources" => Some("[]"),
            _ => None,
        };
        match (allowed, result) {
            (Some(want), Ok(got)) => assert_eq!(got, want, "{{}} {call}"),
            (None, Err(e)) => assert!(Refusal::Malformed.matches(&e), "{{}} {call}: {e:?}"),
            (want, got) => panic!("{{}} {call}: wanted {want:?}, got {got:?}"),
        }
    }
    task.abort();

    // A huge answer is refused by size.
    let huge: &'static str = Box::leak("x".repeat(4096).into_boxed_str());
    let (base, task) = fake_node(200, huge).await;
    let mut config = NodeConfig::new(base);
    config.max_response_bytes = 1024;
    let client = NodeClient::new(config).unwrap();
    let err = client.node_info().await.unwrap_err();
    assert!(matches!(err, NodeError::TooLarge { .. }), "{err:?}");
    task.abort();
    // Nobody listening: transport errors, retried, then given up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut config = NodeConfig::new(closed);
    config.retry = fast_retry();
    let err = NodeClient::new(config)
        .unwrap()
        .node_info()
        .await
        .unwrap_err();
    assert!(matches!(err, NodeError::GaveUp { .. }), "{err:?}");
    assert!(matches!(
        NodeClient::new(NodeConfig::new("ftp://x")),
        Err(NodeError::BadUrl(_))
    ));
}

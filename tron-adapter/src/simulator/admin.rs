//! The scriptable world (`/sim/…`), served only when the simulator runs for dev or tests:
//! create and fund accounts, stake, pay from the outside customer, inject faults, step blocks
//! and time. Errors are HTTP 400 with `{"Error": …}`; these are not node endpoints.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::chain::{View, WorldOp};
use super::faults::FaultsRequest;
use super::Shared;
use crate::trc20;
use crate::tx::{self, ContractCall, Resource, SignedTransaction, TxContract};
use crate::TronAddress;

/// Fee limit of the customer's USDT payments (100 TRX).
const CUSTOMER_FEE_LIMIT: i64 = 100_000_000;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sim/activate", post(activate))
        .route("/sim/stake", post(stake))
        .route("/sim/transfer", post(transfer))
        .route("/sim/faults", post(set_faults).get(get_faults))
        .route("/sim/produce", post(produce))
        .route("/sim/advance", post(advance))
        .route("/sim/info", get(info))
}

fn reply(status: StatusCode, value: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn bad(message: impl std::fmt::Display) -> Response {
    reply(
        StatusCode::BAD_REQUEST,
        json!({ "Error": message.to_string() }),
    )
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        "{}".as_bytes()
    } else {
        body.as_ref()
    };
    serde_json::from_slice(text).map_err(|e| format!("bad request body: {e}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivateBody {
    address: TronAddress,
    /// Sun.
    #[serde(default)]
    balance: i64,
    /// USDT base units to hold.
    #[serde(default)]
    usdt: u64,
    /// Keys of the active permission (id 2); default the owner.
    #[serde(default)]
    active_keys: Option<Vec<TronAddress>>,
}

async fn activate(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body: ActivateBody = match parse(&body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    let op = WorldOp::Activate {
        address: body.address,
        balance: body.balance,
        usdt: u128::from(body.usdt),
        active_keys: body.active_keys,
    };
    let mut chain = shared.chain();
    if let Err(e) = chain.apply_op(op) {
        return bad(e.detail());
    }
    let balance = chain
        .world(View::Head)
        .accounts
        .get(&body.address)
        .map(|a| a.balance)
        .unwrap_or(0);
    reply(
        StatusCode::OK,
        json!({"address": body.address.to_base58(), "balance": balance}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StakeBody {
    address: TronAddress,
    /// Sun to stake.
    amount: i64,
    /// "ENERGY" (default) or "BANDWIDTH".
    #[serde(default)]
    resource: Option<String>,
}

async fn stake(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body: StakeBody = match parse(&body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    let resource = match body.resource.as_deref().unwrap_or("ENERGY") {
        "ENERGY" => Resource::Energy,
        "BANDWIDTH" => Resource::Bandwidth,
        other => {
            return bad(format!(
                "resource must be ENERGY or BANDWIDTH, not {other:?}"
            ))
        }
    };
    let mut chain = shared.chain();
    if let Err(e) = chain.apply_op(WorldOp::Stake {
        address: body.address,
        amount: body.amount,
        resource,
    }) {
        return bad(e.detail());
    }
    let world = chain.world(View::Head);
    let Some(account) = world.accounts.get(&body.address) else {
        return bad("account vanished");
    };
    reply(
        StatusCode::OK,
        json!({
            "address": body.address.to_base58(),
            "frozen_energy": account.frozen_energy,
            "frozen_bandwidth": account.frozen_bandwidth,
            "EnergyLimit": world.energy_limit(account),
            "TotalEnergyWeight": world.total_energy_weight(),
        }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    to: TronAddress,
    /// "TRX" (sun) or "USDT" (base units).
    asset: String,
    amount: u64,
}

async fn transfer(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body: TransferBody = match parse(&body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    let from = shared.customer_key().address();
    let (call, fee_limit) = match body.asset.as_str() {
        "TRX" => match i64::try_from(body.amount) {
            Ok(amount) => (
                ContractCall::Transfer(tx::Transfer {
                    owner: from,
                    to: body.to,
                    amount,
                }),
                0,
            ),
            Err(_) => return bad("amount too large"),
        },
        "USDT" => (
            ContractCall::TriggerSmart(tx::TriggerSmart {
                owner: from,
                contract: shared.config.usdt_contract,
                call_value: 0,
                data: trc20::transfer_calldata(&body.to, u128::from(body.amount)),
                call_token_value: 0,
                token_id: 0,
            }),
            CUSTOMER_FEE_LIMIT,
        ),
        other => return bad(format!("asset must be TRX or USDT, not {other:?}")),
    };
    let raw = {
        let chain = shared.chain();
        let head = chain.head();
        let mut params = tx::TxParams::new(tx::RefBlock::from_block_id(&head.id), head.timestamp);
        params.fee_limit = fee_limit;
        match tx::build(TxContract::new(call), &params) {
            Ok(raw) => raw,
            Err(e) => return bad(e),
        }
    };
    let signed = SignedTransaction::sign(raw, shared.customer_key());
    let txid = signed.txid();
    let result = shared.chain().broadcast(signed, true);
    match result {
        Ok(_) => reply(
            StatusCode::OK,
            json!({"txid": txid.to_hex(), "from": from.to_base58(), "result": true}),
        ),
        Err(r) => reply(
            StatusCode::BAD_REQUEST,
            json!({"txid": txid.to_hex(), "code": r.code.as_str(), "Error": r.message}),
        ),
    }
}

async fn set_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: FaultsRequest = match parse(&body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    let current = {
        let mut faults = shared.faults();
        faults.apply(&request);
        faults.clone()
    };
    let mut reorged = 0;
    if let Some(requeue) = request.reorg.and_then(|r| r.requested()) {
        reorged = shared.chain().reorg(requeue);
        shared.publish_head();
    }
    let mut value = serde_json::to_value(current).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut value {
        map.insert("reorged_blocks".into(), json!(reorged));
    }
    reply(StatusCode::OK, value)
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    let current = shared.faults().clone();
    reply(
        StatusCode::OK,
        serde_json::to_value(current).unwrap_or_else(|_| json!({})),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceBody {
    #[serde(default = "one")]
    blocks: u64,
}

fn one() -> u64 {
    1
}

/// Most blocks one `/sim/produce` call makes.
const MAX_PRODUCE: u64 = 100_000;

async fn produce(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body: ProduceBody = match parse(&body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    if body.blocks > MAX_PRODUCE {
        return bad(format!("at most {MAX_PRODUCE} blocks per call"));
    }
    let head = shared.produce(body.blocks);
    reply(StatusCode::OK, json!({ "head": head }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceBody {
    ms: i64,
}

async fn advance(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body: AdvanceBody = match parse(&body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    if body.ms < 0 {
        return bad("ms must not be negative");
    }
    shared.chain().advance(body.ms);
    reply(StatusCode::OK, json!({ "advanced_ms": body.ms }))
}

async fn info(State(shared): State<Arc<Shared>>) -> Response {
    let chain = shared.chain();
    let head = chain.head();
    reply(
        StatusCode::OK,
        json!({
            "head": head.number,
            "head_timestamp": head.timestamp,
            "solid": chain.solid_number(),
            "pending": chain.pending(),
            "customer": shared.customer_key().address().to_base58(),
            "usdt_contract": shared.config.usdt_contract.to_base58(),
            "confirmations": shared.config.confirmations,
            "slot_ms": shared.config.slot_ms,
            "block_interval_ms": shared.config.block_interval.map(|d| d.as_millis() as u64),
        }),
    )
}

//! The node's HTTP routes: `/wallet/<endpoint>` on the head and `/walletsolidity/<endpoint>` on
//! the solidified block, GET or POST, with java-tron's conventions (HTTP 200 and
//! `{"Error": …}` for servlet failures, `{}` for not found, 413 for oversized bodies, 404 for an
//! unknown endpoint). Faults are applied here, before the endpoint runs.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::{json, Value};

use super::chain::View;
use super::contract::{self, ConstantResult};
use super::execute::Reject;
use super::faults::take;
use super::render;
use super::request::{self, Params, ServletError};
use super::Shared;
use crate::keys::keccak256;
use crate::node::ResponseCode;
use crate::tx::{
    self, json as txjson, ContractCall, RawData, Resource, SignedTransaction, TxContract,
};
use crate::TronAddress;

/// What a handler answers.
enum Reply {
    Json(Value),
    /// Pretend the connection broke after the node acted.
    Lost,
}

type Handled = Result<Reply, ServletError>;

/// All routes: the node's, plus `/sim/…` when the simulator runs for dev or tests.
pub fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.body_limit;
    let mut router = Router::new()
        .route("/wallet/{endpoint}", any(full_node))
        .route("/walletsolidity/{endpoint}", any(solidity_node));
    if shared.config.dev {
        router = router.merge(super::admin::routes());
    }
    router
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

async fn full_node(
    State(shared): State<Arc<Shared>>,
    Path(endpoint): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    node(shared, View::Head, endpoint, query, headers, body).await
}

async fn solidity_node(
    State(shared): State<Arc<Shared>>,
    Path(endpoint): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    node(shared, View::Solid, endpoint, query, headers, body).await
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// A response whose body fails after the headers: the client sees a broken connection.
fn lost_response() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("simulated lost response"))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn node(
    shared: Arc<Shared>,
    view: View,
    endpoint: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(key) = &shared.config.api_key {
        let given = headers
            .get("TRON-PRO-API-KEY")
            .and_then(|v| v.to_str().ok());
        if given != Some(key.expose()) {
            return json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"Success": false, "Error": "ApiKey not exists", "code": 401}),
            );
        }
    }
    let (latency, fail, hang, garbage) = {
        let mut f = shared.faults();
        let hang_ms = f.hang_ms.unwrap_or(10_000);
        (
            f.latency_ms,
            take(&mut f.http_5xx),
            take(&mut f.timeouts).then_some(hang_ms),
            take(&mut f.garbage),
        )
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some(ms) = hang {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if fail {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "<html><body><h1>503 Service Unavailable</h1></body></html>",
        )
            .into_response();
    }
    if garbage {
        return (
            StatusCode::OK,
            "<html>this is not the node you are looking for",
        )
            .into_response();
    }
    let params = match Params::parse(query.as_deref(), &body) {
        Ok(p) => p,
        Err(e) => return json_response(StatusCode::OK, &e.to_json()),
    };
    let _span = tracing::debug_span!("simulator", endpoint = %endpoint).entered();
    let result = match handle(&shared, view, &endpoint, &params) {
        Some(result) => result,
        None => return StatusCode::NOT_FOUND.into_response(),
    };
    match result {
        Ok(Reply::Json(value)) => json_response(StatusCode::OK, &value),
        Ok(Reply::Lost) => lost_response(),
        Err(e) => json_response(StatusCode::OK, &e.to_json()),
    }
}

/// Routes an endpoint; `None` for one this node does not serve (HTTP 404).
fn handle(shared: &Shared, view: View, endpoint: &str, p: &Params) -> Option<Handled> {
    let json = |r: Result<Value, ServletError>| {
        Some(r.map(|mut v| {
            if p.visible {
                render::make_visible(&mut v);
            }
            Reply::Json(v)
        }))
    };
    match endpoint {
        "getnowblock" => json(Ok(render::block(shared.chain().top(view), true))),
        "getblockbynum" => json(get_block_by_num(shared, view, p)),
        "getblock" => json(get_block(shared, view, p)),
        "getblockbyid" => json(get_block_by_id(shared, view, p)),
        "getnodeinfo" => json(Ok(node_info(shared))),
        "getaccount" => json(get_account(shared, view, p)),
        "getaccountresource" => json(get_account_resource(shared, view, p)),
        "getcandelegatedmaxsize" => json(can_delegate(shared, view, p)),
        "getdelegatedresourcev2" => json(delegated(shared, view, p)),
        "gettransactionbyid" => json(transaction_by_id(shared, view, p)),
        "gettransactioninfobyid" => json(transaction_info(shared, view, p)),
        "gettransactioninfobyblocknum" => json(infos_by_block(shared, view, p)),
        "triggerconstantcontract" => json(constant_call(shared, view, p)),
        "getchainparameters" => json(Ok(chain_parameters(shared))),
        "broadcasthex" if view == View::Head => Some(broadcast_hex(shared, p)),
        "broadcasttransaction" if view == View::Head => Some(broadcast_json(shared, p)),
        "delegateresource" if view == View::Head => json(build(shared, p, true)),
        "undelegateresource" if view == View::Head => json(build(shared, p, false)),
        _ => None,
    }
}

fn get_block_by_num(shared: &Shared, view: View, p: &Params) -> Result<Value, ServletError> {
    let num = p.i64("num")?.unwrap_or(0);
    let chain = shared.chain();
    Ok(u64::try_from(num)
        .ok()
        .and_then(|n| chain.block(n, view))
        .map(|b| render::block(b, true))
        .unwrap_or_else(|| json!({})))
}

fn block_id(p: &Params, key: &str) -> Result<Option<[u8; 32]>, ServletError> {
    Ok(p.hex(key)?.and_then(|bytes| bytes.try_into().ok()))
}

fn get_block_by_id(shared: &Shared, view: View, p: &Params) -> Result<Value, ServletError> {
    let chain = shared.chain();
    Ok(block_id(p, "value")?
        .and_then(|id| chain.block_by_id(&id, view))
        .map(|b| render::block(b, true))
        .unwrap_or_else(|| json!({})))
}

fn get_block(shared: &Shared, view: View, p: &Params) -> Result<Value, ServletError> {
    let detail = p.bool("detail")?.unwrap_or(false);
    let chain = shared.chain();
    let block = match p.string("id_or_num")? {
        None => Some(chain.top(view)),
        Some(text)
            if !text.is_empty() && text.len() < 20 && text.bytes().all(|b| b.is_ascii_digit()) =>
        {
            text.parse::<u64>().ok().and_then(|n| chain.block(n, view))
        }
        Some(text) if text.len() == 64 => {
            let id = block_id(p, "id_or_num")?;
            id.and_then(|id| chain.block_by_id(&id, view))
        }
        Some(_) => {
            return Err(ServletError::new(
                request::ILLEGAL_ARGUMENT,
                "id_or_num must be a block number or a 64-digit block id",
            ))
        }
    };
    Ok(block
        .map(|b| render::block(b, detail))
        .unwrap_or_else(|| json!({})))
}

fn node_info(shared: &Shared) -> Value {
    let chain = shared.chain();
    let head = chain.top(View::Head);
    let solid = chain.top(View::Solid);
    json!({
        "beginSyncNum": head.number,
        "block": format!("Num:{},ID:{}", head.number, head.id_hex()),
        "solidityBlock": format!("Num:{},ID:{}", solid.number, solid.id_hex()),
        "currentConnectCount": 0,
        "activeConnectCount": 0,
        "passiveConnectCount": 0,
        "totalFlow": 0,
        "peerInfoList": [],
        "configNodeInfo": {"codeVersion": "trx-energy-simulator", "versionNum": env!("CARGO_PKG_VERSION")},
        "machineInfo": {},
        "cheatWitnessInfoMap": {}
    })
}

fn get_account(shared: &Shared, view: View, p: &Params) -> Result<Value, ServletError> {
    let address = p.require_address("address")?;
    let chain = shared.chain();
    let world = chain.world(view);
    Ok(world
        .accounts
        .get(&address)
        .map(|a| render::account(world, &address, a))
        .unwrap_or_else(|| json!({})))
}

fn get_account_resource(shared: &Shared, view: View, p: &Params) -> Result<Value, ServletError> {
    let address = p.require_address("address")?;
    let chain = shared.chain();
    let world = chain.world(view);
    Ok(world
        .accounts
        .get(&address)
        .map(|a| render::account_resource(world, a))
        .unwrap_or_else(|| json!({})))
}

fn can_delegate(shared: &Shared, view: View, p: &Params) -> Result<Value, ServletError> {
    let owner = p.require_address("owner_address")?;
    let kind = p.i64("type")?.unwrap_or(0);
    let chain = shared.chain();
    let world = chain.world(view);
    let Some(account) = world.accounts.get(&owner) else {
        return Ok(json!({}));
    };
    let max = match kind {
        0 => world.can_delegate_bandwidth(account),
        1 => world.can_delegate_energy(account),
        _ => {
            return Err(ServletError::new(
                request::ILLEGAL_ARGUMENT,
                "type must be 0 (BANDWIDTH) or 1 (ENERGY)",
            ))
        }
    };
    Ok(if max > 0 {
        json!({ "max_size": max })
    } else {
        json!({})
    })
}

fn delegated(shared: &Shared, view: View, p: &Params) -> Result<Value, ServletError> {
    let from = p.require_address("fromAddress")?;
    let to = p.require_address("toAddress")?;
    let chain = shared.chain();
    Ok(render::delegated_resources(chain.world(view), from, to))
}

fn txid_param(p: &Params) -> Result<Option<tx::TxId>, ServletError> {
    Ok(p.hex("value")?
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .map(tx::TxId))
}

fn transaction_by_id(shared: &Shared, view: View, p: &Params) -> Result<Value, ServletError> {
    let Some(txid) = txid_param(p)? else {
        return Ok(json!({}));
    };
    let chain = shared.chain();
    Ok(chain
        .transaction(&txid, view)
        .map(|(_, t)| render::transaction(&t.tx, Some((t.receipt.contract_ret(), t.receipt.fee))))
        .unwrap_or_else(|| json!({})))
}

fn transaction_info(shared: &Shared, view: View, p: &Params) -> Result<Value, ServletError> {
    let Some(txid) = txid_param(p)? else {
        return Ok(json!({}));
    };
    let chain = shared.chain();
    Ok(chain
        .transaction(&txid, view)
        .map(|(block, t)| render::transaction_info(block, t))
        .unwrap_or_else(|| json!({})))
}

fn infos_by_block(shared: &Shared, view: View, p: &Params) -> Result<Value, ServletError> {
    let num = p.i64("num")?.unwrap_or(0);
    let chain = shared.chain();
    let infos: Vec<Value> = u64::try_from(num)
        .ok()
        .and_then(|n| chain.block(n, view))
        .map(|block| {
            block
                .txs
                .iter()
                .map(|t| render::transaction_info(block, t))
                .collect()
        })
        .unwrap_or_default();
    Ok(Value::Array(infos))
}

fn head_raw(
    shared: &Shared,
    contract: TxContract,
    fee_limit: i64,
) -> Result<RawData, ServletError> {
    let chain = shared.chain();
    let head = chain.head();
    let mut params = tx::TxParams::new(tx::RefBlock::from_block_id(&head.id), head.timestamp);
    params.fee_limit = fee_limit;
    tx::build(contract, &params)
        .map_err(|e| ServletError::new(request::ILLEGAL_ARGUMENT, e.to_string()))
}

fn unsigned_json(raw: &RawData, visible: bool) -> Value {
    let mut value = render::transaction(
        &SignedTransaction {
            raw: raw.clone(),
            signatures: Vec::new(),
            ret: Vec::new(),
        },
        None,
    );
    if let Value::Object(map) = &mut value {
        map.insert("visible".into(), json!(visible));
    }
    value
}

fn constant_call(shared: &Shared, view: View, p: &Params) -> Result<Value, ServletError> {
    let contract_address = p.require_address("contract_address")?;
    let owner = p
        .address("owner_address")?
        .unwrap_or_else(|| TronAddress::from_evm_bytes([0u8; 20]));
    let data = match (p.string("function_selector")?, p.hex("data")?) {
        (Some(selector), _) => {
            let mut data = keccak256(selector.as_bytes())[..4].to_vec();
            data.extend(p.hex("parameter")?.unwrap_or_default());
            data
        }
        (None, Some(data)) => data,
        (None, None) => {
            return Err(ServletError::new(
                request::ILLEGAL_ARGUMENT,
                "function_selector or data is required",
            ))
        }
    };
    let message = |text: &str| {
        if p.visible {
            text.to_string()
        } else {
            hex::encode(text)
        }
    };
    let chain = shared.chain();
    let world = chain.world(view);
    if !world
        .accounts
        .get(&contract_address)
        .is_some_and(|a| a.is_contract)
    {
        return Ok(json!({"result": {
            "code": "CONTRACT_VALIDATE_ERROR",
            "message": message("No contract or not a valid smart contract"),
        }}));
    }
    let result = if contract_address == world.usdt_contract {
        contract::constant_call(world, &data)
    } else {
        ConstantResult::Revert
    };
    let call = ContractCall::TriggerSmart(tx::TriggerSmart {
        owner,
        contract: contract_address,
        call_value: 0,
        data,
        call_token_value: 0,
        token_id: 0,
    });
    drop(chain);
    let raw = head_raw(shared, TxContract::new(call), 0)?;
    let mut transaction = unsigned_json(&raw, p.visible);
    let energy = shared.config.usdt_costs.constant;
    Ok(match result {
        ConstantResult::Output(word) => {
            if let Value::Object(map) = &mut transaction {
                map.insert("ret".into(), json!([{}]));
            }
            json!({
                "result": {"result": true},
                "energy_used": energy,
                "constant_result": [hex::encode(word)],
                "transaction": transaction,
            })
        }
        ConstantResult::Revert => {
            if let Value::Object(map) = &mut transaction {
                map.insert("ret".into(), json!([{"ret": "FAILED"}]));
            }
            json!({
                "result": {"message": message("REVERT opcode executed")},
                "energy_used": energy,
                "constant_result": [""],
                "transaction": transaction,
            })
        }
    })
}

fn chain_parameters(shared: &Shared) -> Value {
    let chain = shared.chain();
    let n = &chain.world(View::Head).params;
    let params = [
        ("getMaintenanceTimeInterval", 21_600_000),
        ("getCreateAccountFee", n.create_account_fee),
        ("getTransactionFee", n.transaction_fee),
        ("getEnergyFee", n.energy_fee),
        (
            "getCreateNewAccountFeeInSystemContract",
            n.create_account_fee_system,
        ),
        ("getTotalEnergyLimit", n.total_energy_limit),
        ("getTotalEnergyCurrentLimit", n.total_energy_limit),
        ("getAllowDelegateResource", 1),
        ("getUnfreezeDelayDays", 14),
        ("getMaxDelegateLockPeriod", n.max_delegate_lock_period),
        ("getFreeNetLimit", super::resources::FREE_NET_LIMIT),
        ("getTotalNetLimit", n.total_net_limit),
    ];
    let list: Vec<Value> = params
        .iter()
        .map(|(key, value)| json!({"key": key, "value": value}))
        .collect();
    json!({ "chainParameter": list })
}

/// Pushes a transaction through the faults and the chain. Returns the chain's answer and
/// whether the response must be lost. Faults are consumed only by broadcasts they apply to.
fn push(shared: &Shared, transaction: SignedTransaction) -> (Result<tx::TxId, Reject>, bool) {
    // Lock order everywhere: faults, then chain.
    let mut faults = shared.faults();
    if take(&mut faults.server_busy) {
        return (
            Err(Reject::new(ResponseCode::ServerBusy, "Server busy.")),
            false,
        );
    }
    let include = faults.never_include == 0;
    let result = shared.chain().broadcast(transaction, include);
    let mut lost = false;
    if result.is_ok() {
        if !include {
            take(&mut faults.never_include);
        }
        lost = take(&mut faults.lose_broadcast_responses);
    }
    tracing::debug!(
        accepted = result.is_ok(),
        lost,
        included = include,
        "simulator broadcast"
    );
    (result, lost)
}

fn broadcast_hex(shared: &Shared, p: &Params) -> Handled {
    let Some(bytes) = p.hex("transaction")? else {
        return Err(ServletError::new(request::NULL_POINTER, "null"));
    };
    let transaction = SignedTransaction::decode(&bytes)
        .map_err(|e| ServletError::new(request::PROTOBUF_EXCEPTION, e.to_string()))?;
    let txid = transaction.txid();
    let shown = {
        let mut v = render::transaction(&transaction, None);
        render::make_visible(&mut v);
        v.to_string()
    };
    let (result, lost) = push(shared, transaction);
    if lost {
        return Ok(Reply::Lost);
    }
    let (ok, code, message) = match result {
        Ok(_) => (true, ResponseCode::Success, String::new()),
        Err(r) => (false, r.code, r.message),
    };
    Ok(Reply::Json(json!({
        "result": ok,
        "code": code.as_str(),
        "message": message,
        "transaction": shown,
        "txid": txid.to_hex(),
    })))
}

fn broadcast_json(shared: &Shared, p: &Params) -> Handled {
    let Some(raw_value) = p.fields.get("raw_data") else {
        return Err(ServletError::new(request::NULL_POINTER, "null"));
    };
    let raw = txjson::from_node_json(raw_value)
        .map_err(|e| ServletError::new(request::PARSE_EXCEPTION, e.to_string()))?;
    let signatures = match p.fields.get("signature") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .and_then(|s| crate::Signature::from_hex(s).ok())
                    .ok_or_else(|| {
                        ServletError::new(request::PARSE_EXCEPTION, "signature must be hex strings")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(ServletError::new(
                request::PARSE_EXCEPTION,
                "signature must be an array",
            ))
        }
    };
    let transaction = SignedTransaction {
        raw,
        signatures,
        ret: Vec::new(),
    };
    let txid = transaction.txid();
    let (result, lost) = push(shared, transaction);
    if lost {
        return Ok(Reply::Lost);
    }
    // The node prints its `Return` message as proto JSON: defaults left out, bytes as hex
    // unless visible.
    Ok(Reply::Json(match result {
        Ok(_) => json!({"result": true, "txid": txid.to_hex()}),
        Err(r) => {
            let message = if p.visible {
                r.message
            } else {
                hex::encode(r.message)
            };
            json!({"code": r.code.as_str(), "message": message, "txid": txid.to_hex()})
        }
    }))
}

fn resource_param(p: &Params) -> Result<Resource, ServletError> {
    match p.fields.get("resource") {
        None | Some(Value::Null) => Ok(Resource::Bandwidth),
        Some(Value::String(name)) => Resource::from_name(name).ok_or_else(|| {
            ServletError::new(
                request::PARSE_EXCEPTION,
                format!("unknown resource {name:?}"),
            )
        }),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Resource::from_number)
            .ok_or_else(|| ServletError::new(request::PARSE_EXCEPTION, "resource out of range")),
        Some(_) => Err(ServletError::new(
            request::PARSE_EXCEPTION,
            "resource must be a name or a number",
        )),
    }
}

/// `/wallet/delegateresource` and `/wallet/undelegateresource`: validate on the head and return
/// the unsigned transaction (ref block = head, expiration = head + 60 s).
fn build(shared: &Shared, p: &Params, delegate: bool) -> Result<Value, ServletError> {
    let owner = p.require_address("owner_address")?;
    let receiver = p.require_address("receiver_address")?;
    let balance = p.i64("balance")?.unwrap_or(0);
    let resource = resource_param(p)?;
    let mut call = if delegate {
        ContractCall::DelegateResource(tx::DelegateResource {
            owner,
            resource,
            balance,
            receiver,
            lock: p.bool("lock")?.unwrap_or(false),
            lock_period: p.i64("lock_period")?.unwrap_or(0),
        })
    } else {
        ContractCall::UnDelegateResource(tx::UnDelegateResource {
            owner,
            resource,
            balance,
            receiver,
        })
    };
    shared
        .chain()
        .validate_contract(&call, 0)
        .map_err(|r| ServletError::new(request::VALIDATE_EXCEPTION, r.detail()))?;
    if take(&mut shared.faults().tamper_built) {
        match &mut call {
            ContractCall::DelegateResource(d) => d.balance += 1,
            ContractCall::UnDelegateResource(u) => u.balance += 1,
            _ => {}
        }
    }
    let mut contract = TxContract::new(call);
    contract.permission_id = p
        .i64("Permission_id")?
        .and_then(|n| i32::try_from(n).ok())
        .unwrap_or(0);
    let raw = head_raw(shared, contract, 0)?;
    Ok(unsigned_json(&raw, p.visible))
}

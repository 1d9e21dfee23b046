//! The node's JSON shapes: blocks, transactions, `TransactionInfo`, accounts, account resources,
//! delegation records. Proto3 defaults (zero, false, empty) are left out, as the node's printer
//! does. Everything is written with `visible=false` conventions (`41…` hex addresses, hex
//! bytes); [`make_visible`] rewrites addresses to base58 and messages to text for `visible=true`.

use serde_json::{json, Map, Value};

use super::block::{Block, BlockTx, BLOCK_VERSION};
use super::resources::{self, FREE_NET_LIMIT, TRX, WINDOW_SIZE_REPORTED};
use super::state::{Account, World};
use crate::tx::json::to_node_json;
use crate::tx::SignedTransaction;
use crate::TronAddress;

/// The operations bitmap of a default active permission (every contract type the node allows).
const DEFAULT_OPERATIONS: &str = "7fff1fc0033efb0f000000000000000000000000000000000000000000000000";

/// Keys whose string values are addresses.
const ADDRESS_KEYS: &[&str] = &[
    "address",
    "owner_address",
    "to_address",
    "receiver_address",
    "contract_address",
    "witness_address",
    "from",
    "to",
];

/// Keys whose string values are hex of UTF-8 text.
const TEXT_KEYS: &[&str] = &["message", "resMessage"];

fn put(map: &mut Map<String, Value>, key: &str, value: i64) {
    if value != 0 {
        map.insert(key.into(), json!(value));
    }
}

/// `visible=true`: `41…` addresses (and 20-byte log addresses) become base58, hex text fields
/// become their text.
pub fn make_visible(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if let Value::String(text) = v {
                    if ADDRESS_KEYS.contains(&key.as_str()) {
                        if let Some(b58) = to_base58(text) {
                            *text = b58;
                        }
                        continue;
                    }
                    if TEXT_KEYS.contains(&key.as_str()) {
                        if let Some(decoded) = hex::decode(&*text)
                            .ok()
                            .and_then(|b| String::from_utf8(b).ok())
                        {
                            *text = decoded;
                        }
                        continue;
                    }
                }
                make_visible(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(make_visible),
        _ => {}
    }
}

fn to_base58(text: &str) -> Option<String> {
    let bytes = hex::decode(text).ok()?;
    match bytes.len() {
        21 => TronAddress::from_slice(&bytes).ok().map(|a| a.to_base58()),
        20 => {
            let mut evm = [0u8; 20];
            evm.copy_from_slice(&bytes);
            Some(TronAddress::from_evm_bytes(evm).to_base58())
        }
        _ => None,
    }
}

/// A transaction as `gettransactionbyid` and blocks show it.
pub fn transaction(tx: &SignedTransaction, contract_ret: Option<(&str, i64)>) -> Value {
    let mut map = Map::new();
    if let Some((ret, fee)) = contract_ret {
        let mut r = Map::new();
        put(&mut r, "fee", fee);
        r.insert("contractRet".into(), json!(ret));
        map.insert("ret".into(), json!([r]));
    }
    if !tx.signatures.is_empty() {
        let sigs: Vec<String> = tx.signatures.iter().map(|s| s.to_hex()).collect();
        map.insert("signature".into(), json!(sigs));
    }
    map.insert("txID".into(), json!(tx.txid().to_hex()));
    map.insert(
        "raw_data".into(),
        serde_json::to_value(to_node_json(&tx.raw)).unwrap_or(Value::Null),
    );
    map.insert("raw_data_hex".into(), json!(hex::encode(tx.raw.encode())));
    Value::Object(map)
}

fn block_tx(tx: &BlockTx) -> Value {
    transaction(&tx.tx, Some((tx.receipt.contract_ret(), tx.receipt.fee)))
}

/// A block; `detail` false leaves the transactions out (`getblock {"detail": false}`).
pub fn block(block: &Block, detail: bool) -> Value {
    let mut raw = Map::new();
    put(&mut raw, "number", block.number as i64);
    raw.insert("txTrieRoot".into(), json!(hex::encode(block.tx_trie_root)));
    raw.insert("witness_address".into(), json!(block.witness.to_hex()));
    raw.insert("parentHash".into(), json!(hex::encode(block.parent)));
    raw.insert("version".into(), json!(BLOCK_VERSION));
    raw.insert("timestamp".into(), json!(block.timestamp));
    let mut map = Map::new();
    map.insert("blockID".into(), json!(block.id_hex()));
    map.insert(
        "block_header".into(),
        json!({"raw_data": raw, "witness_signature": block.witness_signature.to_hex()}),
    );
    if detail && !block.txs.is_empty() {
        let txs: Vec<Value> = block.txs.iter().map(block_tx).collect();
        map.insert("transactions".into(), json!(txs));
    }
    Value::Object(map)
}

/// `TransactionInfo` of an included transaction.
pub fn transaction_info(block: &Block, tx: &BlockTx) -> Value {
    let r = &tx.receipt;
    let mut map = Map::new();
    map.insert("id".into(), json!(tx.txid.to_hex()));
    put(&mut map, "fee", r.fee);
    map.insert("blockNumber".into(), json!(block.number));
    map.insert("blockTimeStamp".into(), json!(block.timestamp));
    map.insert(
        "contractResult".into(),
        json!([hex::encode(&r.contract_result)]),
    );
    if let Some(contract) = r.contract_address {
        map.insert("contract_address".into(), json!(contract.to_hex()));
    }
    let mut receipt = Map::new();
    put(&mut receipt, "energy_usage", r.energy_usage);
    put(&mut receipt, "energy_fee", r.energy_fee);
    put(&mut receipt, "energy_usage_total", r.energy_usage_total);
    put(&mut receipt, "net_usage", r.net_usage);
    put(&mut receipt, "net_fee", r.net_fee);
    if let Some(result) = r.result {
        receipt.insert("result".into(), json!(result));
    }
    put(&mut receipt, "energy_penalty_total", r.energy_penalty_total);
    map.insert("receipt".into(), Value::Object(receipt));
    if !r.logs.is_empty() {
        let logs: Vec<Value> = r
            .logs
            .iter()
            .map(|log| {
                let topics: Vec<String> = log.topics.iter().map(hex::encode).collect();
                json!({
                    "address": hex::encode(log.address.evm_bytes()),
                    "topics": topics,
                    "data": hex::encode(&log.data),
                })
            })
            .collect();
        map.insert("log".into(), json!(logs));
    }
    if r.failed {
        map.insert("result".into(), json!("FAILED"));
        map.insert("resMessage".into(), json!(hex::encode(&r.res_message)));
    }
    Value::Object(map)
}

fn permission_keys(keys: &[TronAddress]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| json!({"address": k.to_hex(), "weight": 1}))
        .collect();
    json!(keys)
}

/// `getaccount`.
pub fn account(world: &World, address: &TronAddress, a: &Account) -> Value {
    let mut map = Map::new();
    map.insert("address".into(), json!(address.to_hex()));
    put(&mut map, "balance", a.balance);
    map.insert("create_time".into(), json!(a.create_time));
    if a.is_contract {
        map.insert("type".into(), json!("Contract"));
    }
    let slot_ms = |slot: i64| world.genesis_ts + slot * resources::SLOT_MS;
    put(&mut map, "free_net_usage", a.free_net_usage);
    if a.free_net_usage > 0 {
        map.insert(
            "latest_consume_free_time".into(),
            json!(slot_ms(a.free_net_slot)),
        );
    }
    put(&mut map, "net_usage", a.net_usage);
    map.insert("net_window_size".into(), json!(WINDOW_SIZE_REPORTED));
    map.insert("net_window_optimized".into(), json!(true));
    let mut resource = Map::new();
    put(&mut resource, "energy_usage", a.energy_usage);
    if a.energy_usage > 0 {
        resource.insert(
            "latest_consume_time_for_energy".into(),
            json!(slot_ms(a.energy_slot)),
        );
    }
    resource.insert("energy_window_size".into(), json!(WINDOW_SIZE_REPORTED));
    resource.insert("energy_window_optimized".into(), json!(true));
    put(
        &mut resource,
        "delegated_frozenV2_balance_for_energy",
        a.delegated_energy,
    );
    put(
        &mut resource,
        "acquired_delegated_frozenV2_balance_for_energy",
        a.acquired_energy,
    );
    map.insert("account_resource".into(), Value::Object(resource));
    map.insert(
        "owner_permission".into(),
        json!({"permission_name": "owner", "threshold": 1, "keys": permission_keys(&[*address])}),
    );
    map.insert(
        "active_permission".into(),
        json!([{
            "type": "Active", "id": 2, "permission_name": "active", "threshold": 1,
            "operations": DEFAULT_OPERATIONS, "keys": permission_keys(&a.active_keys)
        }]),
    );
    let mut bandwidth = Map::new();
    put(&mut bandwidth, "amount", a.frozen_bandwidth);
    let mut energy = Map::new();
    energy.insert("type".into(), json!("ENERGY"));
    put(&mut energy, "amount", a.frozen_energy);
    map.insert(
        "frozenV2".into(),
        json!([bandwidth, energy, {"type": "TRON_POWER"}]),
    );
    put(
        &mut map,
        "delegated_frozenV2_balance_for_bandwidth",
        a.delegated_bandwidth,
    );
    put(
        &mut map,
        "acquired_delegated_frozenV2_balance_for_bandwidth",
        a.acquired_bandwidth,
    );
    Value::Object(map)
}

/// `getaccountresource`.
pub fn account_resource(world: &World, a: &Account) -> Value {
    let mut map = Map::new();
    put(&mut map, "freeNetUsed", world.free_net_used(a));
    map.insert("freeNetLimit".into(), json!(FREE_NET_LIMIT));
    put(&mut map, "NetUsed", world.net_used(a));
    put(&mut map, "NetLimit", world.net_limit(a));
    map.insert("TotalNetLimit".into(), json!(world.params.total_net_limit));
    map.insert("TotalNetWeight".into(), json!(world.total_net_weight()));
    let tron_power =
        (a.frozen_energy + a.frozen_bandwidth + a.delegated_energy + a.delegated_bandwidth) / TRX;
    put(&mut map, "tronPowerLimit", tron_power);
    put(&mut map, "EnergyUsed", world.energy_used(a));
    put(&mut map, "EnergyLimit", world.energy_limit(a));
    map.insert(
        "TotalEnergyLimit".into(),
        json!(world.params.total_energy_limit),
    );
    map.insert(
        "TotalEnergyWeight".into(),
        json!(world.total_energy_weight()),
    );
    Value::Object(map)
}

/// `getdelegatedresourcev2`: `{}` when there is no record.
pub fn delegated_resources(world: &World, from: TronAddress, to: TronAddress) -> Value {
    let records: Vec<Value> = world
        .delegation_records(from, to)
        .into_iter()
        .map(|d| {
            let mut map = Map::new();
            map.insert("from".into(), json!(from.to_hex()));
            map.insert("to".into(), json!(to.to_hex()));
            put(&mut map, "frozen_balance_for_bandwidth", d.bandwidth);
            put(&mut map, "frozen_balance_for_energy", d.energy);
            put(&mut map, "expire_time_for_bandwidth", d.bandwidth_expire);
            put(&mut map, "expire_time_for_energy", d.energy_expire);
            Value::Object(map)
        })
        .collect();
    if records.is_empty() {
        json!({})
    } else {
        json!({ "delegatedResource": records })
    }
}

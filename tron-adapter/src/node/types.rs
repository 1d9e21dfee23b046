//! Typed node answers. Each `from_node` reads the JSON a java-tron node (or the simulator)
//! returns: `{"Error": …}` becomes [`NodeError::Servlet`], `{}` becomes `None` where the node
//! means "not found", absent fields are proto3 defaults (except those the node always sends),
//! addresses may be `41…` hex or base58, and anything else that does not fit — not an object, a
//! field of the wrong type or missing — is [`NodeError::Malformed`], never a panic.

use std::collections::BTreeMap;

use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{BroadcastClass, NodeError, ResponseCode};
use crate::trc20::{self, LogEntry, TransferLog};
use crate::tx::{RawData, RefBlock, Resource, TxId};
use crate::{Signature, TronAddress};

fn malformed(endpoint: &str, reason: impl std::fmt::Display) -> NodeError {
    NodeError::Malformed {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    }
}

/// `{"Error": "…"}` → [`NodeError::Servlet`]; anything but an object or array → malformed.
pub fn check_error(endpoint: &str, value: &Value) -> Result<(), NodeError> {
    match value {
        Value::Object(map) => match map.get("Error") {
            Some(message) => Err(NodeError::Servlet {
                endpoint: endpoint.to_string(),
                message: message
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| message.to_string()),
            }),
            None => Ok(()),
        },
        Value::Array(_) => Ok(()),
        other => Err(malformed(
            endpoint,
            format!("expected a JSON object, got {other}"),
        )),
    }
}

fn is_empty_object(value: &Value) -> bool {
    matches!(value, Value::Object(map) if map.is_empty())
}

/// An answer that must be one JSON object (serde would also fill a struct from an array).
fn typed<T: DeserializeOwned>(endpoint: &str, value: &Value) -> Result<T, NodeError> {
    check_error(endpoint, value)?;
    if !value.is_object() {
        return Err(malformed(
            endpoint,
            format!("expected a JSON object, got {value}"),
        ));
    }
    T::deserialize(value).map_err(|e| malformed(endpoint, e))
}

/// Text the node sends as hex of UTF-8 (visible=false) or as text: decoded when it is hex.
pub fn node_text(text: &str) -> String {
    if !text.is_empty() && text.len().is_multiple_of(2) {
        if let Some(decoded) = hex::decode(text)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        {
            return decoded;
        }
    }
    text.to_string()
}

fn address<'de, D: Deserializer<'de>>(d: D) -> Result<TronAddress, D::Error> {
    let text = String::deserialize(d)?;
    TronAddress::parse(&text).map_err(|e| de::Error::custom(format!("{text:?}: {e}")))
}

fn opt_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TronAddress>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|text| {
            TronAddress::parse(&text).map_err(|e| de::Error::custom(format!("{text:?}: {e}")))
        })
        .transpose()
}

fn hex32<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    let text = String::deserialize(d)?;
    crate::hexstr::decode_array::<32>("32-byte hex", &text).map_err(de::Error::custom)
}

fn hex_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| crate::hexstr::decode("hex", text).map_err(de::Error::custom))
        .collect()
}

// ------------------------------------------------------------------------------------------
// Blocks

#[derive(Deserialize)]
struct HeaderRawJson {
    #[serde(default)]
    number: u64,
    #[serde(default, rename = "parentHash", deserialize_with = "hex32")]
    parent_hash: [u8; 32],
    #[serde(default)]
    timestamp: i64,
    #[serde(default, deserialize_with = "opt_address")]
    witness_address: Option<TronAddress>,
}

#[derive(Deserialize)]
struct HeaderJson {
    raw_data: HeaderRawJson,
}

#[derive(Deserialize)]
struct BlockJson {
    #[serde(rename = "blockID", deserialize_with = "hex32")]
    block_id: [u8; 32],
    block_header: HeaderJson,
    #[serde(default)]
    transactions: Vec<Value>,
}

/// A block (`getnowblock`, `getblockbynum`, `getblock`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeBlock {
    pub id: [u8; 32],
    pub number: u64,
    pub parent: [u8; 32],
    pub timestamp: i64,
    pub witness: Option<TronAddress>,
    pub transactions: Vec<NodeTransaction>,
}

impl NodeBlock {
    /// `None` for `{}`. The id's first 8 bytes must be the header's number.
    pub fn from_node(endpoint: &str, value: &Value) -> Result<Option<Self>, NodeError> {
        check_error(endpoint, value)?;
        if is_empty_object(value) {
            return Ok(None);
        }
        let json: BlockJson = typed(endpoint, value)?;
        let number = json.block_header.raw_data.number;
        if json.block_id[..8] != number.to_be_bytes() {
            return Err(malformed(
                endpoint,
                format!("blockID does not start with the block number {number}"),
            ));
        }
        let transactions = json
            .transactions
            .iter()
            .map(|t| NodeTransaction::parse(endpoint, t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Self {
            id: json.block_id,
            number,
            parent: json.block_header.raw_data.parent_hash,
            timestamp: json.block_header.raw_data.timestamp,
            witness: json.block_header.raw_data.witness_address,
            transactions,
        }))
    }

    /// The TAPOS reference this block gives a transaction built on it.
    pub fn ref_block(&self) -> RefBlock {
        RefBlock::from_block_id(&self.id)
    }

    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }
}

// ------------------------------------------------------------------------------------------
// Transactions

#[derive(Deserialize)]
struct RetJson {
    #[serde(default, rename = "contractRet")]
    contract_ret: Option<String>,
}

#[derive(Deserialize)]
struct TransactionJson {
    #[serde(rename = "txID")]
    txid: String,
    raw_data_hex: String,
    #[serde(default)]
    signature: Vec<String>,
    #[serde(default)]
    ret: Vec<RetJson>,
}

/// A transaction as the node shows it (`gettransactionbyid`, blocks): decoded from its
/// `raw_data_hex`, whose sha256 must be the `txID` it claims.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeTransaction {
    pub txid: TxId,
    pub raw: RawData,
    pub signatures: Vec<Signature>,
    /// `ret[0].contractRet` (SUCCESS, REVERT, OUT_OF_ENERGY, …).
    pub contract_ret: Option<String>,
}

impl NodeTransaction {
    fn parse(endpoint: &str, value: &Value) -> Result<Self, NodeError> {
        let json: TransactionJson = typed(endpoint, value)?;
        let raw = RawData::decode_hex(&json.raw_data_hex).map_err(|e| malformed(endpoint, e))?;
        let txid = raw.txid();
        if !json.txid.eq_ignore_ascii_case(&txid.to_hex()) {
            return Err(malformed(
                endpoint,
                format!(
                    "txID {} is not the hash of raw_data_hex ({txid})",
                    json.txid
                ),
            ));
        }
        let signatures = json
            .signature
            .iter()
            .map(|s| Signature::from_hex(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| malformed(endpoint, e))?;
        Ok(Self {
            txid,
            raw,
            signatures,
            contract_ret: json.ret.into_iter().find_map(|r| r.contract_ret),
        })
    }

    /// `None` for `{}` (not found).
    pub fn from_node(endpoint: &str, value: &Value) -> Result<Option<Self>, NodeError> {
        check_error(endpoint, value)?;
        if is_empty_object(value) {
            return Ok(None);
        }
        Self::parse(endpoint, value).map(Some)
    }
}

// ------------------------------------------------------------------------------------------
// TransactionInfo

/// `TransactionInfo.receipt`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Receipt {
    #[serde(default)]
    pub energy_usage: i64,
    #[serde(default)]
    pub energy_fee: i64,
    #[serde(default)]
    pub origin_energy_usage: i64,
    #[serde(default)]
    pub energy_usage_total: i64,
    #[serde(default)]
    pub net_usage: i64,
    #[serde(default)]
    pub net_fee: i64,
    /// SUCCESS, REVERT, OUT_OF_ENERGY, … (absent for system contracts).
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub energy_penalty_total: i64,
}

#[derive(Deserialize)]
struct InfoJson {
    id: String,
    #[serde(default)]
    fee: i64,
    #[serde(default, rename = "blockNumber")]
    block_number: u64,
    #[serde(default, rename = "blockTimeStamp")]
    block_timestamp: i64,
    #[serde(default, rename = "contractResult", deserialize_with = "hex_list")]
    contract_result: Vec<Vec<u8>>,
    #[serde(default, deserialize_with = "opt_address")]
    contract_address: Option<TronAddress>,
    #[serde(default)]
    receipt: Receipt,
    #[serde(default)]
    log: Vec<LogEntry>,
    #[serde(default)]
    result: Option<String>,
    #[serde(default, rename = "resMessage")]
    res_message: Option<String>,
    #[serde(default)]
    unfreeze_amount: i64,
    #[serde(default)]
    withdraw_amount: i64,
    #[serde(default)]
    withdraw_expire_amount: i64,
}

/// `gettransactioninfobyid`: proof of inclusion (`block_number`) and the receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionInfo {
    pub id: TxId,
    pub fee: i64,
    pub block_number: u64,
    pub block_timestamp: i64,
    pub contract_result: Vec<Vec<u8>>,
    pub contract_address: Option<TronAddress>,
    pub receipt: Receipt,
    pub logs: Vec<LogEntry>,
    /// `"result": "FAILED"`.
    pub failed: bool,
    /// `resMessage`, decoded to text.
    pub res_message: Option<String>,
    pub unfreeze_amount: i64,
    pub withdraw_amount: i64,
    pub withdraw_expire_amount: i64,
}

impl TransactionInfo {
    /// `None` for `{}` (not in a block yet, or not in the solidified view).
    pub fn from_node(endpoint: &str, value: &Value) -> Result<Option<Self>, NodeError> {
        check_error(endpoint, value)?;
        if is_empty_object(value) {
            return Ok(None);
        }
        Self::parse(endpoint, value).map(Some)
    }

    fn parse(endpoint: &str, value: &Value) -> Result<Self, NodeError> {
        let json: InfoJson = typed(endpoint, value)?;
        let id = crate::hexstr::decode_array::<32>("id", &json.id)
            .map(TxId)
            .map_err(|e| malformed(endpoint, e))?;
        let failed = match json.result.as_deref() {
            None | Some("SUCESS") | Some("SUCCESS") => false,
            Some("FAILED") => true,
            Some(other) => return Err(malformed(endpoint, format!("unknown result {other:?}"))),
        };
        Ok(Self {
            id,
            fee: json.fee,
            block_number: json.block_number,
            block_timestamp: json.block_timestamp,
            contract_result: json.contract_result,
            contract_address: json.contract_address,
            receipt: json.receipt,
            logs: json.log,
            failed,
            res_message: json.res_message.as_deref().map(node_text),
            unfreeze_amount: json.unfreeze_amount,
            withdraw_amount: json.withdraw_amount,
            withdraw_expire_amount: json.withdraw_expire_amount,
        })
    }

    /// `gettransactioninfobyblocknum`: a JSON array of infos.
    pub fn list_from_node(endpoint: &str, value: &Value) -> Result<Vec<Self>, NodeError> {
        check_error(endpoint, value)?;
        match value {
            Value::Array(items) => items.iter().map(|v| Self::parse(endpoint, v)).collect(),
            v if is_empty_object(v) => Ok(Vec::new()),
            _ => Err(malformed(endpoint, "expected a JSON array")),
        }
    }

    /// Whether the transaction did what it asked: no `FAILED`, and a smart-contract receipt
    /// (when present) says SUCCESS.
    pub fn succeeded(&self) -> bool {
        !self.failed
            && self
                .receipt
                .result
                .as_deref()
                .is_none_or(|r| r == "SUCCESS")
    }

    /// The TRC20 `Transfer` events, in log order with their index (only for a success).
    pub fn transfer_logs(&self) -> Result<Vec<(usize, TransferLog)>, trc20::Trc20Error> {
        if !self.succeeded() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (index, log) in self.logs.iter().enumerate() {
            if let Some(transfer) = trc20::parse_transfer_log(log)? {
                out.push((index, transfer));
            }
        }
        Ok(out)
    }
}

// ------------------------------------------------------------------------------------------
// Broadcast

#[derive(Deserialize)]
struct BroadcastJson {
    #[serde(default)]
    result: Option<bool>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    txid: Option<String>,
}

/// A broadcast reply, from either shape (`broadcasthex` always writes every field with the
/// message as text; `broadcasttransaction` leaves defaults out and writes the message as hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    pub code: ResponseCode,
    /// For people only; never decide on it.
    pub message: String,
    pub txid: Option<String>,
}

impl Broadcast {
    pub fn from_node(endpoint: &str, value: &Value) -> Result<Self, NodeError> {
        let json: BroadcastJson = typed(endpoint, value)?;
        let code = match (json.code.as_deref(), json.result) {
            (Some(code), _) => ResponseCode::parse(code),
            (None, Some(true)) => ResponseCode::Success,
            (None, _) => return Err(malformed(endpoint, "a broadcast reply without a code")),
        };
        if json.result == Some(true) && code != ResponseCode::Success {
            return Err(malformed(endpoint, format!("result true with code {code}")));
        }
        Ok(Self {
            code,
            message: json.message.as_deref().map(node_text).unwrap_or_default(),
            txid: json.txid,
        })
    }

    pub fn class(&self) -> BroadcastClass {
        self.code.class()
    }
}

// ------------------------------------------------------------------------------------------
// Accounts and resources

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PermissionKey {
    #[serde(deserialize_with = "address")]
    pub address: TronAddress,
    #[serde(default)]
    pub weight: i64,
}

/// `owner_permission` / `active_permission[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Permission {
    #[serde(default)]
    pub id: i32,
    #[serde(default)]
    pub permission_name: String,
    #[serde(default)]
    pub threshold: i64,
    #[serde(default)]
    pub keys: Vec<PermissionKey>,
}

#[derive(Deserialize)]
struct FrozenJson {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    amount: i64,
}

#[derive(Deserialize, Default)]
struct AccountResourceJson {
    #[serde(default)]
    energy_usage: i64,
    #[serde(default, rename = "delegated_frozenV2_balance_for_energy")]
    delegated_energy: i64,
    #[serde(default, rename = "acquired_delegated_frozenV2_balance_for_energy")]
    acquired_energy: i64,
}

#[derive(Deserialize)]
struct AccountJson {
    #[serde(deserialize_with = "address")]
    address: TronAddress,
    #[serde(default)]
    balance: i64,
    #[serde(default)]
    create_time: i64,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default, rename = "frozenV2")]
    frozen_v2: Vec<FrozenJson>,
    #[serde(default)]
    account_resource: AccountResourceJson,
    #[serde(default, rename = "delegated_frozenV2_balance_for_bandwidth")]
    delegated_bandwidth: i64,
    #[serde(default, rename = "acquired_delegated_frozenV2_balance_for_bandwidth")]
    acquired_bandwidth: i64,
    #[serde(default)]
    owner_permission: Option<Permission>,
    #[serde(default)]
    active_permission: Vec<Permission>,
}

/// `getaccount`: what the engine needs of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub address: TronAddress,
    /// Sun.
    pub balance: i64,
    pub create_time: i64,
    pub is_contract: bool,
    /// Own stake not lent out (sun).
    pub frozen_energy: i64,
    pub frozen_bandwidth: i64,
    pub delegated_energy: i64,
    pub acquired_energy: i64,
    pub delegated_bandwidth: i64,
    pub acquired_bandwidth: i64,
    /// Energy used as last recorded (not recovered to now; see `getaccountresource`).
    pub energy_usage: i64,
    pub owner_permission: Option<Permission>,
    pub active_permissions: Vec<Permission>,
}

impl AccountInfo {
    /// `None` for `{}`: the account does not exist (is not activated).
    pub fn from_node(endpoint: &str, value: &Value) -> Result<Option<Self>, NodeError> {
        check_error(endpoint, value)?;
        if is_empty_object(value) {
            return Ok(None);
        }
        let json: AccountJson = typed(endpoint, value)?;
        let frozen = |name: Option<&str>| {
            json.frozen_v2
                .iter()
                .filter(|f| f.kind.as_deref() == name)
                .map(|f| f.amount)
                .sum::<i64>()
        };
        let r = &json.account_resource;
        Ok(Some(Self {
            address: json.address,
            balance: json.balance,
            create_time: json.create_time,
            is_contract: json.kind.as_deref() == Some("Contract"),
            frozen_energy: frozen(Some("ENERGY")),
            frozen_bandwidth: frozen(None),
            delegated_energy: r.delegated_energy,
            acquired_energy: r.acquired_energy,
            delegated_bandwidth: json.delegated_bandwidth,
            acquired_bandwidth: json.acquired_bandwidth,
            energy_usage: r.energy_usage,
            owner_permission: json.owner_permission,
            active_permissions: json.active_permission,
        }))
    }
}

/// `getaccountresource`. Absent fields are 0, except `TotalEnergyLimit`: a network parameter the
/// node always sends (never 0), so an answer without it is not an account's resources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AccountResource {
    #[serde(default, rename = "freeNetUsed")]
    pub free_net_used: i64,
    #[serde(default, rename = "freeNetLimit")]
    pub free_net_limit: i64,
    #[serde(default, rename = "NetUsed")]
    pub net_used: i64,
    #[serde(default, rename = "NetLimit")]
    pub net_limit: i64,
    #[serde(default, rename = "TotalNetLimit")]
    pub total_net_limit: i64,
    #[serde(default, rename = "TotalNetWeight")]
    pub total_net_weight: i64,
    #[serde(default, rename = "tronPowerLimit")]
    pub tron_power_limit: i64,
    #[serde(default, rename = "EnergyUsed")]
    pub energy_used: i64,
    #[serde(default, rename = "EnergyLimit")]
    pub energy_limit: i64,
    #[serde(rename = "TotalEnergyLimit")]
    pub total_energy_limit: i64,
    #[serde(default, rename = "TotalEnergyWeight")]
    pub total_energy_weight: i64,
}

impl AccountResource {
    /// `None` for `{}` (no such account).
    pub fn from_node(endpoint: &str, value: &Value) -> Result<Option<Self>, NodeError> {
        check_error(endpoint, value)?;
        if is_empty_object(value) {
            return Ok(None);
        }
        typed(endpoint, value).map(Some)
    }

    /// `EnergyLimit − EnergyUsed`, never negative.
    pub fn energy_available(&self) -> i64 {
        (self.energy_limit - self.energy_used).max(0)
    }

    /// The energy `staked_sun` yields at today's network totals (integer arithmetic).
    pub fn energy_for_stake(&self, staked_sun: i64) -> i64 {
        energy_for_stake(
            staked_sun,
            self.total_energy_limit,
            self.total_energy_weight,
        )
    }
}

/// `floor(staked_TRX × TotalEnergyLimit / TotalEnergyWeight)`, with `TotalEnergyWeight` in whole
/// TRX (docs/tron.md §1.3). 0 below 1 TRX.
pub fn energy_for_stake(staked_sun: i64, total_energy_limit: i64, total_energy_weight: i64) -> i64 {
    if staked_sun < 1_000_000 || total_energy_weight <= 0 || total_energy_limit <= 0 {
        return 0;
    }
    let trx = i128::from(staked_sun / 1_000_000);
    let energy = trx * i128::from(total_energy_limit) / i128::from(total_energy_weight);
    i64::try_from(energy).unwrap_or(i64::MAX)
}

/// The stake (sun) that yields at least `energy`: `ceil(E × weight × 1e6 / limit)`, at least
/// 1 TRX (docs/tron.md §1.3). The node counts whole TRX, so the result is rounded up to a TRX.
pub fn stake_for_energy(energy: i64, total_energy_limit: i64, total_energy_weight: i64) -> i64 {
    if energy <= 0 || total_energy_limit <= 0 {
        return 1_000_000;
    }
    let numerator = i128::from(energy) * i128::from(total_energy_weight);
    let limit = i128::from(total_energy_limit);
    let trx = (numerator + limit - 1) / limit;
    i64::try_from(trx.max(1) * 1_000_000).unwrap_or(i64::MAX)
}

/// `getcandelegatedmaxsize`: `{"max_size": n}`, or `{}` for 0 (any other object is malformed).
pub fn max_size_from_node(endpoint: &str, value: &Value) -> Result<i64, NodeError> {
    #[derive(Deserialize)]
    struct Json {
        max_size: i64,
    }
    check_error(endpoint, value)?;
    if is_empty_object(value) {
        return Ok(0);
    }
    let json: Json = typed(endpoint, value)?;
    Ok(json.max_size)
}

/// One `getdelegatedresourcev2` record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DelegatedResource {
    #[serde(deserialize_with = "address")]
    pub from: TronAddress,
    #[serde(deserialize_with = "address")]
    pub to: TronAddress,
    #[serde(default)]
    pub frozen_balance_for_bandwidth: i64,
    #[serde(default)]
    pub frozen_balance_for_energy: i64,
    #[serde(default)]
    pub expire_time_for_bandwidth: i64,
    /// Ms since the epoch; 0 for an unlocked delegation.
    #[serde(default)]
    pub expire_time_for_energy: i64,
}

impl DelegatedResource {
    /// `{"delegatedResource": [...]}`, or `{}` for none (any other object is malformed).
    pub fn list_from_node(endpoint: &str, value: &Value) -> Result<Vec<Self>, NodeError> {
        #[derive(Deserialize)]
        struct Json {
            #[serde(rename = "delegatedResource")]
            delegated_resource: Vec<DelegatedResource>,
        }
        check_error(endpoint, value)?;
        if is_empty_object(value) {
            return Ok(Vec::new());
        }
        let json: Json = typed(endpoint, value)?;
        Ok(json.delegated_resource)
    }

    pub fn resource_balance(&self, resource: Resource) -> i64 {
        match resource {
            Resource::Energy => self.frozen_balance_for_energy,
            _ => self.frozen_balance_for_bandwidth,
        }
    }
}

// ------------------------------------------------------------------------------------------
// Node info, constant calls, chain parameters

/// `getnodeinfo`: the head and solid blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub block_number: u64,
    pub block_id: [u8; 32],
    pub solid_number: u64,
    pub solid_id: [u8; 32],
}

fn num_and_id(text: &str) -> Option<(u64, [u8; 32])> {
    let (num, id) = text.split_once(',')?;
    let num = num.strip_prefix("Num:")?.parse().ok()?;
    let id = crate::hexstr::decode_array::<32>("ID", id.strip_prefix("ID:")?).ok()?;
    Some((num, id))
}

impl NodeInfo {
    pub fn from_node(endpoint: &str, value: &Value) -> Result<Self, NodeError> {
        #[derive(Deserialize)]
        struct Json {
            block: String,
            #[serde(rename = "solidityBlock")]
            solidity_block: String,
        }
        let json: Json = typed(endpoint, value)?;
        let parse = |text: &str| {
            num_and_id(text)
                .ok_or_else(|| malformed(endpoint, format!("{text:?} is not Num:<n>,ID:<hex>")))
        };
        let (block_number, block_id) = parse(&json.block)?;
        let (solid_number, solid_id) = parse(&json.solidity_block)?;
        Ok(Self {
            block_number,
            block_id,
            solid_number,
            solid_id,
        })
    }
}

/// `triggerconstantcontract`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstantCall {
    /// `result.result`: the call ran and did not revert.
    pub ok: bool,
    /// `result.code` when the node refused the call.
    pub code: Option<ResponseCode>,
    pub message: Option<String>,
    pub energy_used: i64,
    pub constant_result: Vec<Vec<u8>>,
}

impl ConstantCall {
    pub fn from_node(endpoint: &str, value: &Value) -> Result<Self, NodeError> {
        #[derive(Deserialize)]
        struct ResultJson {
            #[serde(default)]
            result: bool,
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            message: Option<String>,
        }
        // `result` is always there (`{}` at worst); without it this is not a call's answer.
        #[derive(Deserialize)]
        struct Json {
            result: ResultJson,
            #[serde(default)]
            energy_used: i64,
            #[serde(default, deserialize_with = "hex_list")]
            constant_result: Vec<Vec<u8>>,
        }
        let json: Json = typed(endpoint, value)?;
        Ok(Self {
            ok: json.result.result,
            code: json.result.code.as_deref().map(ResponseCode::parse),
            message: json.result.message.as_deref().map(node_text),
            energy_used: json.energy_used,
            constant_result: json.constant_result,
        })
    }

    /// The first output word as an unsigned integer (`balanceOf`, `decimals`).
    pub fn uint_result(&self, endpoint: &str) -> Result<u128, NodeError> {
        if !self.ok {
            return Err(NodeError::Servlet {
                endpoint: endpoint.to_string(),
                message: self
                    .message
                    .clone()
                    .unwrap_or_else(|| "the constant call failed".into()),
            });
        }
        let word = self
            .constant_result
            .first()
            .filter(|w| w.len() == 32)
            .ok_or_else(|| malformed(endpoint, "constant_result is not one 32-byte word"))?;
        if word[..16].iter().any(|b| *b != 0) {
            return Err(malformed(endpoint, "the result does not fit in 128 bits"));
        }
        let mut low = [0u8; 16];
        low.copy_from_slice(&word[16..]);
        Ok(u128::from_be_bytes(low))
    }
}

/// `getchainparameters`: key → value. The node always sends `chainParameter`; a parameter whose
/// value is 0 comes with its `key` only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainParameters(pub BTreeMap<String, i64>);

impl ChainParameters {
    pub fn from_node(endpoint: &str, value: &Value) -> Result<Self, NodeError> {
        #[derive(Deserialize)]
        struct Entry {
            key: String,
            #[serde(default)]
            value: i64,
        }
        #[derive(Deserialize)]
        struct Json {
            #[serde(rename = "chainParameter")]
            chain_parameter: Vec<Entry>,
        }
        let json: Json = typed(endpoint, value)?;
        Ok(Self(
            json.chain_parameter
                .into_iter()
                .map(|e| (e.key, e.value))
                .collect(),
        ))
    }

    pub fn get(&self, key: &str) -> Option<i64> {
        self.0.get(key).copied()
    }

    /// `getEnergyFee`: sun per energy burned.
    pub fn energy_fee(&self) -> Option<i64> {
        self.get("getEnergyFee")
    }
}

// ------------------------------------------------------------------------------------------
// TronGrid v1 (not a full-node endpoint; here so its items parse to the same types)

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenInfo {
    pub symbol: String,
    #[serde(deserialize_with = "address")]
    pub address: TronAddress,
    pub decimals: u32,
    pub name: String,
}

/// An item of TronGrid's `/v1/accounts/{addr}/transactions/trc20`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trc20TransferItem {
    pub txid: TxId,
    pub token: TokenInfo,
    pub block_timestamp: i64,
    pub from: TronAddress,
    pub to: TronAddress,
    pub kind: String,
    /// Base units.
    pub value: u128,
}

impl Trc20TransferItem {
    pub fn from_node(endpoint: &str, value: &Value) -> Result<Self, NodeError> {
        #[derive(Deserialize)]
        struct Json {
            transaction_id: String,
            token_info: TokenInfo,
            block_timestamp: i64,
            #[serde(deserialize_with = "address")]
            from: TronAddress,
            #[serde(deserialize_with = "address")]
            to: TronAddress,
            #[serde(rename = "type")]
            kind: String,
            value: String,
        }
        let json: Json = typed(endpoint, value)?;
        Ok(Self {
            txid: crate::hexstr::decode_array::<32>("transaction_id", &json.transaction_id)
                .map(TxId)
                .map_err(|e| malformed(endpoint, e))?,
            token: json.token_info,
            block_timestamp: json.block_timestamp,
            from: json.from,
            to: json.to,
            kind: json.kind,
            value: json
                .value
                .parse()
                .map_err(|_| malformed(endpoint, "value is not a base-10 integer"))?,
        })
    }
}

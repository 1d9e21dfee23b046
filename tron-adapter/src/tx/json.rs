//! The full node's JSON form of `raw_data` with `visible=false`: addresses as `41…` hex, bytes as
//! hex, `"type": "DelegateResourceContract"`, `"parameter": {"value": {…}, "type_url": …}`,
//! `"resource": "ENERGY"`, proto3 defaults left out, `Permission_id` kept. Reading also accepts
//! base58 addresses (what `visible=true` prints), and the whole transaction object the node
//! returns (`{"txID", "raw_data", "raw_data_hex", …}`), whose `txID` and `raw_data_hex` must then
//! agree with the encoding of its `raw_data`. A contract type this code does not decode is written
//! with `"value_hex"` (its raw value bytes) instead of `"value"`; that is our extension.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::contract_type;
use super::contracts::{
    ContractCall, DelegateResource, OtherContract, Resource, Transfer, TriggerSmart,
    UnDelegateResource,
};
use super::raw::{Authority, RawData, TxContract};
use super::TxError;
use crate::TronAddress;

/// Bytes, written as lower-case hex.
#[derive(Debug, Clone, Default, PartialEq)]
struct Hex(Vec<u8>);

impl Hex {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::hexstr::decode("hex field", &text)
            .map(Hex)
            .map_err(de::Error::custom)
    }
}

/// An address: written as `41…` hex, read from either form.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Addr(TronAddress);

impl Serialize for Addr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_hex())
    }
}

impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        TronAddress::parse(&text)
            .map(Addr)
            .map_err(|e| de::Error::custom(format!("{text:?}: {e}")))
    }
}

/// `ResourceCode`: written as its name, read from the name or the number.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ResourceJson(Resource);

impl Default for ResourceJson {
    fn default() -> Self {
        Self(Resource::Bandwidth)
    }
}

impl ResourceJson {
    fn is_default(&self) -> bool {
        self.0 == Resource::Bandwidth
    }
}

impl Serialize for ResourceJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.name() {
            Some(name) => s.serialize_str(name),
            None => s.serialize_i32(self.0.number()),
        }
    }
}

impl<'de> Deserialize<'de> for ResourceJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(name) => Resource::from_name(&name)
                .map(ResourceJson)
                .ok_or_else(|| de::Error::custom(format!("unknown resource {name:?}"))),
            Value::Number(n) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(|n| ResourceJson(Resource::from_number(n)))
                .ok_or_else(|| de::Error::custom("resource number out of range")),
            _ => Err(de::Error::custom("resource must be a name or a number")),
        }
    }
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferJson {
    owner_address: Addr,
    to_address: Addr,
    #[serde(default, skip_serializing_if = "is_zero")]
    amount: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerJson {
    owner_address: Addr,
    contract_address: Addr,
    #[serde(default, skip_serializing_if = "is_zero")]
    call_value: i64,
    #[serde(default, skip_serializing_if = "Hex::is_empty")]
    data: Hex,
    #[serde(default, skip_serializing_if = "is_zero")]
    call_token_value: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    token_id: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DelegateJson {
    owner_address: Addr,
    #[serde(default, skip_serializing_if = "ResourceJson::is_default")]
    resource: ResourceJson,
    #[serde(default, skip_serializing_if = "is_zero")]
    balance: i64,
    receiver_address: Addr,
    #[serde(default, skip_serializing_if = "is_false")]
    lock: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    lock_period: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnDelegateJson {
    owner_address: Addr,
    #[serde(default, skip_serializing_if = "ResourceJson::is_default")]
    resource: ResourceJson,
    #[serde(default, skip_serializing_if = "is_zero")]
    balance: i64,
    receiver_address: Addr,
}

/// `parameter.value`: typed when written (so fields keep their order), any JSON when read (it is
/// dispatched on the contract's `type` afterwards).
#[derive(Serialize)]
#[serde(untagged)]
enum ValueJson {
    Transfer(TransferJson),
    Trigger(TriggerJson),
    Delegate(DelegateJson),
    UnDelegate(UnDelegateJson),
    Read(Value),
}

impl<'de> Deserialize<'de> for ValueJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(ValueJson::Read)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParameterJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<ValueJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_hex: Option<Hex>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    type_url: Option<String>,
}

/// The contract type: its name when the protocol has one, else its number.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum TypeJson {
    Name(String),
    Number(i32),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContractJson {
    parameter: ParameterJson,
    #[serde(rename = "type")]
    kind: TypeJson,
    #[serde(rename = "Permission_id", default, skip_serializing_if = "is_zero_i32")]
    permission_id: i32,
    #[serde(default, skip_serializing_if = "Hex::is_empty")]
    provider: Hex,
    #[serde(
        rename = "ContractName",
        default,
        skip_serializing_if = "Hex::is_empty"
    )]
    contract_name: Hex,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AccountIdJson {
    #[serde(default, skip_serializing_if = "Hex::is_empty")]
    name: Hex,
    #[serde(default, skip_serializing_if = "Hex::is_empty")]
    address: Hex,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorityJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account: Option<AccountIdJson>,
    #[serde(default, skip_serializing_if = "Hex::is_empty")]
    permission_name: Hex,
}

/// `raw_data` in the node's JSON form. Serialises with the node's field names in a stable order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataJson {
    #[serde(default)]
    contract: Vec<ContractJson>,
    #[serde(default, skip_serializing_if = "Hex::is_empty")]
    ref_block_bytes: Hex,
    #[serde(default, skip_serializing_if = "is_zero")]
    ref_block_num: i64,
    #[serde(default, skip_serializing_if = "Hex::is_empty")]
    ref_block_hash: Hex,
    #[serde(default, skip_serializing_if = "is_zero")]
    expiration: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    auths: Vec<AuthorityJson>,
    #[serde(default, skip_serializing_if = "Hex::is_empty")]
    data: Hex,
    #[serde(default, skip_serializing_if = "Hex::is_empty")]
    scripts: Hex,
    #[serde(default, skip_serializing_if = "is_zero")]
    timestamp: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    fee_limit: i64,
}

/// The node's JSON form of `raw`.
pub fn to_node_json(raw: &RawData) -> RawDataJson {
    RawDataJson {
        contract: raw.contracts.iter().map(contract_to_json).collect(),
        ref_block_bytes: Hex(raw.ref_block_bytes.clone()),
        ref_block_num: raw.ref_block_num,
        ref_block_hash: Hex(raw.ref_block_hash.clone()),
        expiration: raw.expiration,
        auths: raw
            .auths
            .iter()
            .map(|a| AuthorityJson {
                account: a.account.as_ref().map(|(name, address)| AccountIdJson {
                    name: Hex(name.clone()),
                    address: Hex(address.clone()),
                }),
                permission_name: Hex(a.permission_name.clone()),
            })
            .collect(),
        data: Hex(raw.data.clone()),
        scripts: Hex(raw.scripts.clone()),
        timestamp: raw.timestamp,
        fee_limit: raw.fee_limit,
    }
}

fn contract_to_json(c: &TxContract) -> ContractJson {
    let number = c.call.type_number();
    let kind = match contract_type::name(number) {
        Some(name) => TypeJson::Name(name.to_string()),
        None => TypeJson::Number(number),
    };
    let any = c.call.to_any();
    let (value, value_hex) = match &c.call {
        ContractCall::Transfer(t) => (
            Some(ValueJson::Transfer(TransferJson {
                owner_address: Addr(t.owner),
                to_address: Addr(t.to),
                amount: t.amount,
            })),
            None,
        ),
        ContractCall::TriggerSmart(t) => (
            Some(ValueJson::Trigger(TriggerJson {
                owner_address: Addr(t.owner),
                contract_address: Addr(t.contract),
                call_value: t.call_value,
                data: Hex(t.data.clone()),
                call_token_value: t.call_token_value,
                token_id: t.token_id,
            })),
            None,
        ),
        ContractCall::DelegateResource(d) => (
            Some(ValueJson::Delegate(DelegateJson {
                owner_address: Addr(d.owner),
                resource: ResourceJson(d.resource),
                balance: d.balance,
                receiver_address: Addr(d.receiver),
                lock: d.lock,
                lock_period: d.lock_period,
            })),
            None,
        ),
        ContractCall::UnDelegateResource(u) => (
            Some(ValueJson::UnDelegate(UnDelegateJson {
                owner_address: Addr(u.owner),
                resource: ResourceJson(u.resource),
                balance: u.balance,
                receiver_address: Addr(u.receiver),
            })),
            None,
        ),
        ContractCall::Other(o) => (None, Some(Hex(o.value.clone()))),
    };
    ContractJson {
        parameter: ParameterJson {
            value,
            value_hex,
            type_url: Some(any.type_url),
        },
        kind,
        permission_id: c.permission_id,
        provider: Hex(c.provider.clone()),
        contract_name: Hex(c.contract_name.clone()),
    }
}

/// `raw_data` from the node's JSON form (the `raw_data` object itself).
pub fn from_node_json(value: &Value) -> Result<RawData, TxError> {
    let json = RawDataJson::deserialize(value).map_err(|e| TxError::Json(e.to_string()))?;
    let contracts = json
        .contract
        .into_iter()
        .enumerate()
        .map(|(index, c)| contract_from_json(index, c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RawData {
        ref_block_bytes: json.ref_block_bytes.0,
        ref_block_num: json.ref_block_num,
        ref_block_hash: json.ref_block_hash.0,
        expiration: json.expiration,
        auths: json
            .auths
            .into_iter()
            .map(|a| Authority {
                account: a.account.map(|id| (id.name.0, id.address.0)),
                permission_name: a.permission_name.0,
            })
            .collect(),
        data: json.data.0,
        contracts,
        scripts: json.scripts.0,
        timestamp: json.timestamp,
        fee_limit: json.fee_limit,
    })
}

fn contract_from_json(index: usize, c: ContractJson) -> Result<TxContract, TxError> {
    let err = |msg: String| TxError::Json(format!("contract #{index}: {msg}"));
    let number = match c.kind {
        TypeJson::Number(n) => n,
        TypeJson::Name(name) => contract_type::number(&name)
            .ok_or_else(|| err(format!("unknown contract type {name:?}")))?,
    };
    let expected_url = contract_type::type_url(number);
    // The decoded contracts must carry their canonical type_url (as in the bytes); any other
    // type keeps whatever type_url it has, so it round-trips unchanged.
    let type_url = match (c.parameter.type_url, &expected_url) {
        (Some(given), Some(expected)) if is_typed(number) && &given != expected => {
            return Err(err(format!(
                "type_url {given:?} does not match type {number}"
            )))
        }
        (Some(given), _) => given,
        (None, Some(expected)) => expected.clone(),
        (None, None) => return Err(err("type_url is missing".into())),
    };
    let call = match (c.parameter.value, c.parameter.value_hex) {
        (Some(ValueJson::Read(v)), None) => typed_call(index, number, v)?,
        (None, Some(_)) if is_typed(number) => {
            return Err(err(
                "this contract type takes a JSON value, not value_hex".into()
            ))
        }
        (None, Some(bytes)) => ContractCall::Other(OtherContract {
            type_number: number,
            type_url,
            value: bytes.0,
        }),
        (None, None) => return Err(err("parameter has neither value nor value_hex".into())),
        _ => return Err(err("parameter has both value and value_hex".into())),
    };
    Ok(TxContract {
        call,
        permission_id: c.permission_id,
        provider: c.provider.0,
        contract_name: c.contract_name.0,
    })
}

fn is_typed(number: i32) -> bool {
    matches!(
        number,
        contract_type::TRANSFER
            | contract_type::TRIGGER_SMART
            | contract_type::DELEGATE_RESOURCE
            | contract_type::UNDELEGATE_RESOURCE
    )
}

fn typed_call(index: usize, number: i32, v: Value) -> Result<ContractCall, TxError> {
    let e =
        |e: serde_json::Error| TxError::Json(format!("contract #{index}: parameter.value: {e}"));
    Ok(match number {
        contract_type::TRANSFER => {
            let j = TransferJson::deserialize(v).map_err(e)?;
            ContractCall::Transfer(Transfer {
                owner: j.owner_address.0,
                to: j.to_address.0,
                amount: j.amount,
            })
        }
        contract_type::TRIGGER_SMART => {
            let j = TriggerJson::deserialize(v).map_err(e)?;
            ContractCall::TriggerSmart(TriggerSmart {
                owner: j.owner_address.0,
                contract: j.contract_address.0,
                call_value: j.call_value,
                data: j.data.0,
                call_token_value: j.call_token_value,
                token_id: j.token_id,
            })
        }
        contract_type::DELEGATE_RESOURCE => {
            let j = DelegateJson::deserialize(v).map_err(e)?;
            ContractCall::DelegateResource(DelegateResource {
                owner: j.owner_address.0,
                resource: j.resource.0,
                balance: j.balance,
                receiver: j.receiver_address.0,
                lock: j.lock,
                lock_period: j.lock_period,
            })
        }
        contract_type::UNDELEGATE_RESOURCE => {
            let j = UnDelegateJson::deserialize(v).map_err(e)?;
            ContractCall::UnDelegateResource(UnDelegateResource {
                owner: j.owner_address.0,
                resource: j.resource.0,
                balance: j.balance,
                receiver: j.receiver_address.0,
            })
        }
        _ => {
            return Err(TxError::Json(format!(
                "contract #{index}: contract type {number} is not decoded here; give its value \
                 as value_hex"
            )))
        }
    })
}

/// What `trx-energy tron encode` reads: the `raw_data` object itself, or a transaction object
/// holding it (as the node returns it), with the `txID`/`raw_data_hex` it claims.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeJsonInput {
    pub raw: RawData,
    pub claimed_txid: Option<String>,
    pub claimed_raw_data_hex: Option<String>,
}

impl NodeJsonInput {
    /// Checks the claimed `txID` and `raw_data_hex` (when present) against the encoding of
    /// `raw_data`: a node re-serialises the JSON when broadcasting, so they must agree.
    pub fn check_claims(&self) -> Result<(), TxError> {
        let bytes = self.raw.encode();
        if let Some(claimed) = &self.claimed_raw_data_hex {
            if !claimed.eq_ignore_ascii_case(&hex::encode(&bytes)) {
                return Err(TxError::Json(
                    "raw_data_hex in the JSON is not the encoding of its raw_data".into(),
                ));
            }
        }
        if let Some(claimed) = &self.claimed_txid {
            let ours = super::raw::TxId::of(&bytes).to_hex();
            if !claimed.eq_ignore_ascii_case(&ours) {
                return Err(TxError::Json(format!(
                    "txID in the JSON is {claimed}, but its raw_data hashes to {ours}"
                )));
            }
        }
        Ok(())
    }
}

/// Reads either form (see [`NodeJsonInput`]).
pub fn parse_node_json(value: &Value) -> Result<NodeJsonInput, TxError> {
    let Value::Object(map) = value else {
        return Err(TxError::Json("expected a JSON object".into()));
    };
    let Some(raw_value) = map.get("raw_data") else {
        return Ok(NodeJsonInput {
            raw: from_node_json(value)?,
            claimed_txid: None,
            claimed_raw_data_hex: None,
        });
    };
    let text = |key: &str| -> Result<Option<String>, TxError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(TxError::Json(format!("{key} must be a string"))),
        }
    };
    let raw = from_node_json(raw_value)?;
    if map.get("visible") == Some(&Value::Bool(true)) && !raw.data.is_empty() {
        return Err(TxError::Json(
            "with visible=true the memo is text, not hex; ask the node with visible=false".into(),
        ));
    }
    Ok(NodeJsonInput {
        raw,
        claimed_txid: text("txID")?,
        claimed_raw_data_hex: text("raw_data_hex")?,
    })
}

/// `{"txID": …, "raw_data": …}`, what `trx-energy tron decode` prints.
#[derive(Serialize)]
pub struct DecodedTx {
    #[serde(rename = "txID")]
    pub txid: String,
    pub raw_data: RawDataJson,
}

impl DecodedTx {
    pub fn new(raw: &RawData) -> Self {
        Self {
            txid: raw.txid().to_hex(),
            raw_data: to_node_json(raw),
        }
    }
}

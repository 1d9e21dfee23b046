//! Typed contracts: what a transaction asks the chain to do, with validated addresses. The four
//! the engine builds (TRX transfer, TRC20 call, delegate, undelegate) are decoded field by field;
//! any other contract type is kept as its type number, `type_url` and raw value bytes.

use prost::Message;

use super::contract_type::{self, DELEGATE_RESOURCE, TRANSFER, TRIGGER_SMART, UNDELEGATE_RESOURCE};
use super::wire;
use super::TxError;
use crate::TronAddress;

/// `ResourceCode`: BANDWIDTH 0 (the proto3 default, absent from the bytes), ENERGY 1, TRON_POWER 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Bandwidth,
    Energy,
    TronPower,
    /// A number the protocol may add later.
    Other(i32),
}

impl Resource {
    pub fn from_number(n: i32) -> Self {
        match n {
            0 => Self::Bandwidth,
            1 => Self::Energy,
            2 => Self::TronPower,
            other => Self::Other(other),
        }
    }

    pub fn number(self) -> i32 {
        match self {
            Self::Bandwidth => 0,
            Self::Energy => 1,
            Self::TronPower => 2,
            Self::Other(n) => n,
        }
    }

    /// The node's JSON name, when there is one.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Self::Bandwidth => Some("BANDWIDTH"),
            Self::Energy => Some("ENERGY"),
            Self::TronPower => Some("TRON_POWER"),
            Self::Other(_) => None,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "BANDWIDTH" => Some(Self::Bandwidth),
            "ENERGY" => Some(Self::Energy),
            "TRON_POWER" => Some(Self::TronPower),
            _ => None,
        }
    }
}

/// `TransferContract`: `amount` sun of TRX from `owner` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub owner: TronAddress,
    pub to: TronAddress,
    pub amount: i64,
}

/// `TriggerSmartContract`: a call to `contract` with ABI `data` (e.g. TRC20 `transfer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerSmart {
    pub owner: TronAddress,
    pub contract: TronAddress,
    pub call_value: i64,
    pub data: Vec<u8>,
    pub call_token_value: i64,
    pub token_id: i64,
}

/// `DelegateResourceContract`: lend `balance` sun of staked TRX's resource to `receiver`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegateResource {
    pub owner: TronAddress,
    pub resource: Resource,
    pub balance: i64,
    pub receiver: TronAddress,
    pub lock: bool,
    /// Blocks (3 s each); only meaningful with `lock`.
    pub lock_period: i64,
}

/// `UnDelegateResourceContract`: take back `balance` sun of a delegation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnDelegateResource {
    pub owner: TronAddress,
    pub resource: Resource,
    pub balance: i64,
    pub receiver: TronAddress,
}

/// A contract type this code does not decode: its number, `type_url` and value bytes, untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherContract {
    pub type_number: i32,
    pub type_url: String,
    pub value: Vec<u8>,
}

/// What one `Transaction.Contract` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractCall {
    Transfer(Transfer),
    TriggerSmart(TriggerSmart),
    DelegateResource(DelegateResource),
    UnDelegateResource(UnDelegateResource),
    Other(OtherContract),
}

impl ContractCall {
    pub fn type_number(&self) -> i32 {
        match self {
            Self::Transfer(_) => TRANSFER,
            Self::TriggerSmart(_) => TRIGGER_SMART,
            Self::DelegateResource(_) => DELEGATE_RESOURCE,
            Self::UnDelegateResource(_) => UNDELEGATE_RESOURCE,
            Self::Other(other) => other.type_number,
        }
    }

    /// The address that must sign (for the decoded types).
    pub fn owner(&self) -> Option<TronAddress> {
        match self {
            Self::Transfer(c) => Some(c.owner),
            Self::TriggerSmart(c) => Some(c.owner),
            Self::DelegateResource(c) => Some(c.owner),
            Self::UnDelegateResource(c) => Some(c.owner),
            Self::Other(_) => None,
        }
    }

    pub(crate) fn to_any(&self) -> wire::Any {
        let (type_url, value) = match self {
            Self::Transfer(c) => (
                TRANSFER,
                wire::TransferContract {
                    owner_address: c.owner.as_bytes().to_vec(),
                    to_address: c.to.as_bytes().to_vec(),
                    amount: c.amount,
                }
                .encode_to_vec(),
            ),
            Self::TriggerSmart(c) => (
                TRIGGER_SMART,
                wire::TriggerSmartContract {
                    owner_address: c.owner.as_bytes().to_vec(),
                    contract_address: c.contract.as_bytes().to_vec(),
                    call_value: c.call_value,
                    data: c.data.clone(),
                    call_token_value: c.call_token_value,
                    token_id: c.token_id,
                }
                .encode_to_vec(),
            ),
            Self::DelegateResource(c) => (
                DELEGATE_RESOURCE,
                wire::DelegateResourceContract {
                    owner_address: c.owner.as_bytes().to_vec(),
                    resource: c.resource.number(),
                    balance: c.balance,
                    receiver_address: c.receiver.as_bytes().to_vec(),
                    lock: c.lock,
                    lock_period: c.lock_period,
                }
                .encode_to_vec(),
            ),
            Self::UnDelegateResource(c) => (
                UNDELEGATE_RESOURCE,
                wire::UnDelegateResourceContract {
                    owner_address: c.owner.as_bytes().to_vec(),
                    resource: c.resource.number(),
                    balance: c.balance,
                    receiver_address: c.receiver.as_bytes().to_vec(),
                }
                .encode_to_vec(),
            ),
            Self::Other(other) => {
                return wire::Any {
                    type_url: other.type_url.clone(),
                    value: other.value.clone(),
                }
            }
        };
        wire::Any {
            type_url: contract_type::type_url(type_url).unwrap_or_default(),
            value,
        }
    }

    /// Decodes the parameter of contract number `index` (for error messages) of type `number`.
    pub(crate) fn from_any(index: usize, number: i32, any: &wire::Any) -> Result<Self, TxError> {
        let known = matches!(
            number,
            TRANSFER | TRIGGER_SMART | DELEGATE_RESOURCE | UNDELEGATE_RESOURCE
        );
        if !known {
            return Ok(Self::Other(OtherContract {
                type_number: number,
                type_url: any.type_url.clone(),
                value: any.value.clone(),
            }));
        }
        let expected_url = contract_type::type_url(number).unwrap_or_default();
        if any.type_url != expected_url {
            return Err(TxError::TypeUrlMismatch {
                index,
                type_number: number,
                found: any.type_url.clone(),
            });
        }
        let what = "contract parameter";
        let call = match number {
            TRANSFER => {
                let m: wire::TransferContract = decode_canonical(what, &any.value)?;
                Self::Transfer(Transfer {
                    owner: address(index, "owner_address", &m.owner_address)?,
                    to: address(index, "to_address", &m.to_address)?,
                    amount: m.amount,
                })
            }
            TRIGGER_SMART => {
                let m: wire::TriggerSmartContract = decode_canonical(what, &any.value)?;
                Self::TriggerSmart(TriggerSmart {
                    owner: address(index, "owner_address", &m.owner_address)?,
                    contract: address(index, "contract_address", &m.contract_address)?,
                    call_value: m.call_value,
                    data: m.data,
                    call_token_value: m.call_token_value,
                    token_id: m.token_id,
                })
            }
            DELEGATE_RESOURCE => {
                let m: wire::DelegateResourceContract = decode_canonical(what, &any.value)?;
                Self::DelegateResource(DelegateResource {
                    owner: address(index, "owner_address", &m.owner_address)?,
                    resource: Resource::from_number(m.resource),
                    balance: m.balance,
                    receiver: address(index, "receiver_address", &m.receiver_address)?,
                    lock: m.lock,
                    lock_period: m.lock_period,
                })
            }
            _ => {
                let m: wire::UnDelegateResourceContract = decode_canonical(what, &any.value)?;
                Self::UnDelegateResource(UnDelegateResource {
                    owner: address(index, "owner_address", &m.owner_address)?,
                    resource: Resource::from_number(m.resource),
                    balance: m.balance,
                    receiver: address(index, "receiver_address", &m.receiver_address)?,
                })
            }
        };
        Ok(call)
    }
}

fn address(index: usize, field: &'static str, bytes: &[u8]) -> Result<TronAddress, TxError> {
    TronAddress::from_slice(bytes).map_err(|source| TxError::BadAddress {
        index,
        field,
        source,
    })
}

/// Decodes `bytes` as `M` and insists that re-encoding gives the same bytes: no unknown fields,
/// no fields out of order, no default values written out, no padded varints. What we show or sign
/// is then exactly what the bytes say.
pub(crate) fn decode_canonical<M: Message + Default>(
    what: &'static str,
    bytes: &[u8],
) -> Result<M, TxError> {
    let message = M::decode(bytes).map_err(|e| TxError::Protobuf {
        what,
        reason: e.to_string(),
    })?;
    if message.encode_to_vec() != bytes {
        return Err(TxError::NonCanonical { what });
    }
    Ok(message)
}

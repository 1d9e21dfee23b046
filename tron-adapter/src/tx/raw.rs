//! `Transaction.raw` as a typed value, its protobuf encoding and decoding, and the txID
//! (`sha256` of the encoded raw data). Decoding is strict: the bytes must be the canonical
//! encoding of what they decode to, so the decoded view is exactly what a signature covers.

use std::fmt;

use prost::Message;

use super::contracts::{decode_canonical, ContractCall};
use super::wire;
use super::TxError;
use crate::keys::sha256;
use crate::signing::{sign_digest, Signature};
use crate::PrivateKey;

/// A transaction id: sha256 of the raw data bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxId(pub [u8; 32]);

impl TxId {
    pub fn of(raw_data_bytes: &[u8]) -> Self {
        Self(sha256(raw_data_bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxId({})", self.to_hex())
    }
}

/// `protocol.authority` (rarely used; kept so such transactions still decode exactly).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Authority {
    /// `(name, address)` of the `AccountId`, when present.
    pub account: Option<(Vec<u8>, Vec<u8>)>,
    pub permission_name: Vec<u8>,
}

/// One `Transaction.Contract`: the call plus the envelope fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxContract {
    pub call: ContractCall,
    /// 0 = owner permission; 2+ = an active permission (multisig).
    pub permission_id: i32,
    pub provider: Vec<u8>,
    pub contract_name: Vec<u8>,
}

impl TxContract {
    /// A contract signed under the owner permission, with no provider or name.
    pub fn new(call: ContractCall) -> Self {
        Self {
            call,
            permission_id: 0,
            provider: Vec::new(),
            contract_name: Vec::new(),
        }
    }
}

/// `Transaction.raw`, typed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawData {
    /// Bytes 6..8 of the reference block's number (2 bytes).
    pub ref_block_bytes: Vec<u8>,
    pub ref_block_num: i64,
    /// Bytes 8..16 of the reference block's id (8 bytes).
    pub ref_block_hash: Vec<u8>,
    /// Milliseconds since the epoch.
    pub expiration: i64,
    pub auths: Vec<Authority>,
    /// The memo.
    pub data: Vec<u8>,
    pub contracts: Vec<TxContract>,
    pub scripts: Vec<u8>,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// Sun; only smart-contract calls use it.
    pub fee_limit: i64,
}

impl RawData {
    /// The canonical protobuf bytes (proto3 defaults omitted, fields in number order).
    pub fn encode(&self) -> Vec<u8> {
        self.to_wire().encode_to_vec()
    }

    pub fn txid(&self) -> TxId {
        TxId::of(&self.encode())
    }

    /// Decodes raw-data bytes; refuses garbage and any encoding that is not canonical.
    pub fn decode(bytes: &[u8]) -> Result<Self, TxError> {
        let wire: wire::Raw = decode_canonical("raw_data", bytes)?;
        Self::from_wire(wire)
    }

    /// Decodes raw-data hex (`raw_data_hex`).
    pub fn decode_hex(text: &str) -> Result<Self, TxError> {
        let bytes = crate::hexstr::decode("raw_data_hex", text)?;
        Self::decode(&bytes)
    }

    /// The node's rules for raw data that need no chain state: exactly one contract (java-tron
    /// `Manager.processTransaction`; none is "No contract!", more is an "extend feature" it
    /// refuses), and no negative expiration, timestamp or fee limit. `decode` accepts raw data
    /// that breaks them (the simulator must answer such bytes as the node does); `trx-energy tron`
    /// refuses to show, encode or sign it.
    pub fn check_sendable(&self) -> Result<(), TxError> {
        if self.contracts.len() != 1 {
            return Err(TxError::ContractCount(self.contracts.len()));
        }
        for (field, value) in [
            ("expiration", self.expiration),
            ("timestamp", self.timestamp),
            ("fee_limit", self.fee_limit),
        ] {
            if value < 0 {
                return Err(TxError::Negative { field, value });
            }
        }
        Ok(())
    }

    /// The signature of `key` over this transaction's txID.
    pub fn sign(&self, key: &PrivateKey) -> Signature {
        sign_digest(key, &self.txid().0)
    }

    pub(crate) fn to_wire(&self) -> wire::Raw {
        wire::Raw {
            ref_block_bytes: self.ref_block_bytes.clone(),
            ref_block_num: self.ref_block_num,
            ref_block_hash: self.ref_block_hash.clone(),
            expiration: self.expiration,
            auths: self
                .auths
                .iter()
                .map(|a| wire::Authority {
                    account: a.account.as_ref().map(|(name, address)| wire::AccountId {
                        name: name.clone(),
                        address: address.clone(),
                    }),
                    permission_name: a.permission_name.clone(),
                })
                .collect(),
            data: self.data.clone(),
            contract: self
                .contracts
                .iter()
                .map(|c| wire::Contract {
                    r#type: c.call.type_number(),
                    parameter: Some(c.call.to_any()),
                    provider: c.provider.clone(),
                    contract_name: c.contract_name.clone(),
                    permission_id: c.permission_id,
                })
                .collect(),
            scripts: self.scripts.clone(),
            timestamp: self.timestamp,
            fee_limit: self.fee_limit,
        }
    }

    pub(crate) fn from_wire(wire: wire::Raw) -> Result<Self, TxError> {
        let contracts = wire
            .contract
            .into_iter()
            .enumerate()
            .map(|(index, c)| {
                let any = c.parameter.ok_or(TxError::MissingParameter { index })?;
                Ok(TxContract {
                    call: ContractCall::from_any(index, c.r#type, &any)?,
                    permission_id: c.permission_id,
                    provider: c.provider,
                    contract_name: c.contract_name,
                })
            })
            .collect::<Result<Vec<_>, TxError>>()?;
        Ok(Self {
            ref_block_bytes: wire.ref_block_bytes,
            ref_block_num: wire.ref_block_num,
            ref_block_hash: wire.ref_block_hash,
            expiration: wire.expiration,
            auths: wire
                .auths
                .into_iter()
                .map(|a| Authority {
                    account: a.account.map(|id| (id.name, id.address)),
                    permission_name: a.permission_name,
                })
                .collect(),
            data: wire.data,
            contracts,
            scripts: wire.scripts,
            timestamp: wire.timestamp,
            fee_limit: wire.fee_limit,
        })
    }
}

/// A whole `protocol.Transaction`: raw data, signatures, and the node's `ret` entries (kept as
/// bytes). Its encoding is what `/wallet/broadcasthex` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTransaction {
    pub raw: RawData,
    pub signatures: Vec<Signature>,
    pub ret: Vec<Vec<u8>>,
}

impl SignedTransaction {
    /// Signs `raw` with `key` (one signature; add more for multisig).
    pub fn sign(raw: RawData, key: &PrivateKey) -> Self {
        let signature = raw.sign(key);
        Self {
            raw,
            signatures: vec![signature],
            ret: Vec::new(),
        }
    }

    pub fn txid(&self) -> TxId {
        self.raw.txid()
    }

    pub fn encode(&self) -> Vec<u8> {
        wire::Transaction {
            raw_data: Some(self.raw.to_wire()),
            signature: self
                .signatures
                .iter()
                .map(|s| s.to_bytes().to_vec())
                .collect(),
            ret: self.ret.clone(),
        }
        .encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, TxError> {
        let wire: wire::Transaction = decode_canonical("transaction", bytes)?;
        let raw = wire.raw_data.ok_or(TxError::MissingRawData)?;
        let signatures = wire
            .signature
            .iter()
            .map(|s| Signature::from_bytes(s))
            .collect::<Result<Vec<_>, _>>()?;
        let tx = Self {
            raw: RawData::from_wire(raw)?,
            signatures,
            ret: wire.ret,
        };
        // A high-s or v=27/28 signature is normalised when parsed; refuse it here so that a
        // decoded transaction always re-encodes to the bytes it came from.
        if tx.encode() != bytes {
            return Err(TxError::NonCanonical {
                what: "transaction signature",
            });
        }
        Ok(tx)
    }

    /// The addresses that made the signatures (in order).
    pub fn signers(&self) -> Result<Vec<crate::TronAddress>, TxError> {
        let txid = self.txid();
        self.signatures
            .iter()
            .map(|s| s.recover_address(&txid.0).map_err(TxError::from))
            .collect()
    }
}

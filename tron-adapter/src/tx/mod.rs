//! TRON transactions: the protobuf messages ([`wire`]), typed contracts ([`contracts`]), raw data
//! and its txID ([`raw`]), local building ([`build`]) and the full node's JSON form ([`json`]).
//! Facts (field numbers, hashing) are in docs/tron-protocol.md.

pub mod build;
pub mod contract_type;
pub mod contracts;
pub mod json;
pub mod raw;
pub mod wire;

pub use build::{build, verify_node_built, RefBlock, TxParams};
pub use contracts::{
    ContractCall, DelegateResource, OtherContract, Resource, Transfer, TriggerSmart,
    UnDelegateResource,
};
pub use raw::{Authority, RawData, SignedTransaction, TxContract, TxId};

use engine::domain::AddressError;

use crate::hexstr::HexError;
use crate::signing::SignatureError;

/// Why bytes or JSON are not a transaction we can show, build or sign.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TxError {
    #[error(transparent)]
    Hex(#[from] HexError),
    #[error("{what} is not valid protobuf: {reason}")]
    Protobuf { what: &'static str, reason: String },
    #[error(
        "{what} is not in canonical protobuf form (unknown or repeated fields, fields out of \
         order, default values written out, or padded varints); refusing to show or sign a \
         partial reading"
    )]
    NonCanonical { what: &'static str },
    #[error("transaction has no raw_data")]
    MissingRawData,
    #[error("contract #{index} has no parameter")]
    MissingParameter { index: usize },
    #[error("contract #{index} has type {type_number} but type_url {found:?}")]
    TypeUrlMismatch {
        index: usize,
        type_number: i32,
        found: String,
    },
    #[error("contract #{index}: {field} is not a TRON address: {source}")]
    BadAddress {
        index: usize,
        field: &'static str,
        source: AddressError,
    },
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("transaction JSON: {0}")]
    Json(String),
    #[error("cannot build the transaction: {0}")]
    Unbuildable(String),
    #[error("node-built transaction refused: {0}")]
    NodeMismatch(String),
    #[error("raw data has {0} contracts; the node accepts a transaction with exactly one")]
    ContractCount(usize),
    #[error("{field} is {value}; it must not be negative")]
    Negative { field: &'static str, value: i64 },
}

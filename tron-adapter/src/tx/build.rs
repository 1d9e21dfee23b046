//! Building a transaction locally from a reference block, and checking a node-built one before
//! signing it. We sign only bytes we built, or bytes whose decoding we compared with what we meant.

use super::raw::{RawData, TxContract};
use super::TxError;

/// The node refuses an expiration more than 24 hours past its head block.
pub const MAX_EXPIRATION_MS: i64 = 24 * 60 * 60 * 1000;
/// What tronpy, TronWeb and the node use.
pub const DEFAULT_EXPIRATION_MS: i64 = 60 * 1000;

/// TAPOS reference: bytes 6..8 of the block number and bytes 8..16 of the block id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefBlock {
    pub bytes: [u8; 2],
    pub hash: [u8; 8],
}

impl RefBlock {
    /// From a 32-byte block id (`blockID`: 8-byte big-endian number ‖ 24 bytes of hash).
    pub fn from_block_id(id: &[u8; 32]) -> Self {
        let mut bytes = [0u8; 2];
        bytes.copy_from_slice(&id[6..8]);
        let mut hash = [0u8; 8];
        hash.copy_from_slice(&id[8..16]);
        Self { bytes, hash }
    }

    /// From the `blockID` hex a node returns.
    pub fn from_block_id_hex(text: &str) -> Result<Self, TxError> {
        let id = crate::hexstr::decode_array::<32>("blockID", text)?;
        Ok(Self::from_block_id(&id))
    }
}

/// The envelope of a transaction built here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxParams {
    pub ref_block: RefBlock,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// Milliseconds since the epoch; after `timestamp`, at most 24 h later.
    pub expiration: i64,
    /// Sun; 0 for system contracts (omitted from the bytes).
    pub fee_limit: i64,
}

impl TxParams {
    /// Reference block and time, expiring after the usual 60 seconds, no fee limit.
    pub fn new(ref_block: RefBlock, timestamp: i64) -> Self {
        Self {
            ref_block,
            timestamp,
            expiration: timestamp + DEFAULT_EXPIRATION_MS,
            fee_limit: 0,
        }
    }
}

/// Builds the raw data of a one-contract transaction.
pub fn build(contract: TxContract, params: &TxParams) -> Result<RawData, TxError> {
    if params.expiration <= params.timestamp {
        return Err(TxError::Unbuildable(
            "expiration must be after timestamp".into(),
        ));
    }
    if params.expiration - params.timestamp > MAX_EXPIRATION_MS {
        return Err(TxError::Unbuildable(
            "expiration is more than 24 hours after timestamp; the node would refuse it".into(),
        ));
    }
    if params.fee_limit < 0 {
        return Err(TxError::Unbuildable("fee_limit is negative".into()));
    }
    Ok(RawData {
        ref_block_bytes: params.ref_block.bytes.to_vec(),
        ref_block_hash: params.ref_block.hash.to_vec(),
        expiration: params.expiration,
        contracts: vec![contract],
        timestamp: params.timestamp,
        fee_limit: params.fee_limit,
        ..RawData::default()
    })
}

/// Decodes raw data a node built for us and checks it asks for exactly `expected` (one contract,
/// same fields, same permission), with a sane reference block and expiration and a fee limit no
/// higher than `max_fee_limit`. Only then is it safe to sign.
pub fn verify_node_built(
    raw_data_hex: &str,
    expected: &TxContract,
    max_fee_limit: i64,
) -> Result<RawData, TxError> {
    let raw = RawData::decode_hex(raw_data_hex)?;
    let mismatch = |what: &str| Err(TxError::NodeMismatch(what.to_string()));
    if raw.contracts.len() != 1 || &raw.contracts[0] != expected {
        return mismatch("the contract is not the one we asked for");
    }
    if raw.ref_block_bytes.len() != 2 || raw.ref_block_hash.len() != 8 {
        return mismatch("the reference block is malformed");
    }
    if raw.expiration <= raw.timestamp || raw.expiration - raw.timestamp > MAX_EXPIRATION_MS {
        return mismatch("the expiration is not within 24 hours after the timestamp");
    }
    if raw.fee_limit > max_fee_limit {
        return mismatch("the fee limit is higher than allowed");
    }
    if !raw.data.is_empty() || !raw.scripts.is_empty() || !raw.auths.is_empty() {
        return mismatch("the node added a memo, scripts or authorities");
    }
    Ok(raw)
}

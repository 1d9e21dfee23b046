//! The decoder entry point the fuzz target (`tron-adapter/fuzz`) and its stable-toolchain smoke
//! test share: feed arbitrary bytes to every decoder; it must return, never panic, and whatever
//! decodes must re-encode to the same bytes.

use crate::tx::{json, RawData, SignedTransaction};

/// Runs all decoders over `data`. Panics only if an invariant is broken (that is the finding).
pub fn decode_everything(data: &[u8]) {
    if let Ok(raw) = RawData::decode(data) {
        assert_eq!(
            raw.encode(),
            data,
            "decoded raw_data re-encodes differently"
        );
        let value = serde_json::to_value(json::to_node_json(&raw)).expect("JSON of raw_data");
        let back = json::from_node_json(&value).expect("our own JSON reads back");
        assert_eq!(back, raw, "JSON round trip changed the transaction");
    }
    if let Ok(tx) = SignedTransaction::decode(data) {
        assert_eq!(
            tx.encode(),
            data,
            "decoded transaction re-encodes differently"
        );
        let _ = tx.signers();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = RawData::decode_hex(text);
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            if let Ok(input) = json::parse_node_json(&value) {
                let _ = input.check_claims();
                let _ = input.raw.encode();
            }
        }
        let _ = crate::TronAddress::parse(text);
        let _ = crate::PrivateKey::from_hex(text);
    }
    let _ = crate::trc20::parse_transfer_calldata(data);
}

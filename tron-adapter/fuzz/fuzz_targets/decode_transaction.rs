//! Fuzz target: every tron-adapter decoder (raw data, signed transaction, hex, node JSON,
//! addresses, keys, TRC20 calldata) on arbitrary bytes. Must never panic; whatever decodes must
//! re-encode to the same bytes. The same function runs on stable in
//! `tron-adapter/tests/it/tx_properties.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tron_adapter::fuzzing::decode_everything(data);
});

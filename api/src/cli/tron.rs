//! `trx-energy tron …`: derive and check addresses, decode/encode raw transactions in the full
//! node's JSON form (visible=false), and sign raw data — by hand, offline (docs/tron-protocol.md).

use std::io::{Read, Write};

use tron_adapter::tx::{json, RawData};
use tron_adapter::{PrivateKey, TronAddress};
use zeroize::Zeroizing;

/// The `tron` subcommands. (No `Debug`: `sign` carries a private key.)
#[derive(clap::Subcommand)]
pub enum TronCommand {
    /// Print the address of a private key: base58, a space, and the 41… hex form.
    Address {
        /// 64 hex digits.
        private_key_hex: String,
    },
    /// Check a base58 or 41… hex address; print its 41… hex form, or the reason it is invalid
    /// (exit code 1).
    CheckAddress { address: String },
    /// Decode raw_data hex; print {"txID", "raw_data"} with raw_data in the node's JSON form.
    Decode { raw_data_hex: String },
    /// Read raw_data JSON on standard input (the object itself, or a transaction object holding
    /// `raw_data`, whose txID/raw_data_hex must then agree); print raw_data_hex.
    Encode,
    /// Sign raw_data hex; print {"txID", "signature"} (65 bytes r‖s‖v as 130 hex digits).
    Sign {
        raw_data_hex: String,
        /// The signing key, 64 hex digits.
        #[arg(long, value_name = "PRIVATE_KEY_HEX")]
        key_hex: String,
    },
}

/// What `sign` prints, in this order.
#[derive(serde::Serialize)]
struct Signed {
    #[serde(rename = "txID")]
    txid: String,
    signature: String,
}

/// Runs one `tron` command. Returns the process exit code.
pub fn run(
    command: TronCommand,
    input: &mut impl Read,
    out: &mut impl Write,
    err: &mut impl Write,
) -> u8 {
    match execute(command, input) {
        Ok(text) => match writeln!(out, "{text}") {
            Ok(()) => 0,
            Err(_) => 1,
        },
        Err(reason) => {
            let _ = writeln!(err, "error: {reason}");
            1
        }
    }
}

fn execute(command: TronCommand, input: &mut impl Read) -> Result<String, String> {
    match command {
        TronCommand::Address { private_key_hex } => {
            let key = Zeroizing::new(private_key_hex);
            let address = PrivateKey::from_hex(&key)
                .map_err(|e| e.to_string())?
                .address();
            Ok(format!("{} {}", address.to_base58(), address.to_hex()))
        }
        TronCommand::CheckAddress { address } => {
            let address = Zeroizing::new(address);
            TronAddress::parse(&address)
                .map(|a| a.to_hex())
                .map_err(|e| match hex_longer_than_an_address(&address) {
                    Some(digits) => format!(
                        "the input is not a TRON address: it is {digits} hex digits, longer than \
                         an address (42), perhaps a private key, so it is not shown"
                    ),
                    None => format!("{:?} is not a TRON address: {e}", address.as_str()),
                })
        }
        TronCommand::Decode { raw_data_hex } => {
            let raw = sendable_raw_data(&raw_data_hex)?;
            serde_json::to_string_pretty(&json::DecodedTx::new(&raw)).map_err(|e| e.to_string())
        }
        TronCommand::Encode => {
            let mut text = String::new();
            input
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("standard input is not JSON: {e}"))?;
            let parsed = json::parse_node_json(&value).map_err(|e| e.to_string())?;
            parsed.raw.check_sendable().map_err(|e| e.to_string())?;
            parsed.check_claims().map_err(|e| e.to_string())?;
            Ok(hex::encode(parsed.raw.encode()))
        }
        TronCommand::Sign {
            raw_data_hex,
            key_hex,
        } => {
            let key_hex = Zeroizing::new(key_hex);
            let key = PrivateKey::from_hex(&key_hex).map_err(|e| e.to_string())?;
            let raw = sendable_raw_data(&raw_data_hex)?;
            let signature = raw.sign(&key);
            let printed = Signed {
                txid: raw.txid().to_hex(),
                signature: signature.to_hex(),
            };
            serde_json::to_string(&printed).map_err(|e| e.to_string())
        }
    }
}

/// Raw-data hex that decodes to a transaction the node could accept (one contract, no negative
/// times or fee limit): nothing else is shown or signed.
fn sendable_raw_data(raw_data_hex: &str) -> Result<RawData, String> {
    if raw_data_hex.trim().is_empty() {
        return Err("raw_data_hex is empty".into());
    }
    let raw = RawData::decode_hex(raw_data_hex).map_err(|e| e.to_string())?;
    raw.check_sendable().map_err(|e| e.to_string())?;
    Ok(raw)
}

/// The number of hex digits in `text` (without a `0x` prefix) when it is hex only and longer than
/// an address's 42 digits: such input may be a private key pasted in the wrong place, so an error
/// must not repeat it.
fn hex_longer_than_an_address(text: &str) -> Option<usize> {
    let text = text.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    (digits.len() > 42 && digits.bytes().all(|b| b.is_ascii_hexdigit())).then_some(digits.len())
}

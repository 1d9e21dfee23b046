//! Every entry of vectors/tron/base58check.json against `engine::domain::TronAddress` (which
//! tron-adapter re-exports): valid addresses both ways, invalid ones with the right reason, the
//! hex forms TronWeb accepts or rejects, and TronWeb's raw base58 vectors (through the base58
//! code addresses use, and through a hand-written base58 so the vectors check the algorithm too).
//! Also TronWeb's mixed-case hex entry of vectors/tron/keys_addresses.json.

use engine::domain::address::{base58_decode, base58_encode};
use engine::domain::AddressError;
use serde_json::Value;
use tron_adapter::TronAddress;

fn file() -> Value {
    serde_json::from_str(include_str!("../../../vectors/tron/base58check.json")).unwrap()
}

fn keys_file() -> Value {
    serde_json::from_str(include_str!("../../../vectors/tron/keys_addresses.json")).unwrap()
}

fn derived_hex(classification: &str) -> &str {
    classification.rsplit(' ').next().unwrap()
}

#[test]
fn every_valid_address_parses_and_prints_back_in_both_forms() {
    let file = file();
    let valid = file["valid"].as_array().unwrap();
    assert_eq!(valid.len(), 12);
    for v in valid {
        let base58 = v["base58"].as_str().unwrap();
        let hex = v["hex"]
            .as_str()
            .unwrap_or_else(|| derived_hex(v["derived_classification"].as_str().unwrap()));
        let a = TronAddress::parse(base58).unwrap();
        assert_eq!(a.to_base58(), base58);
        assert_eq!(a.to_hex(), hex);
        assert_eq!(TronAddress::parse(hex).unwrap(), a);
        assert_eq!(TronAddress::from_hex(hex).unwrap(), a);
    }
}

#[test]
fn every_invalid_address_is_refused_for_the_published_reason() {
    let file = file();
    let invalid = file["invalid"].as_array().unwrap();
    assert_eq!(invalid.len(), 14);
    for v in invalid {
        let input = v["input"].as_str().unwrap();
        let class = v["derived_classification"].as_str().unwrap();
        let err = TronAddress::parse(input).unwrap_err();
        if class.contains("non-base58") {
            assert_eq!(err, AddressError::BadEncoding, "{input}");
        } else if class.contains("decoded length 25 bytes") {
            // A 25-byte string with a wrong checksum; when its first byte is not 0x41 the
            // version check names that first.
            assert!(
                matches!(
                    err,
                    AddressError::BadChecksum | AddressError::WrongVersion(_)
                ),
                "{input}: {err:?}"
            );
        } else {
            let n: usize = class
                .split("decoded length ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|s| s.parse().ok())
                .unwrap();
            assert_eq!(err, AddressError::WrongLength(n), "{input}");
        }
    }
}

#[test]
fn hex_forms_are_accepted_exactly_when_they_are_21_bytes_starting_with_41() {
    for v in file()["hex_form"].as_array().unwrap() {
        let input = v["input"].as_str().unwrap();
        let parsed = TronAddress::parse(input);
        match v.get("derived_base58").and_then(Value::as_str) {
            Some(base58) => assert_eq!(parsed.unwrap().to_base58(), base58, "{input}"),
            None => {
                assert_eq!(v["tronweb_isAddress"], false);
                assert!(parsed.is_err(), "{input} was accepted");
            }
        }
    }
}

#[test]
fn tronweb_raw_base58_vectors_hold_for_the_base58_code_addresses_use() {
    let file = file();
    let raw = &file["tronweb_raw_base58_vectors"];
    let (encode, decode) = (
        raw["encode58"].as_array().unwrap(),
        raw["decode58"].as_array().unwrap(),
    );
    assert_eq!((encode.len(), decode.len()), (1, 2));
    for v in encode {
        let bytes: Vec<u8> = serde_json::from_value(v["input_bytes"].clone()).unwrap();
        assert_eq!(base58_encode(&bytes), v["output"]);
        assert_eq!(base58_decode(v["output"].as_str().unwrap()).unwrap(), bytes);
    }
    for v in decode {
        let text = v["input"].as_str().unwrap();
        let bytes: Vec<u8> = serde_json::from_value(v["output_bytes"].clone()).unwrap();
        assert_eq!(base58_decode(text).unwrap(), bytes, "{text:?}");
        assert_eq!(base58_encode(&bytes), text);
    }
}

#[test]
fn tronweb_raw_base58_vectors_hold_for_the_hand_written_base58() {
    let file = file();
    let raw = &file["tronweb_raw_base58_vectors"];
    for v in raw["encode58"].as_array().unwrap() {
        let bytes: Vec<u8> = serde_json::from_value(v["input_bytes"].clone()).unwrap();
        assert_eq!(bs58_encode(&bytes), v["output"]);
    }
    for v in raw["decode58"].as_array().unwrap() {
        let bytes: Vec<u8> = serde_json::from_value(v["output_bytes"].clone()).unwrap();
        assert_eq!(bs58_decode(v["input"].as_str().unwrap()), bytes);
    }
}

/// The entry's note: TronWeb's EIP-55-style mixed-case hex is informational, the node never needs
/// it. So its case carries no meaning here: the checksum-cased hex and the all-lower-case hex
/// TronWeb calls "not checksummed" both read as the entry's base58 address, printed in lower case;
/// the empty string is refused.
#[test]
fn tronweb_mixed_case_hex_reads_as_the_same_address_whatever_its_case() {
    let file = keys_file();
    let entry = &file["tronweb_mixed_case_checksum"];
    let base58 = entry["base58"].as_str().unwrap();
    let address = TronAddress::parse(base58).unwrap();
    let checksummed = entry["tronweb_checksum_hex"].as_str().unwrap();
    assert_ne!(
        checksummed,
        checksummed.to_lowercase(),
        "the entry is mixed case"
    );
    let mut inputs: Vec<&str> = vec![checksummed];
    for list in ["is_checksum_true", "is_checksum_false"] {
        inputs.extend(
            entry[list]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap()),
        );
    }
    assert_eq!(inputs.len(), 4);
    for input in inputs {
        if input.is_empty() {
            assert_eq!(TronAddress::parse(input), Err(AddressError::Empty));
            continue;
        }
        assert_eq!(TronAddress::parse(input), Ok(address), "{input}");
        assert_eq!(TronAddress::from_hex(input), Ok(address), "{input}");
        assert_eq!(address.to_hex(), input.to_lowercase());
        assert_eq!(address.to_base58(), base58);
    }
}

/// Base58 (Bitcoin alphabet) written out here so the vectors check the algorithm, not a crate.
const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

fn bs58_encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    let mut digits: Vec<u8> = Vec::new();
    for &byte in bytes {
        let mut carry = byte as u32;
        for d in digits.iter_mut() {
            carry += (*d as u32) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = "1".repeat(zeros);
    out.extend(digits.iter().rev().map(|d| ALPHABET[*d as usize] as char));
    out
}

fn bs58_decode(text: &str) -> Vec<u8> {
    let zeros = text.bytes().take_while(|c| *c == b'1').count();
    let mut bytes: Vec<u8> = Vec::new();
    for c in text.bytes() {
        let mut carry = ALPHABET.iter().position(|a| *a == c).unwrap() as u32;
        for b in bytes.iter_mut() {
            carry += (*b as u32) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(bytes.iter().rev());
    out
}

#[test]
fn the_hand_written_base58_agrees_with_tron_address_checksums() {
    let a = TronAddress::parse("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t").unwrap();
    let decoded = bs58_decode(&a.to_base58());
    assert_eq!(&decoded[..21], a.as_bytes());
    assert_eq!(bs58_encode(&decoded), a.to_base58());
}

#[test]
fn the_base58_code_addresses_use_agrees_with_the_hand_written_one_on_every_valid_address() {
    for v in file()["valid"].as_array().unwrap() {
        let base58 = v["base58"].as_str().unwrap();
        let decoded = base58_decode(base58).unwrap();
        assert_eq!(decoded, bs58_decode(base58), "{base58}");
        assert_eq!(base58_encode(&decoded), bs58_encode(&decoded));
    }
    assert_eq!(base58_decode("0OIl"), Err(AddressError::BadEncoding));
}

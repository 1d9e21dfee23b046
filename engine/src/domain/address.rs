//! `TronAddress`: a TRON account address, validated. 21 bytes (version byte 0x41 and 20 bytes of
//! keccak256 of the public key), written as base58check (`T…`, 34 characters) or as 42 hex digits
//! (`41…`). Pure code, so the domain can validate receivers without IO.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// The version byte every mainnet TRON address starts with.
pub const ADDRESS_VERSION: u8 = 0x41;

/// Why a string is not a TRON address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AddressError {
    #[error("address is empty")]
    Empty,
    #[error("address contains a character that is not base58 or hex")]
    BadEncoding,
    #[error("address decodes to {0} bytes; a TRON address has 21 (25 with its checksum)")]
    WrongLength(usize),
    #[error("address version byte is 0x{0:02x}; TRON addresses start with 0x41")]
    WrongVersion(u8),
    #[error("address checksum does not match")]
    BadChecksum,
}

/// A validated TRON address (always version 0x41).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TronAddress([u8; 21]);

impl TronAddress {
    /// From the 21 raw bytes (version byte first).
    pub fn from_bytes(bytes: [u8; 21]) -> Result<Self, AddressError> {
        if bytes[0] != ADDRESS_VERSION {
            return Err(AddressError::WrongVersion(bytes[0]));
        }
        Ok(Self(bytes))
    }

    /// From the 20-byte account hash (an EVM-style address), adding the 0x41 version byte.
    pub fn from_evm_bytes(hash: [u8; 20]) -> Self {
        let mut bytes = [0u8; 21];
        bytes[0] = ADDRESS_VERSION;
        bytes[1..].copy_from_slice(&hash);
        Self(bytes)
    }

    /// From a slice that must be exactly 21 bytes with the version byte.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, AddressError> {
        let arr: [u8; 21] = bytes
            .try_into()
            .map_err(|_| AddressError::WrongLength(bytes.len()))?;
        Self::from_bytes(arr)
    }

    /// Parses base58check (`T…`).
    pub fn from_base58(s: &str) -> Result<Self, AddressError> {
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        let raw = base58_decode(s)?;
        if raw.len() != 25 {
            return Err(AddressError::WrongLength(raw.len()));
        }
        let (payload, checksum) = raw.split_at(21);
        if payload[0] != ADDRESS_VERSION {
            return Err(AddressError::WrongVersion(payload[0]));
        }
        if checksum != &double_sha256(payload)[..4] {
            return Err(AddressError::BadChecksum);
        }
        Self::from_slice(payload)
    }

    /// Parses the hex form: 42 hex digits starting with `41` (an optional `0x` prefix is accepted).
    pub fn from_hex(s: &str) -> Result<Self, AddressError> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        let raw = hex::decode(s).map_err(|_| AddressError::BadEncoding)?;
        Self::from_slice(&raw)
    }

    /// Parses either form, as a user may paste it: hex when the text is 42 hex digits
    /// (optionally `0x`-prefixed), base58check otherwise.
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        let s = s.trim();
        let unprefixed = s.strip_prefix("0x").unwrap_or(s);
        if unprefixed.len() == 42 && unprefixed.bytes().all(|b| b.is_ascii_hexdigit()) {
            Self::from_hex(s)
        } else {
            Self::from_base58(s)
        }
    }

    /// The 21 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 21] {
        &self.0
    }

    /// The 20-byte account hash (without the version byte), as used in TRC20 calldata and logs.
    pub fn evm_bytes(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out.copy_from_slice(&self.0[1..]);
        out
    }

    /// Base58check form (`T…`).
    pub fn to_base58(&self) -> String {
        let mut raw = Vec::with_capacity(25);
        raw.extend_from_slice(&self.0);
        raw.extend_from_slice(&double_sha256(&self.0)[..4]);
        base58_encode(&raw)
    }

    /// Lower-case hex form (`41…`).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Base58 (the Bitcoin alphabet) of any bytes, without a checksum: the encoding addresses are
/// written in, each leading zero byte a `1`.
pub fn base58_encode(bytes: &[u8]) -> String {
    bs58::encode(bytes).into_string()
}

/// The bytes of base58 text (the Bitcoin alphabet), without a checksum check.
pub fn base58_decode(text: &str) -> Result<Vec<u8>, AddressError> {
    bs58::decode(text)
        .into_vec()
        .map_err(|_| AddressError::BadEncoding)
}

fn double_sha256(data: &[u8]) -> [u8; 32] {
    let first = Sha256::digest(data);
    Sha256::digest(first).into()
}

impl fmt::Display for TronAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl fmt::Debug for TronAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TronAddress({})", self.to_base58())
    }
}

impl FromStr for TronAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Serialised as base58check; either form is accepted when reading.
impl Serialize for TronAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base58())
    }
}

impl<'de> Deserialize<'de> for TronAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Vectors {
        valid: Vec<Valid>,
        invalid: Vec<Invalid>,
    }
    #[derive(Deserialize)]
    struct Valid {
        base58: String,
        hex: Option<String>,
    }
    #[derive(Deserialize)]
    struct Invalid {
        #[serde(alias = "base58", alias = "input", alias = "value")]
        address: serde_json::Value,
    }

    fn vectors() -> Vectors {
        serde_json::from_str(include_str!("../../../vectors/tron/base58check.json"))
            .expect("base58check vectors parse")
    }

    #[test]
    fn every_published_valid_address_round_trips_between_base58_and_hex() {
        let v = vectors();
        assert!(!v.valid.is_empty());
        for case in v.valid {
            let from_b58 = TronAddress::from_base58(&case.base58).unwrap();
            assert_eq!(from_b58.to_base58(), case.base58);
            let Some(hex) = case.hex else { continue };
            let from_hex = TronAddress::from_hex(&hex).unwrap();
            assert_eq!(from_b58, from_hex, "{}", case.base58);
            assert_eq!(from_b58.to_hex(), hex.to_lowercase());
            assert_eq!(TronAddress::parse(&hex).unwrap(), from_b58);
        }
    }

    #[test]
    fn every_published_invalid_address_is_rejected() {
        let v = vectors();
        assert!(!v.invalid.is_empty());
        for case in v.invalid {
            let text = match &case.address {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert!(TronAddress::parse(&text).is_err(), "accepted {text:?}");
        }
    }

    #[test]
    fn a_changed_character_breaks_the_checksum() {
        let good = "TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsE";
        let bad = "TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsF";
        assert!(TronAddress::parse(good).is_ok());
        assert_eq!(TronAddress::parse(bad), Err(AddressError::BadChecksum));
    }

    #[test]
    fn a_wrong_version_byte_is_named() {
        let hex = "420000000000000000000000000000000000000000";
        assert_eq!(
            TronAddress::parse(hex),
            Err(AddressError::WrongVersion(0x42))
        );
        let mut raw = hex::decode(hex).unwrap();
        let check = double_sha256(&raw);
        raw.extend_from_slice(&check[..4]);
        let b58 = bs58::encode(raw).into_string();
        assert_eq!(
            TronAddress::parse(&b58),
            Err(AddressError::WrongVersion(0x42))
        );
    }

    #[test]
    fn serde_writes_base58_and_reads_either_form() {
        let a = TronAddress::parse("4159d3ad9d126e153b9564417d3a05cf51c1964edf").unwrap();
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsE\"");
        let back: TronAddress = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        assert!(serde_json::from_str::<TronAddress>("\"T123\"").is_err());
    }
}

//! Keys and addresses: a secp256k1 private key (kept in zeroized memory, never printed), its
//! public key, and the TRON address `0x41 ‖ keccak256(x ‖ y)[12..32]` of the 64-byte public key.
//! Also the two hashes the protocol uses (keccak256 for addresses and ABI, sha256 for txIDs).

use std::fmt;

use k256::ecdsa::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use sha3::Keccak256;
use zeroize::{Zeroize, Zeroizing};

use crate::TronAddress;

/// keccak256 (the pre-standard SHA-3 that Ethereum and TRON use).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// sha256, as used for txIDs.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Why bytes or text are not a private or public key. Never includes the key itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("private key is not hex (an odd number of digits or a character that is not 0-9a-f)")]
    NotHex,
    #[error("private key must be 32 bytes (64 hex digits), got {0} bytes")]
    WrongLength(usize),
    #[error("private key is zero or not below the secp256k1 group order")]
    OutOfRange,
    #[error("public key is not a valid secp256k1 point")]
    BadPublicKey,
}

/// A secp256k1 private key. The scalar lives in zeroize-on-drop memory; `Debug` shows only the
/// address, and there is no `Display`, `Serialize` or `Clone`.
pub struct PrivateKey(SigningKey);

impl PrivateKey {
    /// From 32 big-endian bytes; rejects zero and values not below the group order.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != 32 {
            return Err(KeyError::WrongLength(bytes.len()));
        }
        SigningKey::from_slice(bytes)
            .map(Self)
            .map_err(|_| KeyError::OutOfRange)
    }

    /// From 64 hex digits (an optional `0x` or `0X` prefix and surrounding whitespace are
    /// allowed, as in every hex reader of this crate).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let text = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .unwrap_or(text);
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) || !text.len().is_multiple_of(2) {
            return Err(KeyError::NotHex);
        }
        if text.len() != 64 {
            return Err(KeyError::WrongLength(text.len() / 2));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, bytes.as_mut_slice()).map_err(|_| KeyError::NotHex)?;
        Self::from_bytes(bytes.as_slice())
    }

    /// A new random key from the operating system's generator.
    pub fn generate() -> Self {
        Self(SigningKey::random(&mut rand::rngs::OsRng))
    }

    /// The 32 key bytes, in memory that is wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut field = self.0.to_bytes();
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&field);
        field.as_mut_slice().zeroize();
        out
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    pub fn address(&self) -> TronAddress {
        self.public_key().address()
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.0
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.address())
    }
}

/// A secp256k1 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub(crate) VerifyingKey);

impl PublicKey {
    /// From SEC1 bytes (33 compressed, 65 uncompressed) or the bare 64-byte `x ‖ y` form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let parsed = if bytes.len() == 64 {
            let mut sec1 = [0u8; 65];
            sec1[0] = 0x04;
            sec1[1..].copy_from_slice(bytes);
            VerifyingKey::from_sec1_bytes(&sec1)
        } else {
            VerifyingKey::from_sec1_bytes(bytes)
        };
        parsed.map(Self).map_err(|_| KeyError::BadPublicKey)
    }

    /// The 64-byte `x ‖ y` form (uncompressed, without the 0x04 prefix) that TRON hashes.
    pub fn to_xy_bytes(&self) -> [u8; 64] {
        let point = self.0.to_encoded_point(false);
        let mut out = [0u8; 64];
        out.copy_from_slice(&point.as_bytes()[1..]);
        out
    }

    /// The 33-byte compressed SEC1 form.
    pub fn to_compressed_bytes(&self) -> [u8; 33] {
        let point = self.0.to_encoded_point(true);
        let mut out = [0u8; 33];
        out.copy_from_slice(point.as_bytes());
        out
    }

    /// `0x41 ‖ keccak256(x ‖ y)[12..32]`.
    pub fn address(&self) -> TronAddress {
        let hash = keccak256(&self.to_xy_bytes());
        let mut evm = [0u8; 20];
        evm.copy_from_slice(&hash[12..]);
        TronAddress::from_evm_bytes(evm)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.to_xy_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct File {
        vectors: Vec<KeyVector>,
        keccak256_vectors: Vec<HashVector>,
        sha256_vectors: Vec<HashVector>,
    }
    #[derive(Deserialize)]
    struct KeyVector {
        private_key: String,
        public_key_64_bytes_xy: Option<String>,
        derived_public_key_64: String,
        derived_keccak256_of_pub64: String,
        base58: String,
        hex: Option<String>,
        derived_hex: String,
    }
    #[derive(Deserialize)]
    struct HashVector {
        input_utf8: String,
        keccak256: Option<String>,
        sha256: Option<String>,
    }

    fn vectors() -> File {
        serde_json::from_str(include_str!("../../vectors/tron/keys_addresses.json")).unwrap()
    }

    #[test]
    fn every_published_private_key_gives_its_public_key_and_both_address_forms() {
        let file = vectors();
        assert_eq!(file.vectors.len(), 3);
        for v in file.vectors {
            let key = PrivateKey::from_hex(&v.private_key).unwrap();
            let public = key.public_key();
            let xy = hex::encode(public.to_xy_bytes());
            assert_eq!(xy, v.derived_public_key_64);
            if let Some(published) = &v.public_key_64_bytes_xy {
                assert_eq!(&xy, published);
            }
            assert_eq!(
                hex::encode(keccak256(&public.to_xy_bytes())),
                v.derived_keccak256_of_pub64
            );
            let address = key.address();
            assert_eq!(address.to_base58(), v.base58);
            assert_eq!(address.to_hex(), v.hex.unwrap_or(v.derived_hex));
            assert_eq!(
                PublicKey::from_bytes(&public.to_xy_bytes()).unwrap(),
                public
            );
            assert_eq!(
                PublicKey::from_bytes(&public.to_compressed_bytes()).unwrap(),
                public
            );
        }
    }

    #[test]
    fn published_hash_vectors_match_keccak256_and_sha256() {
        let file = vectors();
        for v in file.keccak256_vectors {
            assert_eq!(
                Some(hex::encode(keccak256(v.input_utf8.as_bytes()))),
                v.keccak256
            );
        }
        for v in file.sha256_vectors {
            assert_eq!(Some(hex::encode(sha256(v.input_utf8.as_bytes()))), v.sha256);
        }
    }

    #[test]
    fn the_zero_key_and_keys_at_or_above_the_group_order_are_refused() {
        let zero = "00".repeat(32);
        assert_eq!(
            PrivateKey::from_hex(&zero).unwrap_err(),
            KeyError::OutOfRange
        );
        let order = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
        assert_eq!(
            PrivateKey::from_hex(order).unwrap_err(),
            KeyError::OutOfRange
        );
        let above = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364142";
        assert_eq!(
            PrivateKey::from_hex(above).unwrap_err(),
            KeyError::OutOfRange
        );
        let below = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140";
        assert!(PrivateKey::from_hex(below).is_ok());
    }

    #[test]
    fn wrong_length_and_non_hex_keys_are_refused_without_echoing_them() {
        assert_eq!(
            PrivateKey::from_hex("abcd").unwrap_err(),
            KeyError::WrongLength(2)
        );
        assert_eq!(PrivateKey::from_hex("abc").unwrap_err(), KeyError::NotHex);
        let bad = format!("{}zz", "11".repeat(31));
        let err = PrivateKey::from_hex(&bad).unwrap_err();
        assert_eq!(err, KeyError::NotHex);
        assert!(!err.to_string().contains("1111"));
        assert_eq!(
            PrivateKey::from_bytes(&[1u8; 33]).unwrap_err(),
            KeyError::WrongLength(33)
        );
    }

    #[test]
    fn a_lower_or_upper_case_0x_prefix_reads_the_same_key() {
        let hex_key = "279ff36d9bf9f305af3280034bb4187c6dd299bac6b26a3c20b999c7c0d50e6e";
        let plain = PrivateKey::from_hex(hex_key).unwrap().address();
        for text in [
            format!("0x{hex_key}"),
            format!("0X{hex_key}"),
            format!(" 0X{} ", hex_key.to_uppercase()),
        ] {
            assert_eq!(PrivateKey::from_hex(&text).unwrap().address(), plain);
        }
        assert_eq!(
            PrivateKey::from_hex(&format!("0X0X{hex_key}")).unwrap_err(),
            KeyError::NotHex
        );
    }

    #[test]
    fn debug_output_of_a_private_key_shows_the_address_but_not_the_key() {
        let hex_key = "279ff36d9bf9f305af3280034bb4187c6dd299bac6b26a3c20b999c7c0d50e6e";
        let key = PrivateKey::from_hex(hex_key).unwrap();
        let shown = format!("{key:?} {key:#?}");
        assert!(shown.contains("TPX6HK2NRN4XKRX1JAhbC827bm7gMmy5w1"));
        assert!(!shown.contains(hex_key));
        assert!(!shown.contains(&hex_key[..16]));
    }
}

//! Signatures: deterministic (RFC6979) secp256k1 over a 32-byte digest, normalised to low-s, as
//! 65 bytes `r ‖ s ‖ v` with v the recovery id 0/1 (the node's form). A transaction is signed over
//! its txID directly, with no prefix and no second hash. Signer recovery accepts v = 0/1 or
//! 27/28. Also the TIP-191 message hash that `signMessageV2` tools sign.

use std::fmt;

use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, VerifyingKey};

use crate::keys::{keccak256, PrivateKey, PublicKey};
use crate::TronAddress;

/// Why bytes are not a usable signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature must be 65 bytes (r ‖ s ‖ v), got {0}")]
    WrongLength(usize),
    #[error("signature recovery byte v is {0}; expected 0, 1, 27 or 28")]
    BadRecoveryByte(u8),
    #[error("signature r or s is zero or not below the group order")]
    OutOfRange,
    #[error("no public key can be recovered from this signature and digest")]
    NotRecoverable,
    #[error("signature is not hex (an odd number of digits or a non-hex character)")]
    NotHex,
}

/// A 65-byte recoverable signature, stored with v = 0/1 and low s.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; 65]);

impl Signature {
    /// From 65 bytes; v may be 0/1 or 27/28. A high-s signature is normalised (s → n − s, with
    /// the recovery id flipped), so it names the same signer.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignatureError> {
        if bytes.len() != 65 {
            return Err(SignatureError::WrongLength(bytes.len()));
        }
        let v = match bytes[64] {
            v @ (0 | 1) => v,
            v @ (27 | 28) => v - 27,
            other => return Err(SignatureError::BadRecoveryByte(other)),
        };
        let sig =
            EcdsaSignature::from_slice(&bytes[..64]).map_err(|_| SignatureError::OutOfRange)?;
        let (sig, v) = match sig.normalize_s() {
            Some(low) => (low, v ^ 1),
            None => (sig, v),
        };
        Ok(Self::from_parts(&sig, v))
    }

    pub fn from_hex(text: &str) -> Result<Self, SignatureError> {
        let bytes = crate::hexstr::decode("signature", text).map_err(|_| SignatureError::NotHex)?;
        Self::from_bytes(&bytes)
    }

    fn from_parts(sig: &EcdsaSignature, v: u8) -> Self {
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = v;
        Self(out)
    }

    /// `r ‖ s ‖ v` with v = 0/1.
    pub fn to_bytes(&self) -> [u8; 65] {
        self.0
    }

    /// 130 hex digits, v = 0/1 (what the node and tronpy produce).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// 130 hex digits with v = 27/28 (what TronWeb's message signing prints).
    pub fn to_hex_v27(&self) -> String {
        let mut bytes = self.0;
        bytes[64] += 27;
        hex::encode(bytes)
    }

    /// The public key that made this signature over `digest`.
    pub fn recover(&self, digest: &[u8; 32]) -> Result<PublicKey, SignatureError> {
        let sig =
            EcdsaSignature::from_slice(&self.0[..64]).map_err(|_| SignatureError::OutOfRange)?;
        let recid =
            RecoveryId::from_byte(self.0[64]).ok_or(SignatureError::BadRecoveryByte(self.0[64]))?;
        VerifyingKey::recover_from_prehash(digest, &sig, recid)
            .map(PublicKey)
            .map_err(|_| SignatureError::NotRecoverable)
    }

    /// The address that made this signature over `digest`.
    pub fn recover_address(&self, digest: &[u8; 32]) -> Result<TronAddress, SignatureError> {
        self.recover(digest).map(|public| public.address())
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

/// Signs a 32-byte digest (a txID, or a TIP-191 message hash): RFC6979 nonce, low s.
pub fn sign_digest(key: &PrivateKey, digest: &[u8; 32]) -> Signature {
    // `sign_prehash_recoverable` only fails for a digest that is not 32 bytes or a nonce that
    // hits zero, which RFC6979 retries internally; a fixed 32-byte digest cannot fail.
    let (sig, recid) = key
        .signing_key()
        .sign_prehash_recoverable(digest)
        .expect("signing a 32-byte digest with a valid key");
    let (sig, v) = match sig.normalize_s() {
        Some(low) => (low, recid.to_byte() ^ 1),
        None => (sig, recid.to_byte()),
    };
    Signature::from_parts(&sig, v)
}

/// TIP-191 message hash: keccak256("\x19TRON Signed Message:\n" ‖ decimal length ‖ message).
pub fn message_hash(message: &[u8]) -> [u8; 32] {
    let mut data = format!("\x19TRON Signed Message:\n{}", message.len()).into_bytes();
    data.extend_from_slice(message);
    keccak256(&data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct File {
        message_signing: Vec<MessageVector>,
    }
    #[derive(Deserialize)]
    struct MessageVector {
        message_hex: String,
        #[serde(rename = "messageHash")]
        message_hash: String,
        #[serde(rename = "privateKey")]
        private_key: String,
        address: String,
        #[serde(rename = "signature_r_s_v27")]
        signature_v27: String,
    }

    fn message_vectors() -> Vec<MessageVector> {
        let file: File =
            serde_json::from_str(include_str!("../../vectors/tron/signing_rfc6979.json")).unwrap();
        file.message_signing
    }

    #[test]
    fn rfc6979_signatures_reproduce_the_published_ones_byte_for_byte() {
        let vectors = message_vectors();
        assert_eq!(vectors.len(), 3);
        for v in vectors {
            let message = hex::decode(&v.message_hex).unwrap();
            let digest = message_hash(&message);
            assert_eq!(hex::encode(digest), v.message_hash);
            let key = PrivateKey::from_hex(&v.private_key).unwrap();
            assert_eq!(key.address().to_base58(), v.address);
            let sig = sign_digest(&key, &digest);
            assert_eq!(sig.to_hex_v27(), v.signature_v27);
            assert_eq!(sig, sign_digest(&key, &digest), "deterministic");
        }
    }

    #[test]
    fn the_signer_is_recovered_from_v_0_1_and_from_v_27_28() {
        for v in message_vectors() {
            let digest: [u8; 32] = hex::decode(&v.message_hash).unwrap().try_into().unwrap();
            let v27 = Signature::from_hex(&v.signature_v27).unwrap();
            assert_eq!(v27.recover_address(&digest).unwrap().to_base58(), v.address);
            let v01 = Signature::from_hex(&v27.to_hex()).unwrap();
            assert_eq!(v01, v27);
            assert!(v01.to_bytes()[64] <= 1);
        }
    }

    #[test]
    fn a_high_s_signature_is_normalised_and_still_names_the_signer() {
        let key = PrivateKey::from_hex(&"11".repeat(32)).unwrap();
        let digest = [7u8; 32];
        let low = sign_digest(&key, &digest);
        let sig = EcdsaSignature::from_slice(&low.to_bytes()[..64]).unwrap();
        let (r, s) = sig.split_scalars();
        let high_s = -(*s);
        let mut bytes = [0u8; 65];
        bytes[..32].copy_from_slice(&r.to_bytes());
        bytes[32..64].copy_from_slice(&high_s.to_bytes());
        bytes[64] = low.to_bytes()[64] ^ 1;
        let parsed = Signature::from_bytes(&bytes).unwrap();
        assert_eq!(parsed, low);
        assert_eq!(parsed.recover_address(&digest).unwrap(), key.address());
    }

    #[test]
    fn malformed_signatures_are_refused_with_a_reason() {
        assert_eq!(
            Signature::from_bytes(&[1u8; 64]),
            Err(SignatureError::WrongLength(64))
        );
        let mut bytes = [1u8; 65];
        bytes[64] = 5;
        assert_eq!(
            Signature::from_bytes(&bytes),
            Err(SignatureError::BadRecoveryByte(5))
        );
        let zero = [0u8; 65];
        assert_eq!(
            Signature::from_bytes(&zero),
            Err(SignatureError::OutOfRange)
        );
        assert_eq!(Signature::from_hex("abc"), Err(SignatureError::NotHex));
    }
}

//! Master keys, their fingerprints, and sealing/opening one secret under the keyring
//! (byte layout in the parent module's documentation).

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::VaultError;
use crate::TronAddress;

/// The sealed-value format this build writes.
pub const FORMAT_VERSION: u8 = 1;
const FINGERPRINT_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Version byte, fingerprint and nonce.
pub const HEADER_LEN: usize = 1 + FINGERPRINT_LEN + NONCE_LEN;
const AAD_PREFIX: &[u8] = b"trx-energy/vault/v1\0";

/// Identifies a master key without revealing it: 8 bytes of a domain-separated SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; FINGERPRINT_LEN]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A 32-byte master key, in memory that is wiped on drop. `Debug` shows only its fingerprint.
pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
    fingerprint: Fingerprint,
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VaultError> {
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(VaultError::BadMasterKey);
        }
        key.copy_from_slice(bytes);
        let mut hasher = Sha256::new();
        hasher.update(b"trx-energy/vault/fingerprint/v1");
        hasher.update(key.as_slice());
        let digest = hasher.finalize();
        let mut fingerprint = [0u8; FINGERPRINT_LEN];
        fingerprint.copy_from_slice(&digest[..FINGERPRINT_LEN]);
        Ok(Self {
            key,
            fingerprint: Fingerprint(fingerprint),
        })
    }

    /// From 64 hex digits (how `TRX_MASTER_KEY` is written).
    pub fn from_hex(text: &str) -> Result<Self, VaultError> {
        let text = text.trim();
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(VaultError::BadMasterKey);
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, bytes.as_mut_slice()).map_err(|_| VaultError::BadMasterKey)?;
        Self::from_bytes(bytes.as_slice())
    }

    /// 32 random bytes from the operating system.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut_slice());
        Self::from_bytes(bytes.as_slice()).expect("32 bytes")
    }

    /// A new random master key written as 64 hex digits, for an operator to put in
    /// `TRX_MASTER_KEY` (`trx-energy keys generate-master-key`).
    pub fn generate_hex() -> Zeroizing<String> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut_slice());
        Zeroizing::new(hex::encode(bytes.as_slice()))
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_slice().into())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}, <redacted>)", self.fingerprint)
    }
}

/// What a sealed secret is for; its label is the associated data and the row's `key_ref`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A pool wallet's private key.
    Wallet(TronAddress),
    /// The seed deposit addresses are derived from.
    DepositSeed,
    /// The audit key's private half (an Ed25519 seed) that signs the audit chain's heads.
    AuditKey,
}

impl Purpose {
    /// `wallet:<41hex>`, `deposit-seed` or `audit-key`.
    pub fn label(&self) -> String {
        match self {
            Self::Wallet(address) => format!("wallet:{}", address.to_hex()),
            Self::DepositSeed => "deposit-seed".to_string(),
            Self::AuditKey => "audit-key".to_string(),
        }
    }

    /// The `purpose` column: `wallet`, `deposit-seed` or `audit-key`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Wallet(_) => "wallet",
            Self::DepositSeed => "deposit-seed",
            Self::AuditKey => "audit-key",
        }
    }
}

fn aad(header: &[u8], purpose: &Purpose) -> Vec<u8> {
    let mut aad = AAD_PREFIX.to_vec();
    aad.extend_from_slice(&header[..1 + FINGERPRINT_LEN]);
    aad.extend_from_slice(purpose.label().as_bytes());
    aad
}

/// The current master key (seals) and previous ones (still open what they sealed).
pub struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl Keyring {
    pub fn new(current: MasterKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Adds a previous master key; one equal to a key already held is ignored.
    pub fn with_previous(mut self, previous: MasterKey) -> Self {
        let known = self.current.fingerprint == previous.fingerprint
            || self
                .previous
                .iter()
                .any(|k| k.fingerprint == previous.fingerprint);
        if !known {
            self.previous.push(previous);
        }
        self
    }

    pub fn current_fingerprint(&self) -> Fingerprint {
        self.current.fingerprint
    }

    /// Encrypts `plaintext` for `purpose` under the current master key, with a fresh nonce.
    pub fn seal(&self, purpose: &Purpose, plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.current.fingerprint.0);
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        let aad = aad(&out, purpose);
        let ciphertext = self
            .current
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption of a small buffer cannot fail");
        out.extend_from_slice(&ciphertext);
        out
    }

    /// The fingerprint a sealed value names, after checking its length and version.
    pub fn sealed_fingerprint(sealed: &[u8]) -> Result<Fingerprint, VaultError> {
        if sealed.len() < HEADER_LEN + TAG_LEN {
            return Err(VaultError::TooShort(sealed.len()));
        }
        if sealed[0] != FORMAT_VERSION {
            return Err(VaultError::UnknownVersion(sealed[0]));
        }
        let mut fingerprint = [0u8; FINGERPRINT_LEN];
        fingerprint.copy_from_slice(&sealed[1..1 + FINGERPRINT_LEN]);
        Ok(Fingerprint(fingerprint))
    }

    /// True when `sealed` is already under the current master key.
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        Self::sealed_fingerprint(sealed).ok() == Some(self.current.fingerprint)
    }

    /// Decrypts `sealed` for `purpose` with whichever keyring key it names.
    pub fn open(&self, purpose: &Purpose, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let fingerprint = Self::sealed_fingerprint(sealed)?;
        let key = std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.fingerprint == fingerprint)
            .ok_or(VaultError::UnknownMasterKey {
                found: fingerprint,
                current: self.current.fingerprint,
            })?;
        let (header, ciphertext) = sealed.split_at(HEADER_LEN);
        let aad = aad(header, purpose);
        key.cipher()
            .decrypt(
                XNonce::from_slice(&header[1 + FINGERPRINT_LEN..]),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Authentication {
                purpose: purpose.label(),
                fingerprint,
            })
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous: Vec<_> = self.previous.iter().map(|k| k.fingerprint).collect();
        write!(
            f,
            "Keyring {{ current: {}, previous: {previous:?} }}",
            self.current.fingerprint
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [0x5a; 32];

    fn wallet() -> Purpose {
        Purpose::Wallet(TronAddress::parse("TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsE").unwrap())
    }

    #[test]
    fn sealing_the_same_key_twice_gives_different_bytes_that_both_open() {
        let ring = Keyring::new(MasterKey::generate());
        let a = ring.seal(&wallet(), &SECRET);
        let b = ring.seal(&wallet(), &SECRET);
        assert_ne!(a, b);
        assert_eq!(a.len(), HEADER_LEN + 32 + TAG_LEN);
        assert_eq!(ring.open(&wallet(), &a).unwrap().as_slice(), &SECRET);
        assert_eq!(ring.open(&wallet(), &b).unwrap().as_slice(), &SECRET);
    }

    #[test]
    fn the_layout_starts_with_the_version_and_the_master_key_fingerprint() {
        let master = MasterKey::generate();
        let fingerprint = master.fingerprint();
        let ring = Keyring::new(master);
        let sealed = ring.seal(&Purpose::DepositSeed, &[1u8; 64]);
        assert_eq!(sealed[0], FORMAT_VERSION);
        assert_eq!(&sealed[1..9], &fingerprint.0);
        assert_eq!(sealed.len(), 1 + 8 + 24 + 64 + 16);
    }

    #[test]
    fn altering_any_single_byte_makes_opening_fail() {
        let ring = Keyring::new(MasterKey::generate());
        let sealed = ring.seal(&wallet(), &SECRET);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(ring.open(&wallet(), &bad).is_err(), "byte {i} altered");
        }
        assert_eq!(
            ring.open(&wallet(), &sealed[..40]),
            Err(VaultError::TooShort(40))
        );
    }

    #[test]
    fn another_version_byte_is_named_as_unsupported() {
        let ring = Keyring::new(MasterKey::generate());
        let mut sealed = ring.seal(&wallet(), &SECRET);
        sealed[0] = 2;
        assert_eq!(
            ring.open(&wallet(), &sealed),
            Err(VaultError::UnknownVersion(2))
        );
    }

    #[test]
    fn a_ciphertext_moved_to_another_purpose_fails_authentication() {
        let ring = Keyring::new(MasterKey::generate());
        let sealed = ring.seal(&wallet(), &SECRET);
        let other =
            Purpose::Wallet(TronAddress::parse("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t").unwrap());
        assert!(matches!(
            ring.open(&other, &sealed),
            Err(VaultError::Authentication { .. })
        ));
        assert!(matches!(
            ring.open(&Purpose::DepositSeed, &sealed),
            Err(VaultError::Authentication { .. })
        ));
    }

    #[test]
    fn a_wrong_master_key_is_named_by_fingerprint_in_the_error() {
        let sealer = MasterKey::generate();
        let sealed_under = sealer.fingerprint();
        let sealed = Keyring::new(sealer).seal(&wallet(), &SECRET);
        let wrong = Keyring::new(MasterKey::generate());
        let err = wrong.open(&wallet(), &sealed).unwrap_err();
        assert_eq!(
            err,
            VaultError::UnknownMasterKey {
                found: sealed_under,
                current: wrong.current_fingerprint()
            }
        );
        assert!(err.to_string().contains(&sealed_under.to_string()));
        assert!(err.to_string().contains("TRX_PREVIOUS_MASTER_KEY"));
    }

    #[test]
    fn a_previous_master_key_still_opens_what_it_sealed_but_new_seals_use_the_current_one() {
        let old_bytes = [1u8; 32];
        let old = Keyring::new(MasterKey::from_bytes(&old_bytes).unwrap());
        let sealed = old.seal(&wallet(), &SECRET);
        let new = Keyring::new(MasterKey::generate())
            .with_previous(MasterKey::from_bytes(&old_bytes).unwrap());
        assert!(!new.is_current(&sealed));
        assert_eq!(new.open(&wallet(), &sealed).unwrap().as_slice(), &SECRET);
        let resealed = new.seal(&wallet(), &SECRET);
        assert!(new.is_current(&resealed));
        assert!(old.open(&wallet(), &resealed).is_err());
    }

    #[test]
    fn master_keys_show_only_their_fingerprint_when_printed() {
        let hex_key = "7f".repeat(32);
        let master = MasterKey::from_hex(&hex_key).unwrap();
        let fingerprint = master.fingerprint().to_string();
        let ring = Keyring::new(master);
        let shown = format!("{ring:?}");
        assert!(shown.contains(&fingerprint));
        assert!(!shown.contains(&hex_key[..16]));
        assert_eq!(
            MasterKey::from_hex("abcd").unwrap_err(),
            VaultError::BadMasterKey
        );
        assert_eq!(
            MasterKey::from_hex(&"zz".repeat(32)).unwrap_err(),
            VaultError::BadMasterKey
        );
    }
}

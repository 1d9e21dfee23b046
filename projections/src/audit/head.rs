//! Signed heads: the audit key's statement that audit numbers `from..=to` of the chain are
//! `count` links that follow `prev_hash` and end with `last_hash`, made at `signed_at`. A head
//! anchors the chain outside the database: whoever rewrites events and recomputes the hashes
//! after them cannot make the heads signed before agree with the new chain without the audit
//! key, which the database never holds (it is sealed in the key vault under the master key).
//!
//! The signed message, specified byte by byte in docs/audit.md so that an auditor can check a
//! head with any Ed25519 library:
//!
//! ```text
//! message = "trx-energy/audit/head/v1" 0x00
//!           field(decimal(from)) field(decimal(to)) field(decimal(count))
//!           field(prev_hash, 32 bytes) field(last_hash, 32 bytes)
//!           field(signed_at, RFC 3339 UTC with six fractional digits and Z)
//!           field(public_key, 32 bytes)
//! field(x) = u32 big-endian byte length of x, then x          (as in the event encoding)
//! signature = Ed25519(audit key, message)                    (RFC 8032, not pre-hashed)
//! ```
//!
//! This module does no IO: storing heads and checking them against the database is
//! [`super::heads`]; checking them against an export or the API's pages is [`super::offline`].

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::canonical::format_time;

/// The domain-separation prefix of the signed message.
pub const HEAD_DOMAIN: &[u8] = b"trx-energy/audit/head/v1\0";

/// The audit key's private half, in memory that is wiped on drop. `Debug` and `Display` show
/// only the public half's fingerprint.
pub struct AuditSigner {
    key: SigningKey,
}

impl AuditSigner {
    /// From the 32-byte seed the vault keeps (RFC 8032's private key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// 32 random bytes from the operating system, for a new audit key.
    pub fn generate_seed() -> Zeroizing<[u8; 32]> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut_slice());
        seed
    }

    pub fn public_key(&self) -> AuditPublicKey {
        AuditPublicKey(self.key.verifying_key())
    }

    /// Signs `range` as of `signed_at` (truncated to microseconds, the precision it is written
    /// with).
    pub fn sign(&self, range: &HeadRange, signed_at: DateTime<Utc>) -> SignedHead {
        let signed_at = format_time(signed_at.trunc_subsecs(6));
        let public_key = self.key.verifying_key().to_bytes();
        let count = range.count();
        let message = message(
            range.from,
            range.to,
            count,
            &range.prev_hash,
            &range.last_hash,
            &signed_at,
            &public_key,
        );
        let signature = self.key.sign(&message);
        SignedHead {
            head: Head {
                from: range.from,
                to: range.to,
                count,
                prev_hash: hex::encode(range.prev_hash),
                last_hash: hex::encode(range.last_hash),
                signed_at,
                public_key: hex::encode(public_key),
            },
            signature: hex::encode(signature.to_bytes()),
        }
    }
}

impl fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AuditSigner({}, <redacted>)",
            self.public_key().fingerprint()
        )
    }
}

/// The audit key's public half: what an auditor holds to check heads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuditPublicKey(VerifyingKey);

impl AuditPublicKey {
    /// From 64 hex digits (how it is printed and served).
    pub fn from_hex(text: &str) -> Result<Self, HeadError> {
        let bytes = hash_hex(text.trim(), "public_key")?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| HeadError::Malformed {
                field: "public_key",
                why: "not an Ed25519 public key".into(),
            })
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Eight bytes of a domain-separated SHA-256 of the key, as 16 hex digits: names the key
    /// in messages without printing all of it.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"trx-energy/audit/key-fingerprint/v1");
        h.update(self.0.as_bytes());
        hex::encode(&h.finalize()[..8])
    }
}

impl fmt::Display for AuditPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for AuditPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditPublicKey({self})")
    }
}

/// What a head states: audit numbers `from..=to` follow `prev_hash` and end with `last_hash`.
/// An empty chain is `from` 1, `to` 0, both hashes the genesis hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadRange {
    pub from: i64,
    pub to: i64,
    pub prev_hash: [u8; 32],
    pub last_hash: [u8; 32],
}

impl HeadRange {
    pub fn count(&self) -> i64 {
        self.to - self.from + 1
    }
}

/// A head as written in exports and API answers (hex for bytes, the time as signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// The first audit number covered.
    pub from: i64,
    /// The last audit number covered.
    pub to: i64,
    /// `to - from + 1`.
    pub count: i64,
    /// The hash before `from` (32 zero bytes when `from` is 1), hex.
    pub prev_hash: String,
    /// The hash of audit number `to`, hex.
    pub last_hash: String,
    /// When it was signed: RFC 3339, UTC, six fractional digits, `Z`.
    pub signed_at: String,
    /// The audit key's public half (Ed25519), hex: compare it with the one you hold.
    pub public_key: String,
}

/// A head and its signature: one JSON object, `{"head": {…}, "signature": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedHead {
    pub head: Head,
    /// Ed25519 over the message above, 64 bytes in hex.
    pub signature: String,
}

/// A head whose form and signature were checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedHead {
    pub range: HeadRange,
    pub signed_at: DateTime<Utc>,
    pub key: AuditPublicKey,
}

impl fmt::Display for CheckedHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the head of #{}..#{} signed at {} by key {}",
            self.range.from,
            self.range.to,
            format_time(self.signed_at),
            self.key.fingerprint()
        )
    }
}

/// Why a head does not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("its {field} is malformed: {why}")]
    Malformed { field: &'static str, why: String },
    #[error("its signature does not verify (the head was altered, or not signed by its key)")]
    BadSignature,
    #[error("it is signed by key {found}, not by the audit key {expected}")]
    OtherKey { found: String, expected: String },
}

impl SignedHead {
    /// Checks the head's form and its signature by the key it names, and that key against
    /// `trusted` when given. Without `trusted`, a valid signature only shows the head was not
    /// changed since someone holding *that* key signed it.
    pub fn check(&self, trusted: Option<&AuditPublicKey>) -> Result<CheckedHead, HeadError> {
        let h = &self.head;
        let malformed = |field, why: &str| HeadError::Malformed {
            field,
            why: why.into(),
        };
        if h.from < 1 {
            return Err(malformed("from", "audit numbers start at 1"));
        }
        if h.to < h.from - 1 {
            return Err(malformed("to", "it is before from"));
        }
        if h.count != h.to - h.from + 1 {
            return Err(malformed("count", "it is not to - from + 1"));
        }
        let prev_hash = hash_hex(&h.prev_hash, "prev_hash")?;
        let last_hash = hash_hex(&h.last_hash, "last_hash")?;
        if h.count == 0 && prev_hash != last_hash {
            return Err(malformed(
                "last_hash",
                "an empty range ends where it starts",
            ));
        }
        let signed_at = DateTime::parse_from_rfc3339(&h.signed_at)
            .map_err(|e| malformed("signed_at", &e.to_string()))?
            .with_timezone(&Utc);
        if format_time(signed_at) != h.signed_at {
            return Err(malformed(
                "signed_at",
                "not in the canonical form (UTC, six fractional digits, Z)",
            ));
        }
        let key = AuditPublicKey::from_hex(&h.public_key)?;
        if key.to_string() != h.public_key {
            return Err(malformed("public_key", "not lower-case hex"));
        }
        let signature: [u8; 64] = hex_exact(&self.signature)
            .ok_or_else(|| malformed("signature", "not 64 bytes of lower-case hex"))?;
        let message = message(
            h.from,
            h.to,
            h.count,
            &prev_hash,
            &last_hash,
            &h.signed_at,
            &key.to_bytes(),
        );
        key.0
            .verify_strict(&message, &Signature::from_bytes(&signature))
            .map_err(|_| HeadError::BadSignature)?;
        if let Some(trusted) = trusted {
            if *trusted != key {
                return Err(HeadError::OtherKey {
                    found: key.fingerprint(),
                    expected: trusted.fingerprint(),
                });
            }
        }
        Ok(CheckedHead {
            range: HeadRange {
                from: h.from,
                to: h.to,
                prev_hash,
                last_hash,
            },
            signed_at,
            key,
        })
    }
}

/// The bytes that are signed.
pub fn message(
    from: i64,
    to: i64,
    count: i64,
    prev_hash: &[u8; 32],
    last_hash: &[u8; 32],
    signed_at: &str,
    public_key: &[u8; 32],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD_DOMAIN.len() + 200);
    out.extend_from_slice(HEAD_DOMAIN);
    for field in [
        from.to_string().as_bytes(),
        to.to_string().as_bytes(),
        count.to_string().as_bytes(),
        prev_hash,
        last_hash,
        signed_at.as_bytes(),
        public_key,
    ] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// `N` bytes from exactly `2N` lower-case hex digits.
pub(crate) fn hex_exact<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

fn hash_hex(text: &str, field: &'static str) -> Result<[u8; 32], HeadError> {
    hex_exact(text).ok_or_else(|| HeadError::Malformed {
        field,
        why: "not 32 bytes of lower-case hex".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> AuditSigner {
        AuditSigner::from_seed(&[7u8; 32])
    }

    fn range() -> HeadRange {
        HeadRange {
            from: 1,
            to: 3,
            prev_hash: [0u8; 32],
            last_hash: [0xab; 32],
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05.000123456Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_signed_head_checks_and_says_what_it_covers() {
        let signed = signer().sign(&range(), at());
        assert_eq!(signed.head.count, 3);
        assert_eq!(signed.head.signed_at, "2026-01-02T03:04:05.000123Z");
        let checked = signed.check(Some(&signer().public_key())).unwrap();
        assert_eq!(checked.range, range());
        assert_eq!(checked.key, signer().public_key());
    }

    #[test]
    fn changing_any_field_of_a_signed_head_breaks_its_signature() {
        let signed = signer().sign(&range(), at());
        type Edit = (&'static str, fn(&mut Head));
        let edits: [Edit; 4] = [
            ("to", |h| {
                h.to = 4;
                h.count = 4;
            }),
            ("last_hash", |h| h.last_hash = "cd".repeat(32)),
            ("prev_hash", |h| h.prev_hash = "01".repeat(32)),
            ("signed_at", |h| {
                h.signed_at = "2026-01-02T03:04:06.000123Z".into()
            }),
        ];
        for (what, edit) in edits {
            let mut changed = signed.clone();
            edit(&mut changed.head);
            assert_eq!(changed.check(None), Err(HeadError::BadSignature), "{what}");
        }
    }

    #[test]
    fn a_head_signed_by_another_key_is_refused_against_the_key_the_auditor_holds() {
        let other = AuditSigner::from_seed(&[8u8; 32]);
        let signed = other.sign(&range(), at());
        assert!(signed.check(None).is_ok(), "valid under its own key");
        assert!(matches!(
            signed.check(Some(&signer().public_key())),
            Err(HeadError::OtherKey { .. })
        ));
        // Swapping in the trusted public key does not help: the signature is then wrong.
        let mut forged = signed;
        forged.head.public_key = signer().public_key().to_string();
        assert_eq!(
            forged.check(Some(&signer().public_key())),
            Err(HeadError::BadSignature)
        );
    }

    #[test]
    fn a_head_whose_count_or_range_disagree_is_malformed() {
        let mut signed = signer().sign(&range(), at());
        signed.head.count = 2;
        assert!(matches!(
            signed.check(None),
            Err(HeadError::Malformed { field: "count", .. })
        ));
        let mut signed = signer().sign(&range(), at());
        signed.head.last_hash = signed.head.last_hash.to_uppercase();
        assert!(matches!(
            signed.check(None),
            Err(HeadError::Malformed {
                field: "last_hash",
                ..
            })
        ));
    }

    #[test]
    fn the_signer_prints_no_key_material() {
        let seed = [7u8; 32];
        let shown = format!("{:?}", AuditSigner::from_seed(&seed));
        assert!(!shown.contains(&hex::encode(seed)), "{shown}");
        assert!(!shown.contains("7, 7, 7"), "{shown}");
        assert!(shown.contains(&signer().public_key().fingerprint()));
    }

    /// The documented example (docs/audit.md): RFC 8032's first test key signs a head of the
    /// worked example's first event; an auditor's library must agree on these bytes.
    #[test]
    fn the_documented_head_example_has_the_documented_signature() {
        let seed: [u8; 32] =
            hex_exact("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
        let signer = AuditSigner::from_seed(&seed);
        assert_eq!(
            signer.public_key().to_string(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let range = HeadRange {
            from: 1,
            to: 1,
            prev_hash: [0u8; 32],
            last_hash: hex_exact(
                "dfe43ca49cd7fc002d588cf7fbb74002984e787bd0e49d6479f89d57a18cb27a",
            )
            .unwrap(),
        };
        let signed = signer.sign(&range, at());
        let message = message(
            1,
            1,
            1,
            &range.prev_hash,
            &range.last_hash,
            &signed.head.signed_at,
            &signer.public_key().to_bytes(),
        );
        assert_eq!(
            hex::encode(&message[..HEAD_DOMAIN.len() + 5]),
            "7472782d656e657267792f61756469742f686561642f7631000000000131"
        );
        assert_eq!(
            hex::encode(Sha256::digest(&message)),
            DOCUMENTED_MESSAGE_SHA256
        );
        assert_eq!(signed.signature, DOCUMENTED_SIGNATURE);
    }

    /// Computed independently with Python's `cryptography` from the description in
    /// docs/audit.md.
    const DOCUMENTED_MESSAGE_SHA256: &str =
        "0c6820864c30d1f8698be263692c745dd83577c8ea9aa8420e30e34510c8ded3";
    const DOCUMENTED_SIGNATURE: &str = "23b17a240c2441cb04e633ac5479b8bec5db4d5f91953c11f32d9010a703a7a1\
                                        74548237d1276f856653d200ce81bc7e2fca7db4bea6c24b6c68885087a6c90a";
}

//! The key vault: pool-wallet private keys, the deposit-address seed and the audit key (which
//! signs heads of the audit chain), encrypted at rest with
//! XChaCha20-Poly1305 under a master key the caller supplies (the binary reads `TRX_MASTER_KEY`;
//! nothing in this crate reads the environment).
//!
//! Sealed layout, version 1 (docs/key-vault.md, docs/adr/0003-key-vault-format.md):
//!
//! ```text
//! offset  size  field
//! 0       1     format version = 0x01
//! 1       8     master-key fingerprint = SHA-256("trx-energy/vault/fingerprint/v1" ‖ key)[0..8]
//! 9       24    XChaCha20 nonce, random per sealing
//! 33      n+16  ciphertext ‖ Poly1305 tag
//! ```
//!
//! The associated data is `"trx-energy/vault/v1" ‖ 0x00 ‖ byte 0..9 of the sealed value (version
//! and fingerprint) ‖ the purpose label` — `wallet:<41hex>`, `deposit-seed` or `audit-key` — so
//! a ciphertext cannot be moved to another wallet's row, re-labelled to another master key or
//! version, or altered in any byte without failing authentication.
//!
//! The [`Keyring`] holds the current master key and any previous ones: reading accepts all of
//! them, sealing always uses the current one, and [`KeyVault::rotate`] re-seals every stored key
//! under the current one in a single database transaction.

mod deposit;
mod keyring;
mod store;

pub use deposit::DepositAddress;
pub use keyring::{Fingerprint, Keyring, MasterKey, Purpose, FORMAT_VERSION, HEADER_LEN};
pub use store::{KeyVault, RotationReport, StoredKey};

/// Why the vault refused. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("master key must be 32 bytes written as 64 hex digits")]
    BadMasterKey,
    #[error("sealed key is {0} bytes; a sealed key is at least 49")]
    TooShort(usize),
    #[error("sealed key has format version {0}; this build reads version 1")]
    UnknownVersion(u8),
    #[error(
        "sealed key was encrypted under master key {found}, which is not in the keyring \
         (current {current}): wrong TRX_MASTER_KEY, or set TRX_PREVIOUS_MASTER_KEY to the key \
         it was sealed with"
    )]
    UnknownMasterKey {
        found: Fingerprint,
        current: Fingerprint,
    },
    #[error(
        "sealed key for {purpose} failed authentication: it was altered, sealed for another \
         purpose, or the master key with fingerprint {fingerprint} is wrong"
    )]
    Authentication {
        purpose: String,
        fingerprint: Fingerprint,
    },
    #[error("decrypted {purpose} has the wrong length")]
    BadPlaintext { purpose: String },
    #[error("no key is stored for {0}")]
    NotFound(String),
    #[error("no deposit seed is stored; run `trx-energy keys init-deposit-seed`")]
    NoDepositSeed,
    #[error("stored key {key_ref} belongs to {derived}, not to the address it is filed under")]
    AddressMismatch { key_ref: String, derived: String },
    #[error("stored row {0} has an unknown purpose")]
    BadRow(String),
    #[error("deposit index space (2^31) is exhausted")]
    IndicesExhausted,
}

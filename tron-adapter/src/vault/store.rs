//! The vault's Postgres storage (`vault_keys`, migrations 0010 and 0100): store and read
//! pool-wallet keys, the deposit seed and the audit key, list what is stored (never the secrets), and rotate every row to the
//! current master key in one transaction.

use sqlx::{PgPool, Row};
use zeroize::Zeroizing;

use super::keyring::{Keyring, Purpose};
use super::VaultError;
use crate::bip32::DepositSeed;
use crate::keys::PrivateKey;
use crate::{Error, TronAddress};

/// The vault: a keyring and the pool it stores into.
pub struct KeyVault {
    pub(super) pool: PgPool,
    pub(super) keyring: Keyring,
}

/// One stored key as `keys list` shows it: no secret, only where it is and what seals it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub key_ref: String,
    pub purpose: String,
    pub address: Option<String>,
    pub master_key_fingerprint: String,
}

/// What a rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RotationReport {
    /// Rows re-sealed under the current master key.
    pub resealed: usize,
    /// Rows that were already under it.
    pub unchanged: usize,
}

fn purpose_of(key_ref: &str, purpose: &str, address: Option<&str>) -> Result<Purpose, VaultError> {
    match (purpose, address) {
        ("deposit-seed", None) if key_ref == "deposit-seed" => Ok(Purpose::DepositSeed),
        ("audit-key", None) if key_ref == "audit-key" => Ok(Purpose::AuditKey),
        ("wallet", Some(address)) => {
            let address =
                TronAddress::from_hex(address).map_err(|_| VaultError::BadRow(key_ref.into()))?;
            let purpose = Purpose::Wallet(address);
            if purpose.label() != key_ref {
                return Err(VaultError::BadRow(key_ref.into()));
            }
            Ok(purpose)
        }
        _ => Err(VaultError::BadRow(key_ref.into())),
    }
}

impl KeyVault {
    pub fn new(pool: PgPool, keyring: Keyring) -> Self {
        Self { pool, keyring }
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    async fn insert(&self, purpose: &Purpose, plaintext: &[u8]) -> Result<bool, Error> {
        let sealed = self.keyring.seal(purpose, plaintext);
        let address = match purpose {
            Purpose::Wallet(address) => Some(address.to_hex()),
            Purpose::DepositSeed | Purpose::AuditKey => None,
        };
        let inserted = sqlx::query(
            "INSERT INTO vault_keys (key_ref, purpose, address, ciphertext, master_key_fingerprint)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_ref) DO NOTHING",
        )
        .bind(purpose.label())
        .bind(purpose.kind())
        .bind(address)
        .bind(sealed)
        .bind(self.keyring.current_fingerprint().to_string())
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        Ok(inserted)
    }

    async fn sealed(&self, purpose: &Purpose) -> Result<Option<Vec<u8>>, Error> {
        let row = sqlx::query("SELECT ciphertext FROM vault_keys WHERE key_ref = $1")
            .bind(purpose.label())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<Vec<u8>, _>(0)))
    }

    /// Stores a pool wallet's key under its address. Storing the same key again is a no-op;
    /// returns the address and whether it was new.
    pub async fn store_wallet_key(&self, key: &PrivateKey) -> Result<(TronAddress, bool), Error> {
        let address = key.address();
        let inserted = self
            .insert(&Purpose::Wallet(address), key.to_bytes().as_slice())
            .await?;
        tracing::info!(
            address = %address,
            master_key = %self.keyring.current_fingerprint(),
            inserted,
            "wallet key stored in the vault"
        );
        Ok((address, inserted))
    }

    /// The private key of pool wallet `address`.
    pub async fn wallet_key(&self, address: &TronAddress) -> Result<PrivateKey, Error> {
        let purpose = Purpose::Wallet(*address);
        let sealed = self
            .sealed(&purpose)
            .await?
            .ok_or_else(|| VaultError::NotFound(purpose.label()))?;
        let plaintext = self.keyring.open(&purpose, &sealed)?;
        let key = PrivateKey::from_bytes(&plaintext).map_err(|_| VaultError::BadPlaintext {
            purpose: purpose.label(),
        })?;
        if key.address() != *address {
            return Err(VaultError::AddressMismatch {
                key_ref: purpose.label(),
                derived: key.address().to_base58(),
            }
            .into());
        }
        Ok(key)
    }

    /// Stores the deposit seed once. A seed already stored is never replaced (that would move
    /// every deposit address); returns whether this one was stored.
    pub async fn init_deposit_seed(&self, seed: &DepositSeed) -> Result<bool, Error> {
        let inserted = self.insert(&Purpose::DepositSeed, seed.as_bytes()).await?;
        tracing::info!(
            master_key = %self.keyring.current_fingerprint(),
            inserted,
            "deposit seed initialised"
        );
        Ok(inserted)
    }

    pub async fn deposit_seed(&self) -> Result<DepositSeed, Error> {
        let sealed = self
            .sealed(&Purpose::DepositSeed)
            .await?
            .ok_or(VaultError::NoDepositSeed)?;
        let plaintext = self.keyring.open(&Purpose::DepositSeed, &sealed)?;
        DepositSeed::from_bytes(&plaintext).map_err(|_| {
            VaultError::BadPlaintext {
                purpose: Purpose::DepositSeed.label(),
            }
            .into()
        })
    }

    /// The audit key's 32-byte seed, creating and storing a new random one if none is stored
    /// (two processes racing store one: the loser reads the winner's). Returns it and whether
    /// it was created here.
    pub async fn audit_key(&self) -> Result<(Zeroizing<[u8; 32]>, bool), Error> {
        let mut created = false;
        if self.sealed(&Purpose::AuditKey).await?.is_none() {
            let mut seed = Zeroizing::new([0u8; 32]);
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut_slice());
            created = self.insert(&Purpose::AuditKey, seed.as_slice()).await?;
            if created {
                tracing::info!(
                    master_key = %self.keyring.current_fingerprint(),
                    "audit key created and sealed in the vault"
                );
            }
        }
        let sealed = self
            .sealed(&Purpose::AuditKey)
            .await?
            .ok_or_else(|| VaultError::NotFound(Purpose::AuditKey.label()))?;
        let plaintext = self.keyring.open(&Purpose::AuditKey, &sealed)?;
        let mut seed = Zeroizing::new([0u8; 32]);
        if plaintext.len() != 32 {
            return Err(VaultError::BadPlaintext {
                purpose: Purpose::AuditKey.label(),
            }
            .into());
        }
        seed.copy_from_slice(&plaintext);
        Ok((seed, created))
    }

    /// Every stored key, without secrets.
    pub async fn list(&self) -> Result<Vec<StoredKey>, Error> {
        let rows = sqlx::query(
            "SELECT key_ref, purpose, address, master_key_fingerprint FROM vault_keys
             ORDER BY key_ref",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| StoredKey {
                key_ref: r.get(0),
                purpose: r.get(1),
                address: r.get(2),
                master_key_fingerprint: r.get(3),
            })
            .collect())
    }

    /// Re-seals every stored key under the current master key, in one transaction: either every
    /// row is rewritten or (on any error, e.g. a row no keyring key opens) none is.
    pub async fn rotate(&self) -> Result<RotationReport, Error> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT key_ref, purpose, address, ciphertext FROM vault_keys ORDER BY key_ref
             FOR UPDATE",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut report = RotationReport::default();
        for row in rows {
            let key_ref: String = row.get(0);
            let purpose_text: String = row.get(1);
            let address: Option<String> = row.get(2);
            let sealed: Vec<u8> = row.get(3);
            if self.keyring.is_current(&sealed) {
                report.unchanged += 1;
                continue;
            }
            let purpose = purpose_of(&key_ref, &purpose_text, address.as_deref())?;
            let plaintext = self.keyring.open(&purpose, &sealed)?;
            let resealed = self.keyring.seal(&purpose, &plaintext);
            sqlx::query(
                "UPDATE vault_keys SET ciphertext = $2, master_key_fingerprint = $3,
                 rotated_at = now() WHERE key_ref = $1",
            )
            .bind(&key_ref)
            .bind(resealed)
            .bind(self.keyring.current_fingerprint().to_string())
            .execute(&mut *tx)
            .await?;
            report.resealed += 1;
        }
        tx.commit().await?;
        tracing::info!(
            master_key = %self.keyring.current_fingerprint(),
            resealed = report.resealed,
            unchanged = report.unchanged,
            "vault rotated to the current master key"
        );
        Ok(report)
    }
}

impl std::fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyVault {{ keyring: {:?} }}", self.keyring)
    }
}

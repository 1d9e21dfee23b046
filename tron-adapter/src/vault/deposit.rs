//! Deposit addresses: each account gets one address, derived from the vault's seed at
//! m/44'/195'/0'/0/i, with `i` taken from a sequence and the assignment stored in
//! `deposit_addresses` (migration 0010). Asking again — even concurrently — returns the same one.

use sqlx::Row;

use super::store::KeyVault;
use super::VaultError;
use crate::bip32::Bip32Error;
use crate::keys::PrivateKey;
use crate::{Error, TronAddress};

/// An account's deposit address and the derivation index behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositAddress {
    pub account_id: String,
    pub index: u32,
    pub address: TronAddress,
}

fn from_row(account_id: &str, index: i32, address: &str) -> Result<DepositAddress, Error> {
    let bad = || VaultError::BadRow(format!("deposit_addresses/{account_id}"));
    Ok(DepositAddress {
        account_id: account_id.to_string(),
        index: u32::try_from(index).map_err(|_| bad())?,
        address: TronAddress::from_hex(address).map_err(|_| bad())?,
    })
}

impl KeyVault {
    async fn existing_deposit_address(
        &self,
        account_id: &str,
    ) -> Result<Option<DepositAddress>, Error> {
        let row = sqlx::query(
            "SELECT derivation_index, address FROM deposit_addresses WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| from_row(account_id, r.get(0), &r.get::<String, _>(1)))
            .transpose()
    }

    /// The account's deposit address, assigning the next index the first time.
    pub async fn deposit_address(&self, account_id: &str) -> Result<DepositAddress, Error> {
        if let Some(existing) = self.existing_deposit_address(account_id).await? {
            return Ok(existing);
        }
        let seed = self.deposit_seed().await?;
        loop {
            let next: Result<i32, sqlx::Error> =
                sqlx::query_scalar("SELECT nextval('deposit_address_index_seq')::integer")
                    .fetch_one(&self.pool)
                    .await;
            let index = match next {
                Ok(i) => u32::try_from(i).map_err(|_| VaultError::IndicesExhausted)?,
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("2200H") => {
                    return Err(VaultError::IndicesExhausted.into())
                }
                Err(e) => return Err(e.into()),
            };
            let address = match seed.deposit_key(index) {
                Ok(key) => key.address(),
                // BIP32 says to skip an index whose key is invalid (probability below 2^-127).
                Err(Bip32Error::InvalidChild(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            let inserted = sqlx::query(
                "INSERT INTO deposit_addresses (account_id, derivation_index, address)
                 VALUES ($1, $2, $3) ON CONFLICT (account_id) DO NOTHING",
            )
            .bind(account_id)
            .bind(index as i32)
            .bind(address.to_hex())
            .execute(&self.pool)
            .await?
            .rows_affected()
                == 1;
            if inserted {
                tracing::info!(account_id, index, address = %address, "deposit address assigned");
                return Ok(DepositAddress {
                    account_id: account_id.to_string(),
                    index,
                    address,
                });
            }
            // Another request for this account won the race; its row is the answer.
            return self
                .existing_deposit_address(account_id)
                .await?
                .ok_or_else(|| {
                    VaultError::NotFound(format!("deposit address of {account_id}")).into()
                });
        }
    }

    /// The account whose deposit address `address` is, if any.
    pub async fn deposit_account(&self, address: &TronAddress) -> Result<Option<String>, Error> {
        Ok(
            sqlx::query_scalar("SELECT account_id FROM deposit_addresses WHERE address = $1")
                .bind(address.to_hex())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The private key of an account's deposit address (to sweep it).
    pub async fn deposit_key(&self, account_id: &str) -> Result<PrivateKey, Error> {
        let assigned = self
            .existing_deposit_address(account_id)
            .await?
            .ok_or_else(|| VaultError::NotFound(format!("deposit address of {account_id}")))?;
        let key = self.deposit_seed().await?.deposit_key(assigned.index)?;
        if key.address() != assigned.address {
            return Err(VaultError::AddressMismatch {
                key_ref: format!("deposit:{account_id}"),
                derived: key.address().to_base58(),
            }
            .into());
        }
        Ok(key)
    }
}

//! The process's keys, from the settings: the vault's keyring (`TRX_MASTER_KEY`, and
//! `TRX_PREVIOUS_MASTER_KEY` while rotating), the audit key the vault keeps, and the tokens'
//! HS256 secret (`TRX_JWT_SECRET`).
//! Without a TRON node (development) each falls back to a key kept in the data directory
//! ([`super::dev`]); with a real node both are required.

use std::sync::Arc;

use anyhow::anyhow;
use projections::audit::AuditSigner;
use tron_adapter::vault::{KeyVault, Keyring, MasterKey};

use crate::http::TokenKeys;
use crate::secret::Secret;
use crate::settings::Settings;

/// The audit key from the vault, made and sealed there on first use. Its public half is logged
/// (never the private one).
pub async fn audit_signer(vault: &KeyVault) -> anyhow::Result<Arc<AuditSigner>> {
    let (seed, created) = vault
        .audit_key()
        .await
        .map_err(|e| anyhow!("open the audit key: {e}"))?;
    let signer = AuditSigner::from_seed(&seed);
    tracing::info!(public_key = %signer.public_key(), fingerprint = %signer.public_key().fingerprint(),
        created, "audit key ready: auditors check signed heads with its public key");
    Ok(Arc::new(signer))
}

/// The keyring of commands that only read the vault (`audit export`): `TRX_MASTER_KEY`, or
/// without a node the development key `run` keeps in the data directory if it exists (never a
/// new one, which could open nothing).
pub fn existing_keyring(settings: &Settings) -> Result<Keyring, String> {
    if settings.vault.master_key.is_none()
        && settings.simulated()
        && super::dev::has_master_key(&settings.data.dir)
    {
        return super::dev::master_key(&settings.data.dir)
            .map(Keyring::new)
            .map_err(|e| format!("{e:#}"));
    }
    configured_keyring(settings)
}

/// The shortest token secret accepted.
pub const MIN_JWT_SECRET: usize = 32;

/// The keyring of the configured master keys; an error names the variable that is missing or
/// bad.
pub fn configured_keyring(settings: &Settings) -> Result<Keyring, String> {
    let current = settings
        .vault
        .master_key
        .as_ref()
        .ok_or("TRX_MASTER_KEY is not set")?;
    let current =
        MasterKey::from_hex(current.expose()).map_err(|e| format!("TRX_MASTER_KEY: {e}"))?;
    let mut ring = Keyring::new(current);
    if let Some(previous) = &settings.vault.previous_master_key {
        let previous = MasterKey::from_hex(previous.expose())
            .map_err(|e| format!("TRX_PREVIOUS_MASTER_KEY: {e}"))?;
        ring = ring.with_previous(previous);
    }
    Ok(ring)
}

/// The vault's keyring: the configured one, or without a node and without `TRX_MASTER_KEY` the
/// development key of the data directory.
pub fn keyring(settings: &Settings) -> anyhow::Result<Keyring> {
    if settings.vault.master_key.is_some() || !settings.simulated() {
        return configured_keyring(settings).map_err(|e| {
            anyhow!("{e} (a master key is required with TRON_NODE_URL; `trx-energy keys generate-master-key` makes one)")
        });
    }
    Ok(Keyring::new(super::dev::master_key(&settings.data.dir)?))
}

/// The tokens' secret: `TRX_JWT_SECRET`, or without a node the development secret.
pub fn jwt_secret(settings: &Settings) -> anyhow::Result<Secret> {
    if let Some(secret) = &settings.http.jwt_secret {
        if secret.expose().len() < MIN_JWT_SECRET {
            anyhow::bail!("TRX_JWT_SECRET must be at least {MIN_JWT_SECRET} characters long");
        }
        return Ok(secret.clone());
    }
    if !settings.simulated() {
        anyhow::bail!(
            "TRX_JWT_SECRET is not set (required with TRON_NODE_URL; {MIN_JWT_SECRET}+ characters)"
        );
    }
    super::dev::jwt_secret(&settings.data.dir)
}

/// The keys that sign and check the API's tokens.
pub fn token_keys(settings: &Settings) -> anyhow::Result<TokenKeys> {
    Ok(TokenKeys::new(&jwt_secret(settings)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_node_needs_a_master_key_and_a_token_secret() {
        let mut settings = Settings::default();
        settings.tron.node_url = Some("http://127.0.0.1:1".into());
        let err = keyring(&settings).unwrap_err().to_string();
        assert!(err.contains("TRX_MASTER_KEY"), "{err}");
        let err = jwt_secret(&settings).unwrap_err().to_string();
        assert!(err.contains("TRX_JWT_SECRET"), "{err}");
    }

    #[test]
    fn a_short_token_secret_or_a_bad_master_key_is_refused_naming_the_variable() {
        let mut settings = Settings::default();
        settings.http.jwt_secret = Some(Secret::new("short"));
        let err = jwt_secret(&settings).unwrap_err().to_string();
        assert!(err.contains("TRX_JWT_SECRET"), "{err}");
        settings.vault.master_key = Some(Secret::new("zz"));
        assert!(configured_keyring(&settings)
            .unwrap_err()
            .contains("TRX_MASTER_KEY"));
        settings.vault.master_key = Some(Secret::new("ab".repeat(32)));
        settings.vault.previous_master_key = Some(Secret::new("zz"));
        assert!(configured_keyring(&settings)
            .unwrap_err()
            .contains("TRX_PREVIOUS_MASTER_KEY"));
    }
}

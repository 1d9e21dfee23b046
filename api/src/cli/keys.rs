//! `trx-energy keys …`: the key vault from the command line. The master key comes from the
//! settings (`TRX_MASTER_KEY`, and `TRX_PREVIOUS_MASTER_KEY` while rotating); private keys are
//! read from standard input, never from the command line; nothing secret is printed
//! (docs/key-vault.md).

use std::io::{Read, Write};

use tron_adapter::bip32::DepositSeed;
use tron_adapter::vault::{KeyVault, MasterKey};
use tron_adapter::PrivateKey;
use zeroize::Zeroizing;

use crate::app::{App, Plan};
use crate::settings::Settings;

/// The `keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Re-seal every stored key under TRX_MASTER_KEY (reading old ones with
    /// TRX_PREVIOUS_MASTER_KEY), in one database transaction.
    Rotate,
    /// List stored keys: reference, address, and the fingerprint of the master key sealing each.
    List,
    /// Store a pool wallet's private key, read as 64 hex digits from standard input.
    ImportWallet,
    /// Create the deposit-address seed and store it (only once; an existing seed is kept).
    InitDepositSeed,
    /// Print an account's deposit address (assigning the next one the first time).
    DepositAddress { account_id: String },
    /// Print a new random master key (64 hex digits) to put in TRX_MASTER_KEY.
    GenerateMasterKey,
    /// Print the audit key's public half (64 hex digits) and fingerprint, creating the key in
    /// the vault on first use: give it to auditors, who check the chain's signed heads with it.
    AuditKey,
}

/// Runs one `keys` command against the settings' database. Returns the process exit code.
pub async fn run(
    command: KeysCommand,
    settings: &Settings,
    input: &mut impl Read,
    out: &mut impl Write,
    err: &mut impl Write,
) -> u8 {
    match execute(command, settings, input).await {
        Ok(text) => match writeln!(out, "{text}") {
            Ok(()) => 0,
            Err(_) => 1,
        },
        Err(reason) => {
            let _ = writeln!(err, "error: {reason}");
            1
        }
    }
}

async fn execute(
    command: KeysCommand,
    settings: &Settings,
    input: &mut impl Read,
) -> Result<String, String> {
    if let KeysCommand::GenerateMasterKey = command {
        return Ok(MasterKey::generate_hex().to_string());
    }
    let ring = crate::app::secrets::configured_keyring(settings)?;
    let key = match command {
        KeysCommand::ImportWallet => {
            let mut text = Zeroizing::new(String::new());
            input
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            Some(PrivateKey::from_hex(&text).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let app = App::build(settings, Plan::tool())
        .await
        .map_err(|e| format!("cannot open the database: {e:#}"))?;
    let vault = KeyVault::new(app.pool().clone(), ring);
    let result = vault_command(&vault, command, key).await;
    let _ = app.close().await;
    result
}

async fn vault_command(
    vault: &KeyVault,
    command: KeysCommand,
    key: Option<PrivateKey>,
) -> Result<String, String> {
    let text = |e: tron_adapter::Error| e.to_string();
    match command {
        KeysCommand::Rotate => {
            let report = vault.rotate().await.map_err(text)?;
            Ok(format!(
                "re-sealed {} key(s) under master key {}; {} already were",
                report.resealed,
                vault.keyring().current_fingerprint(),
                report.unchanged
            ))
        }
        KeysCommand::List => {
            let rows = vault.list().await.map_err(text)?;
            Ok(rows
                .iter()
                .map(|r| format!("{} {} {}", r.key_ref, r.purpose, r.master_key_fingerprint))
                .collect::<Vec<_>>()
                .join("\n"))
        }
        KeysCommand::ImportWallet => {
            let key = key.ok_or("no key was read")?;
            let (address, new) = vault.store_wallet_key(&key).await.map_err(text)?;
            Ok(format!(
                "{} {} {}",
                address.to_base58(),
                address.to_hex(),
                if new { "stored" } else { "already stored" }
            ))
        }
        KeysCommand::InitDepositSeed => {
            let created = vault
                .init_deposit_seed(&DepositSeed::generate())
                .await
                .map_err(text)?;
            Ok(if created {
                "deposit seed created".into()
            } else {
                "a deposit seed already exists; it was kept".into()
            })
        }
        KeysCommand::DepositAddress { account_id } => {
            let d = vault.deposit_address(&account_id).await.map_err(text)?;
            Ok(format!(
                "{} {} {}",
                d.address.to_base58(),
                d.address.to_hex(),
                d.index
            ))
        }
        KeysCommand::AuditKey => {
            let (seed, created) = vault.audit_key().await.map_err(text)?;
            let key = projections::audit::AuditSigner::from_seed(&seed).public_key();
            Ok(format!(
                "{key} fingerprint {} {}",
                key.fingerprint(),
                if created { "created" } else { "stored" }
            ))
        }
        KeysCommand::GenerateMasterKey => Err("handled before opening the vault".into()),
    }
}

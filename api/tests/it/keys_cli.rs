//! `trx-energy keys …` against a test database: importing a wallet key from standard input,
//! deposit addresses, and `keys rotate` (in-process and through the real binary).

use std::io::Write;
use std::process::{Command, Stdio};

use api::cli::keys::{run, KeysCommand};
use api::settings::{Secret, Settings};
use engine::testing::TestDb;
use tron_adapter::vault::{KeyVault, Keyring, MasterKey};

const OLD: &str = "aa00000000000000000000000000000000000000000000000000000000000001";
const NEW: &str = "bb00000000000000000000000000000000000000000000000000000000000002";
const WALLET_KEY: &str = "51d1d6047622bca92272d36b297799ecc152dc2ef91b229debf84fc41e8c73ee";

fn settings(db: &TestDb, master: Option<&str>, previous: Option<&str>) -> Settings {
    let mut settings = Settings::default();
    settings.database.url = Some(Secret::new(db.url()));
    settings.vault.master_key = master.map(Secret::new);
    settings.vault.previous_master_key = previous.map(Secret::new);
    settings
}

async fn keys(command: KeysCommand, settings: &Settings, stdin: &str) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(command, settings, &mut stdin.as_bytes(), &mut out, &mut err).await;
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[tokio::test]
async fn an_imported_wallet_key_survives_rotation_and_reads_only_under_the_new_master_key() {
    let db = TestDb::new().await;
    let old = settings(&db, Some(OLD), None);
    let (code, out, err) = keys(KeysCommand::ImportWallet, &old, WALLET_KEY).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim_end(),
        "TVEZYjZyemfJoLUdGtzsM2ua1HAnbsNgAF 41d351c7c627ad5531edb9587f4150caf393c33e87 stored"
    );
    assert!(!out.contains(WALLET_KEY));
    let (code, _, _) = keys(KeysCommand::InitDepositSeed, &old, "").await;
    assert_eq!(code, 0);
    let (code, first, _) = keys(
        KeysCommand::DepositAddress {
            account_id: "acct-1".into(),
        },
        &old,
        "",
    )
    .await;
    assert_eq!(code, 0);

    // Without the previous key, rotation cannot read the old rows and changes nothing.
    let (code, _, err) = keys(KeysCommand::Rotate, &settings(&db, Some(NEW), None), "").await;
    assert_eq!(code, 1);
    assert!(err.contains("TRX_PREVIOUS_MASTER_KEY"), "{err}");

    let rotating = settings(&db, Some(NEW), Some(OLD));
    let (code, out, err) = keys(KeysCommand::Rotate, &rotating, "").await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("re-sealed 2 key(s)"), "{out}");

    let new_ring = Keyring::new(MasterKey::from_hex(NEW).unwrap());
    let vault = KeyVault::new(db.pool.clone(), new_ring);
    let address = tron_adapter::TronAddress::parse("TVEZYjZyemfJoLUdGtzsM2ua1HAnbsNgAF").unwrap();
    assert_eq!(vault.wallet_key(&address).await.unwrap().address(), address);
    let old_vault = KeyVault::new(
        db.pool.clone(),
        Keyring::new(MasterKey::from_hex(OLD).unwrap()),
    );
    assert!(old_vault.wallet_key(&address).await.is_err());

    let (code, again, _) = keys(
        KeysCommand::DepositAddress {
            account_id: "acct-1".into(),
        },
        &settings(&db, Some(NEW), None),
        "",
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        again, first,
        "the same account keeps its address across rotation"
    );
    let (_, listed, _) = keys(KeysCommand::List, &settings(&db, Some(NEW), None), "").await;
    assert_eq!(listed.lines().count(), 2);
    assert!(!listed.contains(WALLET_KEY));
}

#[tokio::test]
async fn missing_or_malformed_master_keys_and_bad_wallet_keys_exit_1_with_a_reason() {
    let db = TestDb::new().await;
    let (code, _, err) = keys(KeysCommand::List, &settings(&db, None, None), "").await;
    assert_eq!(
        (code, err.trim_end()),
        (1, "error: TRX_MASTER_KEY is not set")
    );
    let (code, _, err) = keys(KeysCommand::List, &settings(&db, Some("abcd"), None), "").await;
    assert_eq!(code, 1);
    assert!(
        err.contains("TRX_MASTER_KEY: master key must be 32 bytes"),
        "{err}"
    );
    let (code, _, err) = keys(
        KeysCommand::ImportWallet,
        &settings(&db, Some(OLD), None),
        "00",
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("32 bytes"), "{err}");
    let zero = "00".repeat(32);
    let (code, _, err) = keys(
        KeysCommand::ImportWallet,
        &settings(&db, Some(OLD), None),
        &zero,
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("group order"), "{err}");
}

#[tokio::test]
async fn keys_rotate_through_the_binary_uses_the_master_keys_from_the_environment() {
    let db = TestDb::new().await;
    let (code, _, err) = keys(
        KeysCommand::ImportWallet,
        &settings(&db, Some(OLD), None),
        WALLET_KEY,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let output = Command::new(env!("CARGO_BIN_EXE_trx-energy"))
        .args(["keys", "rotate"])
        .env("DATABASE_URL", db.url())
        .env("TRX_MASTER_KEY", NEW)
        .env("TRX_PREVIOUS_MASTER_KEY", OLD)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.starts_with("re-sealed 1 key(s) under master key "),
        "{stdout}"
    );
    for secret in [OLD, NEW, WALLET_KEY] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    let vault = KeyVault::new(
        db.pool.clone(),
        Keyring::new(MasterKey::from_hex(NEW).unwrap()),
    );
    assert_eq!(vault.list().await.unwrap().len(), 1);
    let address = tron_adapter::TronAddress::parse("TVEZYjZyemfJoLUdGtzsM2ua1HAnbsNgAF").unwrap();
    assert!(vault.wallet_key(&address).await.is_ok());

    let mut child = Command::new(env!("CARGO_BIN_EXE_trx-energy"))
        .args(["keys", "generate-master-key"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().flush().unwrap();
    let generated = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    assert!(MasterKey::from_hex(generated.trim()).is_ok());
}

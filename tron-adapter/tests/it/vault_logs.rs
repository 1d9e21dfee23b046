//! No key material in the logs or in Debug output while the vault stores, reads, derives and
//! rotates keys. The check runs alone, in a child process of this test binary: tracing's
//! per-callsite interest cache is shared by the threads of one process, so a capturing subscriber
//! is reliable only without parallel tests (a vault log line first reached by another test's
//! thread, while no subscriber wanted it, can stay cached as never logged).

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};

use engine::testing::TestDb;
use tron_adapter::bip32::DepositSeed;
use tron_adapter::vault::{KeyVault, Keyring, MasterKey};
use tron_adapter::PrivateKey;

const OLD_MASTER: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const NEW_MASTER: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const WALLET_KEY: &str = "279ff36d9bf9f305af3280034bb4187c6dd299bac6b26a3c20b999c7c0d50e6e";

fn ring(current: &str, previous: Option<&str>) -> Keyring {
    let ring = Keyring::new(MasterKey::from_hex(current).unwrap());
    match previous {
        Some(p) => ring.with_previous(MasterKey::from_hex(p).unwrap()),
        None => ring,
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Set in the child process that runs the check alone.
const ALONE: &str = "TRX_TEST_VAULT_LOGS_ALONE";

#[test]
fn no_key_material_reaches_the_logs_or_debug_output() {
    if std::env::var_os(ALONE).is_some() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        return runtime.block_on(check_the_logs());
    }
    // This test again, by its full name, as the only test of a child process.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let name = format!("{module}::no_key_material_reaches_the_logs_or_debug_output");
    let child = Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--test-threads=1"])
        .env(ALONE, "1")
        .output()
        .expect("run the test binary as a child process");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(child.status.success(), "the check failed:\n{report}");
    assert!(
        report.contains("test result: ok. 1 passed"),
        "the child ran the check: {report}"
    );
}

async fn check_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let db = TestDb::new().await;
    let seed = DepositSeed::from_bytes(&[0xab; 64]).unwrap();
    let vault = KeyVault::new(db.pool.clone(), ring(OLD_MASTER, None));
    let key = PrivateKey::from_hex(WALLET_KEY).unwrap();
    let (address, _) = vault.store_wallet_key(&key).await.unwrap();
    vault.init_deposit_seed(&seed).await.unwrap();
    let deposit = vault.deposit_address("acct-log").await.unwrap();
    let deposit_key = vault.deposit_key("acct-log").await.unwrap();
    let rotating = KeyVault::new(db.pool.clone(), ring(NEW_MASTER, Some(OLD_MASTER)));
    rotating.rotate().await.unwrap();
    let read = rotating.wallet_key(&address).await.unwrap();
    tracing::info!(?read, ?deposit_key, ?seed, vault = ?rotating, "values as Debug");

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("wallet key stored"),
        "the vault logs its work"
    );
    assert!(logs.contains(&address.to_base58()));
    assert!(logs.contains(&deposit.address.to_base58()));
    let secrets: [Vec<u8>; 5] = [
        hex::decode(WALLET_KEY).unwrap(),
        deposit_key.to_bytes().to_vec(),
        seed.as_bytes().to_vec(),
        hex::decode(OLD_MASTER).unwrap(),
        hex::decode(NEW_MASTER).unwrap(),
    ];
    for secret in &secrets {
        assert_eq!(
            engine::testing::find_secret(&logs, secret),
            None,
            "a secret reached the logs"
        );
    }
}

//! The key vault against a real database (engine::testing::TestDb, migrations applied): storing
//! and reading keys, deposit addresses (stable, unique, race-safe), rotation in one transaction,
//! and no key material in the logs.

use std::sync::Arc;

use engine::testing::TestDb;
use tron_adapter::bip32::DepositSeed;
use tron_adapter::vault::{KeyVault, Keyring, MasterKey, VaultError};
use tron_adapter::{Error, PrivateKey};

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

async fn vault_with_keys(db: &TestDb) -> KeyVault {
    let vault = KeyVault::new(db.pool.clone(), ring(OLD_MASTER, None));
    vault
        .store_wallet_key(&PrivateKey::from_hex(WALLET_KEY).unwrap())
        .await
        .unwrap();
    vault
        .store_wallet_key(&PrivateKey::generate())
        .await
        .unwrap();
    vault
        .init_deposit_seed(&DepositSeed::from_bytes(&[9u8; 64]).unwrap())
        .await
        .unwrap();
    vault
}

#[tokio::test]
async fn a_stored_wallet_key_reads_back_and_storing_it_again_changes_nothing() {
    let db = TestDb::new().await;
    let vault = KeyVault::new(db.pool.clone(), ring(OLD_MASTER, None));
    let key = PrivateKey::from_hex(WALLET_KEY).unwrap();
    let (address, new) = vault.store_wallet_key(&key).await.unwrap();
    assert!(new);
    assert_eq!(address.to_base58(), "TPX6HK2NRN4XKRX1JAhbC827bm7gMmy5w1");
    let (_, again) = vault.store_wallet_key(&key).await.unwrap();
    assert!(!again);
    let back = vault.wallet_key(&address).await.unwrap();
    assert_eq!(back.to_bytes(), key.to_bytes());
    let listed = vault.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].address.as_deref(),
        Some(address.to_hex().as_str())
    );
    let stored: Vec<u8> = sqlx::query_scalar("SELECT ciphertext FROM vault_keys")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let key_bytes = key.to_bytes();
    assert!(!stored.windows(32).any(|w| w == key_bytes.as_slice()));
}

#[tokio::test]
async fn a_wrong_master_key_fails_with_an_error_naming_the_fingerprints() {
    let db = TestDb::new().await;
    let vault = vault_with_keys(&db).await;
    let address = PrivateKey::from_hex(WALLET_KEY).unwrap().address();
    let wrong = KeyVault::new(db.pool.clone(), ring(NEW_MASTER, None));
    let err = wrong.wallet_key(&address).await.unwrap_err();
    let Error::Vault(VaultError::UnknownMasterKey { found, current }) = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(*found, vault.keyring().current_fingerprint());
    assert_eq!(*current, wrong.keyring().current_fingerprint());
    assert!(!err.to_string().contains(OLD_MASTER));
}

#[tokio::test]
async fn a_ciphertext_copied_onto_another_wallet_row_does_not_open() {
    let db = TestDb::new().await;
    let vault = vault_with_keys(&db).await;
    let target = PrivateKey::from_hex(WALLET_KEY).unwrap().address();
    sqlx::query(
        "UPDATE vault_keys SET ciphertext = (SELECT ciphertext FROM vault_keys
           WHERE purpose = 'wallet' AND key_ref <> $1) WHERE key_ref = $1",
    )
    .bind(format!("wallet:{}", target.to_hex()))
    .execute(&db.pool)
    .await
    .unwrap();
    assert!(matches!(
        vault.wallet_key(&target).await,
        Err(Error::Vault(VaultError::Authentication { .. }))
    ));
}

#[tokio::test]
async fn rotation_leaves_every_key_readable_under_the_new_master_key_only() {
    let db = TestDb::new().await;
    let old = vault_with_keys(&db).await;
    let before = old.list().await.unwrap();
    let seed_before = old.deposit_seed().await.unwrap();
    let rotating = KeyVault::new(db.pool.clone(), ring(NEW_MASTER, Some(OLD_MASTER)));
    let report = rotating.rotate().await.unwrap();
    assert_eq!(report.resealed, 3);
    assert_eq!(report.unchanged, 0);
    let again = rotating.rotate().await.unwrap();
    assert_eq!((again.resealed, again.unchanged), (0, 3));

    let new_only = KeyVault::new(db.pool.clone(), ring(NEW_MASTER, None));
    let after = new_only.list().await.unwrap();
    assert_eq!(after.len(), before.len());
    for row in &after {
        assert_eq!(
            row.master_key_fingerprint,
            new_only.keyring().current_fingerprint().to_string()
        );
        if let Some(address) = &row.address {
            let address = tron_adapter::TronAddress::from_hex(address).unwrap();
            assert_eq!(
                new_only.wallet_key(&address).await.unwrap().address(),
                address
            );
            assert!(matches!(
                old.wallet_key(&address).await,
                Err(Error::Vault(VaultError::UnknownMasterKey { .. }))
            ));
        }
    }
    assert_eq!(
        new_only.deposit_seed().await.unwrap().as_bytes(),
        seed_before.as_bytes()
    );
    assert!(old.deposit_seed().await.is_err());
    let rotated: i64 =
        sqlx::query_scalar("SELECT count(*) FROM vault_keys WHERE rotated_at IS NOT NULL")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(rotated, 3);
}

#[tokio::test]
async fn a_rotation_that_meets_an_unreadable_row_changes_nothing() {
    let db = TestDb::new().await;
    vault_with_keys(&db).await;
    // A row sealed under a third key the rotating keyring does not hold.
    let stranger = KeyVault::new(
        db.pool.clone(),
        ring(
            "3333333333333333333333333333333333333333333333333333333333333333",
            None,
        ),
    );
    stranger
        .store_wallet_key(&PrivateKey::generate())
        .await
        .unwrap();
    let snapshot = || async {
        sqlx::query_scalar::<_, Vec<u8>>("SELECT ciphertext FROM vault_keys ORDER BY key_ref")
            .fetch_all(&db.pool)
            .await
            .unwrap()
    };
    let before = snapshot().await;
    let rotating = KeyVault::new(db.pool.clone(), ring(NEW_MASTER, Some(OLD_MASTER)));
    assert!(matches!(
        rotating.rotate().await,
        Err(Error::Vault(VaultError::UnknownMasterKey { .. }))
    ));
    assert_eq!(snapshot().await, before);
}

#[tokio::test]
async fn an_account_always_gets_the_same_deposit_address_and_accounts_never_share_one() {
    let db = TestDb::new().await;
    let vault = vault_with_keys(&db).await;
    let a = vault.deposit_address("acct-a").await.unwrap();
    let b = vault.deposit_address("acct-b").await.unwrap();
    assert_ne!(a.address, b.address);
    assert_ne!(a.index, b.index);
    assert_eq!(vault.deposit_address("acct-a").await.unwrap(), a);
    let seed = vault.deposit_seed().await.unwrap();
    assert_eq!(seed.deposit_key(a.index).unwrap().address(), a.address);
    assert_eq!(
        vault.deposit_key("acct-b").await.unwrap().address(),
        b.address
    );
    assert_eq!(
        vault.deposit_account(&b.address).await.unwrap().as_deref(),
        Some("acct-b")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_one_account_yield_one_address() {
    let db = TestDb::new().await;
    vault_with_keys(&db).await;
    let vault = Arc::new(KeyVault::new(db.pool.clone(), ring(OLD_MASTER, None)));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let vault = vault.clone();
        let account = format!("acct-{}", i % 4);
        tasks.push(tokio::spawn(async move {
            vault.deposit_address(&account).await.unwrap()
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    for r in &results {
        let same: Vec<_> = results
            .iter()
            .filter(|o| o.account_id == r.account_id)
            .collect();
        assert!(same
            .iter()
            .all(|o| o.address == r.address && o.index == r.index));
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM deposit_addresses")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 4);
}

#[tokio::test]
async fn without_a_seed_deposit_addresses_are_refused_and_a_seed_is_never_replaced() {
    let db = TestDb::new().await;
    let vault = KeyVault::new(db.pool.clone(), ring(OLD_MASTER, None));
    assert!(matches!(
        vault.deposit_address("acct").await,
        Err(Error::Vault(VaultError::NoDepositSeed))
    ));
    let first = DepositSeed::from_bytes(&[1u8; 64]).unwrap();
    assert!(vault.init_deposit_seed(&first).await.unwrap());
    let second = DepositSeed::from_bytes(&[2u8; 64]).unwrap();
    assert!(!vault.init_deposit_seed(&second).await.unwrap());
    assert_eq!(vault.deposit_seed().await.unwrap().as_bytes(), &[1u8; 64]);
}

#[tokio::test]
async fn the_audit_key_is_made_once_even_by_racing_processes_and_rotates_with_the_rest() {
    let db = TestDb::new().await;
    let vaults: Vec<Arc<KeyVault>> = (0..4)
        .map(|_| Arc::new(KeyVault::new(db.pool.clone(), ring(OLD_MASTER, None))))
        .collect();
    let tasks: Vec<_> = vaults
        .iter()
        .map(|v| {
            let v = v.clone();
            tokio::spawn(async move { v.audit_key().await.unwrap() })
        })
        .collect();
    let mut seeds = Vec::new();
    let mut created = 0;
    for t in tasks {
        let (seed, new) = t.await.unwrap();
        created += usize::from(new);
        seeds.push(*seed);
    }
    assert_eq!(created, 1, "one process made it");
    assert!(
        seeds.iter().all(|s| *s == seeds[0]),
        "all read the same key"
    );
    let rows = vaults[0].list().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].key_ref.as_str(), rows[0].purpose.as_str()),
        ("audit-key", "audit-key")
    );

    let rotating = KeyVault::new(db.pool.clone(), ring(NEW_MASTER, Some(OLD_MASTER)));
    assert_eq!(rotating.rotate().await.unwrap().resealed, 1);
    let new_only = KeyVault::new(db.pool.clone(), ring(NEW_MASTER, None));
    assert_eq!(*new_only.audit_key().await.unwrap().0, seeds[0]);
    assert!(matches!(
        vaults[0].audit_key().await,
        Err(Error::Vault(VaultError::UnknownMasterKey { .. }))
    ));
}

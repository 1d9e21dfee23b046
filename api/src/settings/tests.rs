use std::collections::HashMap;
use std::path::PathBuf;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A settings file with `text`, in a directory of its own.
fn file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trx-settings-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("settings.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_environment_overrides_the_file_which_overrides_the_defaults() {
    let path = file(
        "layers",
        "[redis]\nurl = \"redis://file\"\n[log]\nformat = \"json\"\n",
    );
    let s = Settings::load(Some(&path), &env(&[("REDIS_URL", "redis://env")])).unwrap();
    assert_eq!(s.redis.url, "redis://env");
    assert_eq!(s.log.format, LogFormat::Json);
    assert_eq!(s.data.dir, PathBuf::from("data"));
    assert_eq!(s.database.url, None);
}

#[test]
fn every_flat_file_key_of_before_the_nesting_is_still_accepted() {
    // Each declared flat key, with a value of its type, lands on its nested setting.
    let path = file(
        "flat",
        "database_url = \"postgres://flat\"\ndatabase_pool_size = 7\nredis_url = \"redis://flat\"\n\
         data_dir = \"flatdir\"\nlog_format = \"json\"\nlog_filter = \"debug\"\n\
         master_key = \"m\"\nprevious_master_key = \"p\"\npool_wallet_keys = \"k\"\n\
         tron_node_url = \"http://node\"\ntron_api_key = \"a\"\nusdt_contract = \"u\"\n\
         sim_port = 9001\nsim_block_time_ms = 5\nsim_confirmations = 2\nsim_pool_wallets = 4\n\
         sim_pool_stake_trx = 9\nprices_file = \"prices.toml\"\nhttp_addr = \"127.0.0.1:1\"\n\
         jwt_secret = \"j\"\nready_max_lag_secs = 3\nrate_limit_read = \"1/1\"\n\
         rate_limit_write = \"2/2\"\nallow_ips_bot = \"10.0.0.1\"\nallow_ips_finance = \"10.0.0.2\"\n\
         allow_ips_auditor = \"10.0.0.3\"\nallow_ips_admin = \"10.0.0.4\"\n\
         audit_head_every_events = 11\naudit_head_interval_secs = 12\n",
    );
    let s = Settings::load(Some(&path), &HashMap::new()).unwrap();
    assert_eq!(s.database.url, Some(Secret::new("postgres://flat")));
    assert_eq!(s.database.pool_size.map(|n| n.get()), Some(7));
    assert_eq!(s.redis.url, "redis://flat");
    assert_eq!(s.data.dir, PathBuf::from("flatdir"));
    assert_eq!(s.log.format, LogFormat::Json);
    assert_eq!(s.log.filter, "debug");
    assert_eq!(s.vault.master_key, Some(Secret::new("m")));
    assert_eq!(s.vault.previous_master_key, Some(Secret::new("p")));
    assert_eq!(s.vault.pool_wallet_keys, Some(Secret::new("k")));
    assert_eq!(s.tron.node_url.as_deref(), Some("http://node"));
    assert_eq!(s.tron.api_key, Some(Secret::new("a")));
    assert_eq!(s.tron.usdt_contract.as_deref(), Some("u"));
    assert_eq!(s.simulator.port, 9001);
    assert_eq!(s.simulator.block_time_ms, 5);
    assert_eq!(s.simulator.confirmations, 2);
    assert_eq!(s.simulator.pool_wallets, 4);
    assert_eq!(s.simulator.pool_stake_trx, 9);
    assert_eq!(s.prices.file, Some(PathBuf::from("prices.toml")));
    assert_eq!(s.http.addr, "127.0.0.1:1");
    assert_eq!(s.http.jwt_secret, Some(Secret::new("j")));
    assert_eq!(s.http.ready_max_lag_secs, 3);
    assert_eq!(s.http.rate_limit.read, "1/1");
    assert_eq!(s.http.rate_limit.write, "2/2");
    assert_eq!(s.http.allow_ips.bot.as_deref(), Some("10.0.0.1"));
    assert_eq!(s.http.allow_ips.finance.as_deref(), Some("10.0.0.2"));
    assert_eq!(s.http.allow_ips.auditor.as_deref(), Some("10.0.0.3"));
    assert_eq!(s.http.allow_ips.admin.as_deref(), Some("10.0.0.4"));
    assert_eq!(s.audit.head_every_events.get(), 11);
    assert_eq!(s.audit.head_interval_secs.get(), 12);
    // The test names every declared setting, so a new one must be added here too.
    assert_eq!(Settings::declarations().len(), 29);
}

#[test]
fn a_flat_key_and_its_nested_key_together_are_refused() {
    let path = file("both", "sim_port = 1\n[simulator]\nport = 2\n");
    let err = Settings::load(Some(&path), &HashMap::new()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("sim_port") && text.contains("simulator.port"),
        "{text}"
    );
}

#[test]
fn every_environment_variable_sets_its_setting() {
    let pairs: Vec<(&str, &str)> = vec![
        ("DATABASE_URL", "postgres://env"),
        ("TRX_DATABASE_POOL_SIZE", "5"),
        ("REDIS_URL", "redis://env"),
        ("TRX_DATA_DIR", "envdir"),
        ("TRX_LOG_FORMAT", "json"),
        ("RUST_LOG", "warn"),
        ("TRX_MASTER_KEY", "m"),
        ("TRX_PREVIOUS_MASTER_KEY", "p"),
        ("TRX_POOL_WALLET_KEYS", "k"),
        ("TRON_NODE_URL", "http://node"),
        ("TRON_PRO_API_KEY", "a"),
        ("TRX_USDT_CONTRACT", "u"),
        ("TRX_SIM_PORT", "0"),
        ("TRX_SIM_BLOCK_TIME_MS", "20"),
        ("TRX_SIM_CONFIRMATIONS", "1"),
        ("TRX_SIM_POOL_WALLETS", "2"),
        ("TRX_SIM_POOL_STAKE_TRX", "100"),
        ("TRX_PRICES_FILE", "p.toml"),
        ("TRX_HTTP_ADDR", "[::1]:8081"),
        ("TRX_JWT_SECRET", "12345678901234567890123456789012345"),
        ("TRX_READY_MAX_LAG_SECS", "9"),
        ("TRX_RATE_LIMIT_READ", "7/0.5"),
        ("TRX_RATE_LIMIT_WRITE", "8/1"),
        ("TRX_ALLOW_IPS_BOT", "10.0.0.0/8"),
        ("TRX_ALLOW_IPS_FINANCE", "192.0.2.1"),
        ("TRX_ALLOW_IPS_AUDITOR", "::1"),
        ("TRX_ALLOW_IPS_ADMIN", "10.1.0.0/16,10.2.0.1"),
        ("TRX_AUDIT_HEAD_EVERY_EVENTS", "100"),
        ("TRX_AUDIT_HEAD_INTERVAL_SECS", "5"),
    ];
    let declared: Vec<&str> = Settings::declarations().iter().map(|d| d.env).collect();
    let named: Vec<&str> = pairs.iter().map(|(n, _)| *n).collect();
    assert_eq!(named, declared, "this test names every variable, in order");
    let s = Settings::load(None, &env(&pairs)).unwrap();
    assert_eq!(s.database.url, Some(Secret::new("postgres://env")));
    assert_eq!(s.database.pool_size.map(|n| n.get()), Some(5));
    assert_eq!(s.redis.url, "redis://env");
    assert_eq!(s.data.dir, PathBuf::from("envdir"));
    assert_eq!(s.log.format, LogFormat::Json);
    assert_eq!(s.log.filter, "warn");
    assert_eq!(s.vault.master_key, Some(Secret::new("m")));
    assert_eq!(s.vault.previous_master_key, Some(Secret::new("p")));
    assert_eq!(s.vault.pool_wallet_keys, Some(Secret::new("k")));
    assert_eq!(s.tron.node_url.as_deref(), Some("http://node"));
    assert_eq!(s.tron.api_key, Some(Secret::new("a")));
    assert_eq!(s.tron.usdt_contract.as_deref(), Some("u"));
    assert_eq!(s.simulator.port, 0);
    assert_eq!(s.simulator.block_time_ms, 20);
    assert_eq!(s.simulator.confirmations, 1);
    assert_eq!(s.simulator.pool_wallets, 2);
    assert_eq!(s.simulator.pool_stake_trx, 100);
    assert_eq!(s.prices.file, Some(PathBuf::from("p.toml")));
    // Strings that look like other things stay the strings they are.
    assert_eq!(s.http.addr, "[::1]:8081");
    assert_eq!(
        s.http.jwt_secret,
        Some(Secret::new("12345678901234567890123456789012345"))
    );
    assert_eq!(s.http.ready_max_lag_secs, 9);
    assert_eq!(s.http.rate_limit.read, "7/0.5");
    assert_eq!(s.http.rate_limit.write, "8/1");
    assert_eq!(s.http.allow_ips.bot.as_deref(), Some("10.0.0.0/8"));
    assert_eq!(s.http.allow_ips.finance.as_deref(), Some("192.0.2.1"));
    assert_eq!(s.http.allow_ips.auditor.as_deref(), Some("::1"));
    assert_eq!(
        s.http.allow_ips.admin.as_deref(),
        Some("10.1.0.0/16,10.2.0.1")
    );
    let policy = s.audit_head_policy();
    assert_eq!(policy.every_events, 100);
    assert_eq!(policy.interval, std::time::Duration::from_secs(5));
}

#[test]
fn an_empty_variable_counts_as_unset() {
    let s = Settings::load(None, &env(&[("TRX_SIM_PORT", ""), ("DATABASE_URL", "")])).unwrap();
    assert_eq!(s.simulator.port, 8090);
    assert_eq!(s.database.url, None);
}

#[test]
fn a_bad_value_names_the_variable() {
    for (name, bad) in [
        ("TRX_DATABASE_POOL_SIZE", "0"),
        ("TRX_DATABASE_POOL_SIZE", "many"),
        ("TRX_LOG_FORMAT", "xml"),
        ("TRX_SIM_PORT", "70000"),
        ("TRX_SIM_BLOCK_TIME_MS", "-1"),
        ("TRX_READY_MAX_LAG_SECS", "soon"),
        ("TRX_AUDIT_HEAD_EVERY_EVENTS", "0"),
        ("TRX_AUDIT_HEAD_INTERVAL_SECS", "soon"),
    ] {
        let err = Settings::load(None, &env(&[(name, bad)])).unwrap_err();
        assert!(err.to_string().contains(name), "{name}={bad}: {err}");
    }
}

#[test]
fn a_bad_value_in_the_file_names_the_file_and_the_key() {
    let path = file("bad", "[simulator]\nport = \"eighty\"\n");
    let err = Settings::load(Some(&path), &HashMap::new()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("simulator.port"), "{text}");
    assert!(text.contains("settings.toml"), "{text}");
}

#[test]
fn an_unknown_key_in_the_file_is_an_error_naming_it() {
    for (name, text) in [
        ("unknown-top", "redis_uri = \"x\"\n"),
        ("unknown-nested", "[redis]\nuri = \"x\"\n"),
    ] {
        let path = file(name, text);
        let err = Settings::load(Some(&path), &HashMap::new()).unwrap_err();
        assert!(err.to_string().contains("uri"), "{err}");
    }
}

#[test]
fn the_secrets_come_from_the_environment_and_are_never_printed() {
    let current = "ab".repeat(32);
    let previous = "cd".repeat(32);
    let s = Settings::load(
        None,
        &env(&[
            ("TRX_MASTER_KEY", &current),
            ("TRX_PREVIOUS_MASTER_KEY", &previous),
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
            ("TRX_JWT_SECRET", "jwt-secret-jwt-secret-jwt-secret-42"),
            ("TRX_POOL_WALLET_KEYS", "feedbeef"),
            ("TRON_PRO_API_KEY", "api-key-9"),
        ]),
    )
    .unwrap();
    assert_eq!(
        s.vault.master_key.as_ref().map(Secret::expose),
        Some(current.as_str())
    );
    assert_eq!(
        s.vault.previous_master_key.as_ref().map(Secret::expose),
        Some(previous.as_str())
    );
    for shown in [
        format!("{s:?}"),
        format!("{s:#?}"),
        toml::to_string(&s).unwrap(),
    ] {
        for secret in [
            current.as_str(),
            previous.as_str(),
            "hunter2",
            "jwt-secret",
            "feedbeef",
            "api-key-9",
        ] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
    }
}

#[test]
fn every_setting_has_a_distinct_variable_and_a_doc() {
    let all = Settings::declarations();
    let mut names: Vec<&str> = all.iter().map(|d| d.env).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "a variable declared twice");
    for d in &all {
        assert!(!d.doc.trim().is_empty(), "{} has no doc", d.key);
    }
}

#[test]
fn the_readme_lists_every_setting_as_declared() {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
    let begin = "<!-- settings table: made from api/src/settings, checked by a test -->\n";
    let end = "<!-- end of settings table -->";
    let start = readme
        .find(begin)
        .expect("the README marks its settings table")
        + begin.len();
    let stop = start + readme[start..].find(end).expect("the table's end marker");
    let expected = markdown_table();
    assert!(
        readme[start..stop] == expected,
        "the README's settings table is not the declared one; replace it with:\n{expected}"
    );
}

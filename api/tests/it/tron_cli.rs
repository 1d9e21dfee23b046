//! `trx-energy tron …`: the exact forms operators use, through the real binary, and bad input
//! both through `run` and through the binary (clear reason, exit code 1, never a panic, never a
//! key echoed); the commands run without settings.

use std::io::Write;
use std::process::{Command, Stdio};

use api::cli::tron::{run, TronCommand};
use serde_json::Value;
use tron_adapter::signing::sign_digest;
use tron_adapter::tx::RawData;
use tron_adapter::PrivateKey;

const BIN: &str = env!("CARGO_BIN_EXE_trx-energy");

fn vectors(name: &str) -> Value {
    let path = format!("{}/../vectors/tron/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs the binary with `args` and `stdin`; returns (exit code, stdout, stderr).
fn trx(args: &[&str], stdin: &str) -> (i32, String, String) {
    trx_with_env(args, &[], stdin)
}

/// As [`trx`], with `env` set on top.
fn trx_with_env(args: &[&str], env: &[(&str, &str)], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("TRX_MASTER_KEY")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Runs `run` in-process; returns (exit code, stdout, stderr).
fn run_here(command: TronCommand, stdin: &str) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(command, &mut stdin.as_bytes(), &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn address_prints_base58_a_space_and_hex_for_every_published_key() {
    for v in vectors("keys_addresses.json")["vectors"]
        .as_array()
        .unwrap()
    {
        let (code, out, _) = trx(&["tron", "address", v["private_key"].as_str().unwrap()], "");
        assert_eq!(code, 0);
        assert_eq!(
            out.trim_end(),
            format!(
                "{} {}",
                v["base58"].as_str().unwrap(),
                v["derived_hex"].as_str().unwrap()
            )
        );
    }
}

#[test]
fn check_address_prints_hex_for_valid_addresses_and_exits_1_with_a_reason_otherwise() {
    let file = vectors("base58check.json");
    for v in file["valid"].as_array().unwrap() {
        let (code, out, _) = trx(
            &["tron", "check-address", v["base58"].as_str().unwrap()],
            "",
        );
        assert_eq!(code, 0);
        let expected = v["derived_classification"]
            .as_str()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap();
        assert_eq!(out.trim_end(), expected);
    }
    let (code, out, _) = trx(
        &[
            "tron",
            "check-address",
            "4165cfbd57fa4f20687b2c33f84c4f9017e5895d49",
        ],
        "",
    );
    assert_eq!(
        (code, out.trim_end()),
        (0, "4165cfbd57fa4f20687b2c33f84c4f9017e5895d49")
    );
    for v in file["invalid"].as_array().unwrap() {
        let input = v["input"].as_str().unwrap();
        let (code, out, err) = trx(&["tron", "check-address", input], "");
        assert_eq!(code, 1, "{input}");
        assert!(out.is_empty());
        assert!(err.contains("is not a TRON address"), "{err}");
    }
}

#[test]
fn decode_prints_the_txid_and_the_node_json_of_a_published_delegation() {
    let v = &vectors("delegate_resource.json")["vectors"][0];
    let (code, out, _) = trx(&["tron", "decode", v["raw_data_hex"].as_str().unwrap()], "");
    assert_eq!(code, 0);
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["txID"], v["txID_as_published"]);
    assert_eq!(printed["raw_data"], v["raw_data_json"]);
}

#[test]
fn encode_reads_raw_data_or_a_whole_node_transaction_and_prints_raw_data_hex() {
    let v = &vectors("delegate_resource.json")["vectors"][0];
    let raw_hex = v["raw_data_hex"].as_str().unwrap();
    let (code, out, _) = trx(&["tron", "encode"], &v["raw_data_json"].to_string());
    assert_eq!((code, out.trim_end()), (0, raw_hex));
    let node_tx = serde_json::json!({
        "visible": false,
        "txID": v["txID_as_published"],
        "raw_data": v["raw_data_json"],
        "raw_data_hex": raw_hex,
    });
    let (code, out, _) = trx(&["tron", "encode"], &node_tx.to_string());
    assert_eq!((code, out.trim_end()), (0, raw_hex));
    let offline = &vectors("transactions.json")["offline_built_from_json"][0];
    let (code, out, _) = trx(&["tron", "encode"], &offline["raw_data"].to_string());
    assert_eq!(code, 0);
    assert_eq!(out.trim_end(), offline["derived_raw_data_hex"]);
}

#[test]
fn encode_refuses_a_node_transaction_whose_txid_does_not_match_its_raw_data() {
    let v = &vectors("delegate_resource.json")["vectors"][0];
    let node_tx = serde_json::json!({
        "txID": "00".repeat(32),
        "raw_data": v["raw_data_json"],
    });
    let (code, out, err) = trx(&["tron", "encode"], &node_tx.to_string());
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("txID"), "{err}");
}

#[test]
fn sign_prints_the_txid_and_a_130_digit_signature_that_recovers_the_key() {
    let v = &vectors("transactions.json")["signed_or_hashed"][0];
    let key = "279ff36d9bf9f305af3280034bb4187c6dd299bac6b26a3c20b999c7c0d50e6e";
    let raw_hex = v["raw_data_hex"].as_str().unwrap();
    let (code, out, _) = trx(&["tron", "sign", raw_hex, "--key-hex", key], "");
    assert_eq!(code, 0);
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["txID"], v["txID"]);
    let signature = printed["signature"].as_str().unwrap();
    assert_eq!(signature.len(), 130);
    let txid: [u8; 32] = hex::decode(v["txID"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let signer = tron_adapter::Signature::from_hex(signature)
        .unwrap()
        .recover_address(&txid)
        .unwrap();
    assert_eq!(signer.to_base58(), "TPX6HK2NRN4XKRX1JAhbC827bm7gMmy5w1");
    let (_, again, _) = trx(&["tron", "sign", raw_hex, "--key-hex", key], "");
    assert_eq!(again, out, "RFC6979 signatures are deterministic");
}

/// No published signature covers sha256 of a raw transaction under a published key (the RFC6979
/// vectors sign TIP-191 message hashes), so the expected signature comes from `sign_digest`, after
/// `sign_digest` has reproduced every published RFC6979 signature byte for byte. The printed bytes
/// themselves are checked for low s and v = 0/1 (parsing them as a `Signature` would normalise
/// both).
#[test]
fn sign_prints_exactly_the_rfc6979_low_s_signature_with_v_0_or_1() {
    for m in vectors("signing_rfc6979.json")["message_signing"]
        .as_array()
        .unwrap()
    {
        let key = PrivateKey::from_hex(m["privateKey"].as_str().unwrap()).unwrap();
        let digest: [u8; 32] = hex::decode(m["messageHash"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(
            sign_digest(&key, &digest).to_hex_v27(),
            m["signature_r_s_v27"].as_str().unwrap()
        );
    }

    // n/2 of secp256k1 (SEC 2): a signature is low-s when s <= n/2.
    let half_order =
        hex::decode("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0").unwrap();
    let key_hex = vectors("keys_addresses.json")["vectors"][0]["private_key"]
        .as_str()
        .unwrap()
        .to_string();
    let key = PrivateKey::from_hex(&key_hex).unwrap();
    let mut checked = 0;
    for v in vectors("transactions.json")["signed_or_hashed"]
        .as_array()
        .unwrap()
    {
        let raw_hex = v["raw_data_hex"].as_str().unwrap();
        let (code, out, err) = trx(&["tron", "sign", raw_hex, "--key-hex", &key_hex], "");
        assert_eq!(code, 0, "{err}");
        let printed: Value = serde_json::from_str(&out).unwrap();
        let txid = RawData::decode_hex(raw_hex).unwrap().txid();
        assert_eq!(printed["txID"], txid.to_hex());
        let signature = printed["signature"].as_str().unwrap();
        assert_eq!(signature, sign_digest(&key, &txid.0).to_hex());

        let bytes = hex::decode(signature).unwrap();
        assert_eq!(bytes.len(), 65);
        let (r, s, v) = (&bytes[..32], &bytes[32..64], bytes[64]);
        assert!(r.iter().any(|b| *b != 0) && s.iter().any(|b| *b != 0));
        assert!(s <= half_order.as_slice(), "high s: {signature}");
        assert!(v == 0 || v == 1, "v = {v}");
        checked += 1;
    }
    assert_eq!(checked, 4);
}

/// A raw transaction as hex, after `change` (a contract more, a negative time, …).
fn changed_raw_hex(raw_hex: &str, change: impl FnOnce(&mut RawData)) -> String {
    let mut raw = RawData::decode_hex(raw_hex).unwrap();
    change(&mut raw);
    hex::encode(raw.encode())
}

/// Every bad input: (command, standard input, what the reason must mention).
fn bad_input_cases() -> Vec<(TronCommand, String, &'static str)> {
    let zero = "00".repeat(32);
    let order = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
    let key = vectors("keys_addresses.json")["vectors"][0]["private_key"]
        .as_str()
        .unwrap()
        .to_string();
    let good_raw = vectors("transactions.json")["signed_or_hashed"][0]["raw_data_hex"]
        .as_str()
        .unwrap()
        .to_string();
    let two_contracts = changed_raw_hex(&good_raw, |raw| {
        let again = raw.contracts[0].clone();
        raw.contracts.push(again);
    });
    let negative_expiration = changed_raw_hex(&good_raw, |raw| raw.expiration = -1);
    let negative_timestamp = changed_raw_hex(&good_raw, |raw| raw.timestamp = -5);
    let raw_json = vectors("delegate_resource.json")["vectors"][0]["raw_data_json"].clone();
    let json_with = |field: &str, value: Value| {
        let mut json = raw_json.clone();
        json[field] = value;
        json.to_string()
    };
    let decode = |raw_data_hex: &str| TronCommand::Decode {
        raw_data_hex: raw_data_hex.into(),
    };
    let sign = |raw_data_hex: &str, key_hex: &str| TronCommand::Sign {
        raw_data_hex: raw_data_hex.into(),
        key_hex: key_hex.into(),
    };
    let address = |private_key_hex: &str| TronCommand::Address {
        private_key_hex: private_key_hex.into(),
    };
    let none = String::new;
    vec![
        (address("abc"), none(), "not hex"),
        (address(&"ab".repeat(31)), none(), "32 bytes"),
        (address(&zero), none(), "group order"),
        (address(order), none(), "group order"),
        (
            TronCommand::CheckAddress {
                address: String::new(),
            },
            none(),
            "empty",
        ),
        (
            TronCommand::CheckAddress {
                address: key.clone(),
            },
            none(),
            "perhaps a private key",
        ),
        (
            TronCommand::CheckAddress {
                address: format!("0X{}", key.to_uppercase()),
            },
            none(),
            "perhaps a private key",
        ),
        (decode("0a0"), none(), "odd number"),
        (decode("0x0g"), none(), "not a hex digit"),
        (decode("zz"), none(), "not a hex digit"),
        (decode("ffffffff"), none(), "not valid protobuf"),
        (
            decode(&format!("40{}01", "ff".repeat(10))),
            none(),
            "not valid protobuf",
        ),
        (
            decode(&good_raw[..good_raw.len() - 6]),
            none(),
            "not valid protobuf",
        ),
        (decode(&format!("{good_raw}1001")), none(), "canonical"),
        (decode(""), none(), "raw_data_hex is empty"),
        (decode("0a020000"), none(), "has 0 contracts"),
        (decode(&two_contracts), none(), "has 2 contracts"),
        (decode(&negative_expiration), none(), "expiration is -1"),
        (decode(&negative_timestamp), none(), "timestamp is -5"),
        (TronCommand::Encode, "not json".into(), "not JSON"),
        (TronCommand::Encode, "[1]".into(), "expected a JSON object"),
        (
            TronCommand::Encode,
            r#"{"contract": [{"type": "X"}]}"#.into(),
            "parameter",
        ),
        (TronCommand::Encode, "{}".into(), "has 0 contracts"),
        (
            TronCommand::Encode,
            r#"{"raw_data": {}}"#.into(),
            "has 0 contracts",
        ),
        (
            TronCommand::Encode,
            json_with("expiration", (-1).into()),
            "expiration is -1",
        ),
        (
            TronCommand::Encode,
            json_with("timestamp", (-1_671_098_459_216_i64).into()),
            "timestamp is -1671098459216",
        ),
        (
            TronCommand::Encode,
            json_with("fee_limit", (-1).into()),
            "fee_limit is -1",
        ),
        (sign(&good_raw, &zero), none(), "group order"),
        (sign("zz", &"11".repeat(32)), none(), "not a hex digit"),
        (sign("0a00", "00"), none(), "32 bytes"),
        (sign("", &"11".repeat(32)), none(), "raw_data_hex is empty"),
        (sign(&two_contracts, &key), none(), "has 2 contracts"),
        (sign(&negative_timestamp, &key), none(), "timestamp is -5"),
    ]
}

/// The command line that runs `command`.
fn args_of(command: &TronCommand) -> Vec<String> {
    let words: Vec<&str> = match command {
        TronCommand::Address { private_key_hex } => vec!["address", private_key_hex],
        TronCommand::CheckAddress { address } => vec!["check-address", address],
        TronCommand::Decode { raw_data_hex } => vec!["decode", raw_data_hex],
        TronCommand::Encode => vec!["encode"],
        TronCommand::Sign {
            raw_data_hex,
            key_hex,
        } => vec!["sign", raw_data_hex, "--key-hex", key_hex],
    };
    std::iter::once("tron")
        .chain(words)
        .map(str::to_string)
        .collect()
}

/// The key-like text of a command, which no error may repeat (its first 16 digits are enough to
/// tell): the private key of `address` and `sign`, and `check-address` input of a key's length.
fn key_text_of(command: &TronCommand) -> Option<String> {
    let text = match command {
        TronCommand::Address { private_key_hex } => private_key_hex,
        TronCommand::Sign { key_hex, .. } => key_hex,
        TronCommand::CheckAddress { address } if address.len() >= 64 => address,
        _ => return None,
    };
    let digits = text.trim_start_matches("0x").trim_start_matches("0X");
    (digits.len() >= 16).then(|| digits[..16].to_lowercase())
}

/// What every refusal must look like: exit code 1, nothing on standard output, standard error
/// starting with `error: ` and giving the reason, no panic, no key.
fn assert_refused(
    how: &str,
    (code, out, err): (i32, String, String),
    reason: &str,
    key: Option<&str>,
) {
    assert_eq!(code, 1, "{how}: {err}");
    assert!(out.is_empty(), "{how}: printed {out:?}");
    assert!(err.starts_with("error: "), "{how}: {err:?}");
    assert!(
        err.contains(reason),
        "{how}: {err:?} should mention {reason:?}"
    );
    assert!(!err.contains("panicked"), "{how}: {err}");
    if let Some(key) = key {
        assert!(
            !err.to_lowercase().contains(key),
            "{how}: the key is echoed"
        );
    }
}

#[test]
fn bad_input_exits_1_with_a_reason_and_never_echoes_a_key() {
    for (command, stdin, reason) in bad_input_cases() {
        let how = format!("{:?}", args_of(&command));
        let key = key_text_of(&command);
        let (code, out, err) = run_here(command, &stdin);
        assert_refused(&how, (i32::from(code), out, err), reason, key.as_deref());
    }
}

#[test]
fn every_bad_input_exits_1_through_the_binary_too_not_101() {
    for (command, stdin, reason) in bad_input_cases() {
        let args = args_of(&command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let key = key_text_of(&command);
        assert_refused(
            &format!("{args:?}"),
            trx(&args, &stdin),
            reason,
            key.as_deref(),
        );
    }
}

/// `tron …` must run where no settings are usable; the same settings stop a command that reads
/// them (exit code 2), so they really are broken.
#[test]
fn tron_commands_need_no_settings_and_ignore_broken_ones() {
    let v = &vectors("keys_addresses.json")["vectors"][0];
    let key = v["private_key"].as_str().unwrap();
    let expected = format!(
        "{} {}",
        v["base58"].as_str().unwrap(),
        v["derived_hex"].as_str().unwrap()
    );
    let missing = format!("{}/no-such-settings.toml", env!("CARGO_TARGET_TMPDIR"));
    let missing = Some(missing.as_str());
    for (config, pool_size) in [(missing, None), (None, Some("abc")), (missing, Some("abc"))] {
        let flags: Vec<&str> = config.into_iter().flat_map(|c| ["--config", c]).collect();
        let env: Vec<(&str, &str)> = pool_size
            .map(|n| ("TRX_DATABASE_POOL_SIZE", n))
            .into_iter()
            .collect();
        let env = env.as_slice();
        let status: Vec<&str> = flags.iter().copied().chain(["status"]).collect();
        let (code, out, err) = trx_with_env(&status, env, "");
        assert_eq!(
            code, 2,
            "{flags:?} {env:?} should break `status`: {out}{err}"
        );
        assert!(err.starts_with("error: "), "{err}");

        let address: Vec<&str> = flags
            .iter()
            .copied()
            .chain(["tron", "address", key])
            .collect();
        let (code, out, err) = trx_with_env(&address, env, "");
        assert_eq!((code, err.as_str()), (0, ""), "{flags:?} {env:?}");
        assert_eq!(out.trim_end(), expected);
    }
}

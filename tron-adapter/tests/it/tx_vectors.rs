//! The published transactions in vectors/tron/: txIDs, decode-then-encode, node JSON to bytes,
//! signer recovery, local building, signed-transaction bytes, and refusals of bad input.

use serde_json::Value;
use tron_adapter::tx::{
    self, json, ContractCall, DelegateResource, RawData, RefBlock, Resource, SignedTransaction,
    Transfer, TriggerSmart, TxContract, TxError, TxParams,
};
use tron_adapter::{trc20, PrivateKey, Signature, TronAddress};

fn load(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn transactions() -> Value {
    load(include_str!("../../../vectors/tron/transactions.json"))
}

fn delegations() -> Value {
    load(include_str!("../../../vectors/tron/delegate_resource.json"))
}

/// Every signed or hashed vector: (name, raw_data_hex, published or derived txID, signatures,
/// recovered signers, decoded raw_data).
fn signed_vectors() -> Vec<Value> {
    let mut all: Vec<Value> = transactions()["signed_or_hashed"]
        .as_array()
        .unwrap()
        .clone();
    all.extend(delegations()["vectors"].as_array().unwrap().iter().cloned());
    all
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {}", v["name"]))
}

fn published_txid(v: &Value) -> &str {
    v.get("txID")
        .or_else(|| v.get("txID_as_published"))
        .or_else(|| v.get("derived_txID"))
        .or_else(|| v.get("derived_txID_sha256_raw_data"))
        .and_then(Value::as_str)
        .unwrap()
}

#[test]
fn every_vector_txid_is_sha256_of_its_raw_data_bytes() {
    let vectors = signed_vectors();
    assert_eq!(vectors.len(), 7);
    for v in &vectors {
        let raw = RawData::decode_hex(str_of(v, "raw_data_hex")).unwrap();
        assert_eq!(raw.txid().to_hex(), published_txid(v), "{}", v["name"]);
    }
}

#[test]
fn decoding_then_encoding_every_vector_gives_back_the_same_bytes() {
    for v in signed_vectors() {
        let hex_in = str_of(&v, "raw_data_hex");
        let raw = RawData::decode_hex(hex_in).unwrap();
        assert_eq!(hex::encode(raw.encode()), hex_in, "{}", v["name"]);
    }
}

#[test]
fn decoded_vectors_match_the_published_decoded_fields() {
    for v in signed_vectors() {
        let raw = RawData::decode_hex(str_of(&v, "raw_data_hex")).unwrap();
        let expected = &v["derived_decoded_raw_data"];
        assert_eq!(
            hex::encode(&raw.ref_block_bytes),
            expected["ref_block_bytes"]
        );
        assert_eq!(hex::encode(&raw.ref_block_hash), expected["ref_block_hash"]);
        assert_eq!(Some(raw.expiration), expected["expiration"].as_i64());
        assert_eq!(Some(raw.timestamp), expected["timestamp"].as_i64());
        if let Some(memo) = expected.get("data") {
            assert_eq!(hex::encode(&raw.data), *memo);
        }
        let contract = &expected["contract"][0];
        let node = serde_json::to_value(json::to_node_json(&raw)).unwrap();
        let ours = &node["contract"][0];
        assert_eq!(ours["type"], contract["type"], "{}", v["name"]);
        assert_eq!(ours["parameter"]["type_url"], contract["type_url"]);
        for (field, value) in contract["value"].as_object().unwrap() {
            let mine = &ours["parameter"]["value"][field];
            match (field.as_str(), value) {
                ("lock", Value::Number(n)) => assert_eq!(mine, &Value::Bool(n.as_i64() == Some(1))),
                ("resource", Value::Number(n)) => {
                    assert_eq!(n.as_i64(), Some(1));
                    assert_eq!(mine, "ENERGY");
                }
                _ => assert_eq!(mine, value, "{} {field}", v["name"]),
            }
        }
    }
}

#[test]
fn every_published_signature_recovers_the_published_signer() {
    let mut checked = 0;
    for v in signed_vectors() {
        let Some(signers) = v.get("derived_recovered_signers") else {
            continue;
        };
        let raw = RawData::decode_hex(str_of(&v, "raw_data_hex")).unwrap();
        for (sig, signer) in v["signature"]
            .as_array()
            .unwrap()
            .iter()
            .zip(signers.as_array().unwrap())
        {
            let sig = Signature::from_hex(sig.as_str().unwrap()).unwrap();
            let address = sig.recover_address(&raw.txid().0).unwrap();
            assert_eq!(address.to_hex(), signer["hex"], "{}", v["name"]);
            assert_eq!(address.to_base58(), signer["base58"]);
            if v.get("derived_signer_is_owner") == Some(&Value::Bool(true)) {
                assert_eq!(raw.contracts[0].call.owner(), Some(address));
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}

#[test]
fn published_signed_transaction_bytes_decode_and_reencode_exactly() {
    let mut checked = 0;
    for v in transactions()["signed_or_hashed"].as_array().unwrap() {
        let Some(signed) = v
            .get("signed_transaction_hex")
            .or_else(|| v.get("signed_transaction_hex_as_printed"))
        else {
            continue;
        };
        let bytes = hex::decode(signed.as_str().unwrap()).unwrap();
        let tx = SignedTransaction::decode(&bytes).unwrap();
        assert_eq!(tx.encode(), bytes);
        assert_eq!(hex::encode(tx.raw.encode()), str_of(v, "raw_data_hex"));
        assert_eq!(tx.signatures[0].to_hex(), v["signature"][0]);
        assert_eq!(
            tx.signers().unwrap()[0].to_hex(),
            v["derived_recovered_signers"][0]["hex"]
        );
        checked += 1;
    }
    assert_eq!(checked, 2);
}

/// wallet-cli printed the raw data before it reset the expiration and signed (the vector's note):
/// those bytes decode and re-encode exactly too, and differ from the signed raw data in the
/// expiration alone, the one the note names.
#[test]
fn the_raw_data_wallet_cli_printed_before_resetting_the_expiration_reencodes_exactly() {
    let txs = transactions();
    let entries: Vec<&Value> = txs["signed_or_hashed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| {
            v.get("unsigned_raw_data_hex_before_wallet_cli_reset_expiration")
                .is_some()
        })
        .collect();
    assert_eq!(entries.len(), 1);
    let v = entries[0];
    let before_hex = str_of(
        v,
        "unsigned_raw_data_hex_before_wallet_cli_reset_expiration",
    );
    let before = RawData::decode_hex(before_hex).unwrap();
    assert_eq!(hex::encode(before.encode()), before_hex);

    let signed = RawData::decode_hex(str_of(v, "raw_data_hex")).unwrap();
    assert_ne!(before.expiration, signed.expiration);
    assert!(str_of(v, "note").contains(&format!("{} -> {}", before.expiration, signed.expiration)));
    assert_ne!(before.txid().to_hex(), published_txid(v));
    let mut reset = before.clone();
    reset.expiration = signed.expiration;
    assert_eq!(reset, signed);
    assert_eq!(reset.txid().to_hex(), published_txid(v));
}

/// Node JSON (visible=false, and the visible=true ones with base58 addresses) encodes to the
/// bytes whose sha256 is the published txID.
#[test]
fn node_json_encodes_to_the_published_txid() {
    let txs = transactions();
    let del = delegations();
    let offline = &txs["offline_built_from_json"][0];
    let getting_started = &txs["signed_or_hashed"][2];
    let cases: Vec<(&Value, &str, Option<&str>)> = vec![
        (
            &offline["raw_data"],
            str_of(offline, "txID"),
            Some(str_of(offline, "derived_raw_data_hex")),
        ),
        (
            &getting_started["raw_data_visible_true"],
            str_of(getting_started, "txID"),
            Some(str_of(getting_started, "raw_data_hex")),
        ),
        (
            &del["vectors"][0]["raw_data_json"],
            str_of(&del["vectors"][0], "txID_as_published"),
            Some(str_of(&del["vectors"][0], "raw_data_hex")),
        ),
        (
            &del["vectors"][2]["raw_data_json_visible"],
            str_of(&del["vectors"][2], "derived_txID"),
            Some(str_of(&del["vectors"][2], "raw_data_hex")),
        ),
    ];
    for (json_value, txid, raw_hex) in cases {
        let raw = json::from_node_json(json_value).unwrap();
        assert_eq!(raw.txid().to_hex(), txid);
        if let Some(raw_hex) = raw_hex {
            assert_eq!(hex::encode(raw.encode()), raw_hex);
        }
    }
}

#[test]
fn our_json_of_the_published_delegation_equals_the_nodes_json() {
    let v = &delegations()["vectors"][0];
    let raw = RawData::decode_hex(str_of(v, "raw_data_hex")).unwrap();
    let ours = serde_json::to_value(json::to_node_json(&raw)).unwrap();
    assert_eq!(ours, v["raw_data_json"]);
    let getting_started = &transactions()["offline_built_from_json"][0];
    let raw = json::from_node_json(&getting_started["raw_data"]).unwrap();
    assert_eq!(
        serde_json::to_value(json::to_node_json(&raw)).unwrap(),
        getting_started["raw_data"]
    );
}

#[test]
fn a_transaction_object_is_accepted_and_its_claimed_txid_is_checked() {
    let v = &delegations()["vectors"][0];
    let wrapper = serde_json::json!({
        "visible": false,
        "txID": v["txID_as_published"],
        "raw_data": v["raw_data_json"],
        "raw_data_hex": v["raw_data_hex"],
    });
    let input = json::parse_node_json(&wrapper).unwrap();
    input.check_claims().unwrap();
    let mut lying = wrapper.clone();
    lying["raw_data"]["expiration"] = Value::from(1671120059227_i64);
    let input = json::parse_node_json(&lying).unwrap();
    let err = input.check_claims().unwrap_err();
    assert!(err.to_string().contains("raw_data_hex"), "{err}");
    lying.as_object_mut().unwrap().remove("raw_data_hex");
    let err = json::parse_node_json(&lying)
        .unwrap()
        .check_claims()
        .unwrap_err();
    assert!(err.to_string().contains("txID"), "{err}");
}

#[test]
fn building_locally_from_the_reference_block_reproduces_the_offline_vector() {
    let v = &transactions()["offline_built_from_json"][0];
    let value = &v["raw_data"]["contract"][0]["parameter"]["value"];
    let addr = |k: &str| TronAddress::parse(value[k].as_str().unwrap()).unwrap();
    let call = ContractCall::Transfer(Transfer {
        owner: addr("owner_address"),
        to: addr("to_address"),
        amount: 1,
    });
    let ref_block = RefBlock::from_block_id_hex(str_of(v, "ref_block_id")).unwrap();
    let timestamp = v["raw_data"]["timestamp"].as_i64().unwrap();
    let params = TxParams::new(ref_block, timestamp);
    assert_eq!(
        Some(params.expiration),
        v["raw_data"]["expiration"].as_i64()
    );
    let raw = tx::build(TxContract::new(call), &params).unwrap();
    assert_eq!(hex::encode(raw.encode()), str_of(v, "derived_raw_data_hex"));
    assert_eq!(raw.txid().to_hex(), str_of(v, "txID"));
}

#[test]
fn a_node_built_transaction_is_accepted_only_when_it_asks_for_what_we_meant() {
    let v = &delegations()["vectors"][2];
    let raw_hex = str_of(v, "raw_data_hex");
    let meant = RawData::decode_hex(raw_hex).unwrap().contracts[0].clone();
    assert!(tx::verify_node_built(raw_hex, &meant, 0).is_ok());
    let mut other = meant.clone();
    if let ContractCall::DelegateResource(d) = &mut other.call {
        d.balance += 1;
    }
    assert!(matches!(
        tx::verify_node_built(raw_hex, &other, 0),
        Err(TxError::NodeMismatch(_))
    ));
    let mut other_permission = meant;
    other_permission.permission_id = 2;
    assert!(tx::verify_node_built(raw_hex, &other_permission, 0).is_err());
}

#[test]
fn a_locally_built_and_signed_delegation_names_its_owner_as_signer() {
    let key =
        PrivateKey::from_hex("279ff36d9bf9f305af3280034bb4187c6dd299bac6b26a3c20b999c7c0d50e6e")
            .unwrap();
    let receiver = TronAddress::parse("TFVfhkyJAULWQbHMgVfgbkmgeGBkHo5zru").unwrap();
    let call = ContractCall::DelegateResource(DelegateResource {
        owner: key.address(),
        resource: Resource::Energy,
        balance: 5_890_000_000,
        receiver,
        lock: false,
        lock_period: 0,
    });
    let mut contract = TxContract::new(call);
    contract.permission_id = 3;
    let params = TxParams::new(
        RefBlock {
            bytes: [0x64, 0x31],
            hash: [7; 8],
        },
        1_751_466_432_131,
    );
    let raw = tx::build(contract, &params).unwrap();
    let signed = SignedTransaction::sign(raw.clone(), &key);
    assert_eq!(signed.signers().unwrap(), vec![key.address()]);
    let back = SignedTransaction::decode(&signed.encode()).unwrap();
    assert_eq!(back, signed);
    assert_eq!(back.raw.contracts[0].permission_id, 3);
    let node = serde_json::to_value(json::to_node_json(&raw)).unwrap();
    assert_eq!(node["contract"][0]["Permission_id"], 3);
    assert_eq!(
        node["contract"][0]["parameter"]["value"]["resource"],
        "ENERGY"
    );
    assert!(node["contract"][0]["parameter"]["value"]
        .get("lock")
        .is_none());
    assert_eq!(json::from_node_json(&node).unwrap(), raw);
}

#[test]
fn a_trc20_transfer_call_is_built_with_a_fee_limit_and_reads_back() {
    let owner = TronAddress::parse("TPX6HK2NRN4XKRX1JAhbC827bm7gMmy5w1").unwrap();
    let usdt = TronAddress::parse("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t").unwrap();
    let to = TronAddress::parse("TXVj38D1XR3TPgSHTCZGC8wkLDAGqF1oqx").unwrap();
    let call = ContractCall::TriggerSmart(TriggerSmart {
        owner,
        contract: usdt,
        call_value: 0,
        data: trc20::transfer_calldata(&to, 1_000_000),
        call_token_value: 0,
        token_id: 0,
    });
    let mut params = TxParams::new(
        RefBlock {
            bytes: [1, 2],
            hash: [3; 8],
        },
        1_700_000_000_000,
    );
    params.fee_limit = 30_000_000;
    let raw = tx::build(TxContract::new(call), &params).unwrap();
    let back = RawData::decode(&raw.encode()).unwrap();
    assert_eq!(back.fee_limit, 30_000_000);
    let ContractCall::TriggerSmart(t) = &back.contracts[0].call else {
        panic!("not a TriggerSmartContract")
    };
    assert_eq!(trc20::parse_transfer_calldata(&t.data).unwrap().to, to);
    let node = serde_json::to_value(json::to_node_json(&back)).unwrap();
    assert_eq!(node["fee_limit"], 30_000_000);
    assert_eq!(node["contract"][0]["type"], "TriggerSmartContract");
}

#[test]
fn an_unknown_contract_type_decodes_to_its_number_and_bytes_and_reencodes() {
    // FreezeBalanceV2Contract (54) and an undefined type 99, with arbitrary value bytes.
    // Type 48 with a type_url that is not its own: found by the fuzzer (JSON reading refused
    // what the binary decoder had accepted).
    for (number, url) in [
        (54, "type.googleapis.com/protocol.FreezeBalanceV2Contract"),
        (99, "x/y"),
        (
            48,
            "type.googleapis.com/protocol.DelegateResour\u{7}\0Contract",
        ),
    ] {
        let raw = RawData {
            ref_block_bytes: vec![1, 2],
            ref_block_hash: vec![9; 8],
            expiration: 2,
            timestamp: 1,
            contracts: vec![TxContract::new(ContractCall::Other(tx::OtherContract {
                type_number: number,
                type_url: url.into(),
                value: vec![0x0a, 0x01, 0xff, 0x10, 0x05],
            }))],
            ..RawData::default()
        };
        let bytes = raw.encode();
        let back = RawData::decode(&bytes).unwrap();
        assert_eq!(back, raw);
        let node = serde_json::to_value(json::to_node_json(&back)).unwrap();
        assert_eq!(node["contract"][0]["parameter"]["value_hex"], "0a01ff1005");
        assert_eq!(json::from_node_json(&node).unwrap(), raw);
    }
}

/// `check_sendable` passes every published transaction and refuses what the node refuses without
/// looking at the chain: no contract, two, and a negative expiration, timestamp or fee limit
/// (each of which still decodes).
#[test]
fn published_transactions_are_sendable_and_empty_double_or_negative_ones_are_not() {
    for v in signed_vectors() {
        let raw = RawData::decode_hex(str_of(&v, "raw_data_hex")).unwrap();
        assert_eq!(raw.check_sendable(), Ok(()), "{}", v["name"]);
    }
    let good = RawData::decode_hex(str_of(&delegations()["vectors"][0], "raw_data_hex")).unwrap();
    let changed = |change: &dyn Fn(&mut RawData)| {
        let mut raw = good.clone();
        change(&mut raw);
        RawData::decode(&raw.encode()).unwrap().check_sendable()
    };
    assert_eq!(
        RawData::decode(&[]).unwrap().check_sendable(),
        Err(TxError::ContractCount(0))
    );
    assert_eq!(
        changed(&|raw| raw.contracts.clear()),
        Err(TxError::ContractCount(0))
    );
    assert_eq!(
        changed(&|raw| raw.contracts.push(raw.contracts[0].clone())),
        Err(TxError::ContractCount(2))
    );
    for (field, set) in [
        (
            "expiration",
            (|raw, v| raw.expiration = v) as fn(&mut RawData, i64),
        ),
        ("timestamp", |raw, v| raw.timestamp = v),
        ("fee_limit", |raw, v| raw.fee_limit = v),
    ] {
        assert_eq!(
            changed(&|raw| set(raw, -1)),
            Err(TxError::Negative { field, value: -1 })
        );
        assert_eq!(
            changed(&|raw| set(raw, 0)),
            Ok(()),
            "{field} = 0 is left out"
        );
        assert_eq!(changed(&|raw| set(raw, i64::MAX)), Ok(()));
    }
}

#[test]
fn garbage_truncated_and_non_canonical_bytes_are_refused_with_a_reason() {
    let good = hex::decode(str_of(
        &transactions()["signed_or_hashed"][0],
        "raw_data_hex",
    ))
    .unwrap();
    for cut in 1..good.len() {
        // Cutting inside a field is malformed; cutting between fields can leave a shorter
        // transaction that is still well-formed, and then it must re-encode exactly.
        if let Ok(raw) = RawData::decode(&good[..cut]) {
            assert_eq!(raw.encode(), &good[..cut]);
        }
    }
    assert!(matches!(
        RawData::decode(&good[..good.len() - 3]),
        Err(TxError::Protobuf { .. })
    ));
    // An 11-byte varint (oversized) for field 8.
    let mut oversized = vec![0x40];
    oversized.extend([0xff; 10]);
    oversized.push(0x01);
    assert!(matches!(
        RawData::decode(&oversized),
        Err(TxError::Protobuf { .. })
    ));
    // A padded varint (0x80 0x00 for 0) and an explicit default are not canonical.
    assert!(matches!(
        RawData::decode(&[0x40, 0x81, 0x00]),
        Err(TxError::NonCanonical { .. })
    ));
    assert!(matches!(
        RawData::decode(&[0x70, 0x00]),
        Err(TxError::NonCanonical { .. })
    ));
    // An unknown field (number 2) would be dropped on re-encoding.
    let mut unknown = good.clone();
    unknown.extend([0x10, 0x01]);
    assert!(matches!(
        RawData::decode(&unknown),
        Err(TxError::NonCanonical { .. })
    ));
    assert!(matches!(RawData::decode_hex("0a0"), Err(TxError::Hex(_))));
    assert!(matches!(RawData::decode_hex("0a0g"), Err(TxError::Hex(_))));
    assert!(RawData::decode(&[0xff; 32]).is_err());
}

#[test]
fn a_known_contract_with_a_bad_address_or_wrong_type_url_is_refused() {
    let v = &delegations()["vectors"][0];
    let good = str_of(v, "raw_data_hex");
    // Version byte 0x41 of the owner address → 0x42.
    let bad_owner = good.replacen("0a154159e3", "0a154259e3", 1);
    assert!(matches!(
        RawData::decode_hex(&bad_owner),
        Err(TxError::BadAddress {
            field: "owner_address",
            ..
        })
    ));
    // "DelegateResourceContract" → "DelegateResourceContracu" in the type_url.
    let bad_url = good.replacen("436f6e7472616374", "436f6e7472616375", 1);
    assert!(matches!(
        RawData::decode_hex(&bad_url),
        Err(TxError::TypeUrlMismatch {
            type_number: 57,
            ..
        })
    ));
}

#[test]
fn bad_json_is_refused_with_the_field_it_is_about() {
    let v = &delegations()["vectors"][0]["raw_data_json"];
    let mut extra = v.clone();
    extra["surprise"] = Value::from(1);
    let err = json::from_node_json(&extra).unwrap_err().to_string();
    assert!(err.contains("surprise"), "{err}");
    let mut bad_address = v.clone();
    bad_address["contract"][0]["parameter"]["value"]["owner_address"] = Value::from("T123");
    let err = json::from_node_json(&bad_address).unwrap_err().to_string();
    assert!(err.contains("T123"), "{err}");
    let mut bad_type = v.clone();
    bad_type["contract"][0]["type"] = Value::from("NoSuchContract");
    let err = json::from_node_json(&bad_type).unwrap_err().to_string();
    assert!(err.contains("NoSuchContract"), "{err}");
    assert!(json::parse_node_json(&Value::from(3)).is_err());
}

//! The client's typed parsing of every real response in vectors/tron/api_responses.json and
//! tx_info.json: success, failure, `{}` and `{"Error": …}` shapes. Every entry of the two files
//! is listed in `ENTRIES` and read through `entry`, so a new one cannot go untested.

use std::collections::BTreeSet;

use serde_json::Value;
use tron_adapter::node::types::{self, check_error};
use tron_adapter::node::{
    energy_for_stake, stake_for_energy, AccountResource, Broadcast, BroadcastClass, ConstantCall,
    DelegatedResource, NodeBlock, NodeError, ResponseCode, TransactionInfo, Trc20TransferItem,
};
use tron_adapter::TronAddress;

fn vectors(name: &str) -> Value {
    let path = format!("{}/../vectors/tron/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

const EP: &str = "/wallet/test";

/// Every top-level entry of the vector files, with its fields (none for an array or prose).
/// `the_tests_read_every_entry_of_the_vector_files` fails when a file gains or loses an entry or
/// a field; a test reads an entry only through [`entry`], which refuses one not listed here.
const ENTRIES: &[(&str, &str, &[&str])] = &[
    ("api_responses.json", "getaccountresource", &[]),
    (
        "api_responses.json",
        "getcandelegatedmaxsize",
        &["source", "request", "response_zero", "response_example"],
    ),
    (
        "api_responses.json",
        "getdelegatedresourcev2",
        &[
            "source",
            "request",
            "response_none",
            "response_illustrative",
        ],
    ),
    (
        "api_responses.json",
        "delegateresource_error",
        &["source", "response"],
    ),
    (
        "api_responses.json",
        "undelegateresource_error",
        &["source", "response"],
    ),
    (
        "api_responses.json",
        "broadcasttransaction",
        &["source", "success", "errors_shape", "note"],
    ),
    (
        "api_responses.json",
        "getnowblock",
        &["source", "response", "derived_ref_block_fields"],
    ),
    (
        "api_responses.json",
        "triggerconstantcontract_balanceOf",
        &[
            "source",
            "request",
            "response_core",
            "derived_balance_base_units",
        ],
    ),
    (
        "api_responses.json",
        "trongrid_v1_trc20_item",
        &["source", "item_top_level", "note"],
    ),
    ("tx_info.json", "description", &[]),
    (
        "tx_info.json",
        "transfer_event_topic0",
        &["value", "derived_check"],
    ),
    (
        "tx_info.json",
        "success_usdt_transfer",
        &["source", "response", "derived_decoded_transfer_log", "note"],
    ),
    (
        "tx_info.json",
        "success_trx_transfer_free_bandwidth",
        &["source", "response"],
    ),
    (
        "tx_info.json",
        "failed_usdt_transfer_out_of_energy",
        &["source", "response", "derived_resMessage_utf8", "note"],
    ),
    (
        "tx_info.json",
        "docs_nile_contract_call",
        &["source", "response_excerpt"],
    ),
    ("tx_info.json", "not_found", &["source", "response"]),
    (
        "tx_info.json",
        "stake_v2_info_fields",
        &["source", "unfreeze_v1_example", "withdraw_example"],
    ),
];

/// `file[key]` for an entry listed in [`ENTRIES`]; panics if it is not listed or not there.
fn entry<'a>(file: &'a Value, key: &str) -> &'a Value {
    assert!(
        ENTRIES.iter().any(|(_, listed, _)| *listed == key),
        "{key} is read by a test but not listed in ENTRIES"
    );
    file.get(key)
        .unwrap_or_else(|| panic!("{key} is not in the vector file"))
}

#[test]
fn the_tests_read_every_entry_of_the_vector_files() {
    for name in ["api_responses.json", "tx_info.json"] {
        let file = vectors(name);
        let in_file: BTreeSet<&str> = file
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let listed: BTreeSet<&str> = ENTRIES
            .iter()
            .filter(|(f, _, _)| *f == name)
            .map(|(_, key, _)| *key)
            .collect();
        assert_eq!(in_file, listed, "{name}: entries nobody reads, or gone");
        for (_, key, fields) in ENTRIES.iter().filter(|(f, _, _)| *f == name) {
            let in_entry: BTreeSet<&str> = match &file[*key] {
                Value::Object(map) => map.keys().map(String::as_str).collect(),
                _ => BTreeSet::new(),
            };
            let listed: BTreeSet<&str> = fields.iter().copied().collect();
            assert_eq!(
                in_entry, listed,
                "{name} {key}: fields nobody reads, or gone"
            );
        }
    }
    // The one prose entry carries no response.
    assert!(vectors("tx_info.json")["description"].is_string());
}

#[test]
fn account_resources_parse_and_reproduce_the_energy_formula() {
    let file = vectors("api_responses.json");
    let cases = entry(&file, "getaccountresource").as_array().unwrap();
    assert_eq!(cases.len(), 2, "a new case needs its own assertions below");
    let docs = AccountResource::from_node(EP, &cases[0]["response"])
        .unwrap()
        .unwrap();
    assert_eq!(docs.free_net_used, 441);
    assert_eq!(docs.free_net_limit, 600);
    assert_eq!(docs.total_energy_limit, 180_000_000_000);
    assert_eq!(docs.total_energy_weight, 2_411_528_185);
    assert_eq!(docs.energy_limit, 0, "absent fields are 0");

    let mainnet = AccountResource::from_node(EP, &cases[1]["response"])
        .unwrap()
        .unwrap();
    assert_eq!(mainnet.tron_power_limit, 403);
    assert_eq!(mainnet.energy_limit, 4448);
    assert_eq!(mainnet.energy_available(), 4448);
    // The node's own answer agrees with the formula in whole TRX.
    assert_eq!(mainnet.energy_for_stake(403 * 1_000_000), 4448);
    let per_trx = mainnet.total_energy_limit as f64 / mainnet.total_energy_weight as f64;
    let derived = cases[1]["derived_energy_per_staked_trx"].as_f64().unwrap();
    assert!((per_trx - derived).abs() < 1e-9);
    // The inverse gives a stake that yields at least what was asked.
    let stake = stake_for_energy(65_000, 180_000_000_000, 16_307_698_552);
    assert!(energy_for_stake(stake, 180_000_000_000, 16_307_698_552) >= 65_000);
    assert!(energy_for_stake(stake - 1_000_000, 180_000_000_000, 16_307_698_552) < 65_000);

    assert_eq!(
        AccountResource::from_node(EP, &Value::Object(Default::default())).unwrap(),
        None
    );
}

#[test]
fn can_delegated_max_size_reads_the_value_and_the_empty_object_as_zero() {
    let file = vectors("api_responses.json");
    let case = entry(&file, "getcandelegatedmaxsize");
    assert_eq!(
        types::max_size_from_node(EP, &case["response_zero"]).unwrap(),
        0
    );
    assert_eq!(
        types::max_size_from_node(EP, &case["response_example"]).unwrap(),
        5_000_000_000
    );
}

#[test]
fn delegated_resources_parse_records_and_none() {
    let file = vectors("api_responses.json");
    let case = entry(&file, "getdelegatedresourcev2");
    assert!(
        DelegatedResource::list_from_node(EP, &case["response_none"])
            .unwrap()
            .is_empty()
    );
    let records = DelegatedResource::list_from_node(EP, &case["response_illustrative"]).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].from,
        TronAddress::from_hex(case["request"]["fromAddress"].as_str().unwrap()).unwrap()
    );
    assert_eq!(records[0].frozen_balance_for_energy, 1_000_000_000);
    assert_eq!(records[0].expire_time_for_energy, 1_700_000_000_000);
}

#[test]
fn servlet_errors_become_typed_errors_with_the_node_message() {
    let file = vectors("api_responses.json");
    for key in ["delegateresource_error", "undelegateresource_error"] {
        let response = &entry(&file, key)["response"];
        let err = check_error("/wallet/delegateresource", response).unwrap_err();
        match &err {
            NodeError::Servlet { message, .. } => {
                assert!(
                    message.starts_with("class org.tron.core.exception.ContractValidateException")
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(!err.is_transient());
        // Every typed reader refuses it the same way.
        assert!(matches!(
            TransactionInfo::from_node(EP, response),
            Err(NodeError::Servlet { .. })
        ));
        assert!(matches!(
            AccountResource::from_node(EP, response),
            Err(NodeError::Servlet { .. })
        ));
    }
}

#[test]
fn broadcast_replies_are_classified_by_code_whatever_the_message() {
    let file = vectors("api_responses.json");
    let case = entry(&file, "broadcasttransaction");
    let ok = Broadcast::from_node(EP, &case["success"]).unwrap();
    assert_eq!(ok.code, ResponseCode::Success);
    assert_eq!(ok.class(), BroadcastClass::Accepted);
    let expected = [
        (
            ResponseCode::DupTransactionError,
            BroadcastClass::AlreadyKnown,
        ),
        (ResponseCode::SigError, BroadcastClass::Rejected),
        (ResponseCode::TaposError, BroadcastClass::Rebuild),
    ];
    let shapes = case["errors_shape"].as_array().unwrap();
    assert_eq!(shapes.len(), expected.len(), "one expectation per shape");
    for (shape, (code, class)) in shapes.iter().zip(expected) {
        let reply = Broadcast::from_node(EP, shape).unwrap();
        assert_eq!(reply.code, code);
        assert_eq!(reply.class(), class);
        // The documentation's messages are plain text; they are kept as they are.
        assert_eq!(reply.message, shape["message"].as_str().unwrap());
    }
    // The node's own form: no `result`, message as hex of UTF-8.
    let hexed: Value = serde_json::json!({
        "code": "CONTRACT_VALIDATE_ERROR",
        "message": hex::encode("Contract validate error : delegated Resource does not exist"),
        "txid": "ab"
    });
    let reply = Broadcast::from_node(EP, &hexed).unwrap();
    assert_eq!(reply.class(), BroadcastClass::Rejected);
    assert_eq!(
        reply.message,
        "Contract validate error : delegated Resource does not exist"
    );
    // A reply without any code is not a broadcast reply.
    assert!(matches!(
        Broadcast::from_node(EP, &serde_json::json!({"txid": "ab"})),
        Err(NodeError::Malformed { .. })
    ));
}

#[test]
fn the_real_block_parses_and_gives_its_reference_fields() {
    let file = vectors("api_responses.json");
    let case = entry(&file, "getnowblock");
    let block = NodeBlock::from_node(EP, &case["response"])
        .unwrap()
        .unwrap();
    assert_eq!(
        block.number,
        case["derived_ref_block_fields"]["block_number_from_blockID_first_8_bytes"]
            .as_u64()
            .unwrap()
    );
    assert_eq!(block.timestamp, 1_777_445_307_000);
    let reference = block.ref_block();
    assert_eq!(
        hex::encode(reference.bytes),
        case["derived_ref_block_fields"]["ref_block_bytes"]
    );
    assert_eq!(
        hex::encode(reference.hash),
        case["derived_ref_block_fields"]["ref_block_hash"]
    );
    assert!(block.transactions.is_empty());
    // A block id that does not start with its number is refused.
    let mut tampered = case["response"].clone();
    tampered["block_header"]["raw_data"]["number"] = 5.into();
    assert!(matches!(
        NodeBlock::from_node(EP, &tampered),
        Err(NodeError::Malformed { .. })
    ));
}

#[test]
fn the_constant_call_gives_the_usdt_balance() {
    let file = vectors("api_responses.json");
    let case = entry(&file, "triggerconstantcontract_balanceOf");
    let call = ConstantCall::from_node(EP, &case["response_core"]).unwrap();
    assert!(call.ok);
    assert_eq!(call.energy_used, 935);
    assert_eq!(
        call.uint_result(EP).unwrap(),
        u128::from(case["derived_balance_base_units"].as_u64().unwrap())
    );
}

#[test]
fn the_trongrid_item_parses() {
    let file = vectors("api_responses.json");
    let case = entry(&file, "trongrid_v1_trc20_item");
    let item = Trc20TransferItem::from_node(EP, &case["item_top_level"]).unwrap();
    assert_eq!(item.token.symbol, "USDT");
    assert_eq!(item.token.decimals, 6);
    assert_eq!(item.value, 41_677_389);
    assert_eq!(item.from.to_base58(), "TL24LCps5FKwp3PoU1MvrYrwhi5LU1tHre");
    assert_eq!(item.kind, "Transfer");
}

#[test]
fn transaction_infos_parse_success_failure_system_and_not_found() {
    let file = vectors("tx_info.json");

    let usdt = TransactionInfo::from_node(EP, &entry(&file, "success_usdt_transfer")["response"])
        .unwrap()
        .unwrap();
    assert!(usdt.succeeded());
    assert_eq!(usdt.block_number, 69_316_562);
    assert_eq!(usdt.fee, 26_420_100);
    assert_eq!(usdt.receipt.energy_usage_total, 130_285);
    assert_eq!(usdt.receipt.energy_penalty_total, 100_635);
    assert_eq!(usdt.receipt.result.as_deref(), Some("SUCCESS"));
    assert_eq!(
        usdt.logs[0].topics[0],
        entry(&file, "transfer_event_topic0")["value"],
        "the log is the Transfer event"
    );
    let logs = usdt.transfer_logs().unwrap();
    assert_eq!(logs.len(), 1);
    let expected = &entry(&file, "success_usdt_transfer")["derived_decoded_transfer_log"];
    assert_eq!(logs[0].0, 0);
    assert_eq!(logs[0].1.to.to_base58(), expected["to"]);
    assert_eq!(logs[0].1.from.to_base58(), expected["from"]);
    assert_eq!(logs[0].1.contract.to_base58(), expected["contract"]);
    assert_eq!(
        logs[0].1.amount,
        u128::from(expected["value_base_units"].as_u64().unwrap())
    );
    assert_eq!(
        usdt.contract_address.unwrap().to_base58(),
        expected["contract"]
    );

    let trx = TransactionInfo::from_node(
        EP,
        &entry(&file, "success_trx_transfer_free_bandwidth")["response"],
    )
    .unwrap()
    .unwrap();
    assert!(trx.succeeded());
    assert_eq!(trx.receipt.net_usage, 267);
    assert_eq!(trx.receipt.result, None);
    assert_eq!(trx.contract_result, vec![Vec::<u8>::new()]);

    let failed = entry(&file, "failed_usdt_transfer_out_of_energy");
    let info = TransactionInfo::from_node(EP, &failed["response"])
        .unwrap()
        .unwrap();
    assert!(!info.succeeded());
    assert!(info.failed);
    assert_eq!(info.receipt.result.as_deref(), Some("OUT_OF_ENERGY"));
    assert_eq!(info.fee, 16_500_120, "the fee is burned although it failed");
    assert_eq!(
        info.res_message.as_deref(),
        failed["derived_resMessage_utf8"].as_str()
    );
    assert!(info.transfer_logs().unwrap().is_empty());

    let call = TransactionInfo::from_node(
        EP,
        &entry(&file, "docs_nile_contract_call")["response_excerpt"],
    )
    .unwrap()
    .unwrap();
    assert_eq!(call.receipt.net_fee, 796_000);
    assert_eq!(call.receipt.energy_usage_total, 44_585);

    assert_eq!(
        TransactionInfo::from_node(EP, &entry(&file, "not_found")["response"]).unwrap(),
        None
    );

    let stake = entry(&file, "stake_v2_info_fields");
    let unfreeze = TransactionInfo::from_node(EP, &stake["unfreeze_v1_example"])
        .unwrap()
        .unwrap();
    assert_eq!(unfreeze.unfreeze_amount, 5_000_000);
    let withdraw = TransactionInfo::from_node(EP, &stake["withdraw_example"])
        .unwrap()
        .unwrap();
    assert_eq!(withdraw.withdraw_amount, 6_600_255);
}

#[test]
fn wrong_shapes_are_typed_errors_never_panics() {
    let junk = [
        serde_json::json!(null),
        serde_json::json!(42),
        serde_json::json!("text"),
        serde_json::json!({"id": 7}),
        serde_json::json!({"id": "zz"}),
        serde_json::json!({"id": "ab", "blockNumber": "x"}),
        serde_json::json!({"blockID": "00", "block_header": {}}),
        serde_json::json!({"result": "FAILED!", "id": "00"}),
    ];
    for value in &junk {
        let _ = TransactionInfo::from_node(EP, value).unwrap_err();
        assert!(NodeBlock::from_node(EP, value).is_err() || value == &serde_json::json!({}));
        let _ = Broadcast::from_node(EP, value).unwrap_err();
    }
}

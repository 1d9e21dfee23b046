//! Property tests: generated transactions survive encode → decode and JSON → bytes unchanged,
//! every byte string that decodes re-encodes to itself, and signatures name their signer.

use proptest::collection::vec;
use proptest::prelude::*;
use tron_adapter::fuzzing::decode_everything;
use tron_adapter::tx::{
    json, Authority, ContractCall, DelegateResource, OtherContract, RawData, Resource,
    SignedTransaction, Transfer, TriggerSmart, TxContract, UnDelegateResource,
};
use tron_adapter::{PrivateKey, TronAddress};

fn address() -> impl Strategy<Value = TronAddress> {
    any::<[u8; 20]>().prop_map(TronAddress::from_evm_bytes)
}

fn resource() -> impl Strategy<Value = Resource> {
    prop_oneof![
        Just(Resource::Bandwidth),
        Just(Resource::Energy),
        Just(Resource::TronPower),
        (3..1000i32).prop_map(Resource::Other),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn call() -> impl Strategy<Value = ContractCall> {
    prop_oneof![
        (address(), address(), any::<i64>()).prop_map(|(owner, to, amount)| {
            ContractCall::Transfer(Transfer { owner, to, amount })
        }),
        (
            address(),
            address(),
            any::<i64>(),
            bytes(80),
            any::<i64>(),
            any::<i64>()
        )
            .prop_map(
                |(owner, contract, call_value, data, call_token_value, token_id)| {
                    ContractCall::TriggerSmart(TriggerSmart {
                        owner,
                        contract,
                        call_value,
                        data,
                        call_token_value,
                        token_id,
                    })
                }
            ),
        (
            address(),
            resource(),
            any::<i64>(),
            address(),
            any::<bool>(),
            any::<i64>()
        )
            .prop_map(|(owner, resource, balance, receiver, lock, lock_period)| {
                ContractCall::DelegateResource(DelegateResource {
                    owner,
                    resource,
                    balance,
                    receiver,
                    lock,
                    lock_period,
                })
            }),
        (address(), resource(), any::<i64>(), address()).prop_map(
            |(owner, resource, balance, receiver)| {
                ContractCall::UnDelegateResource(UnDelegateResource {
                    owner,
                    resource,
                    balance,
                    receiver,
                })
            }
        ),
        (
            prop_oneof![0..64i32, any::<i32>()]
                .prop_filter("a decoded type", |n| ![1, 31, 57, 58].contains(n)),
            "[a-zA-Z./]{0,40}",
            bytes(60)
        )
            .prop_map(|(type_number, type_url, value)| {
                ContractCall::Other(OtherContract {
                    type_number,
                    type_url,
                    value,
                })
            }),
    ]
}

fn contract() -> impl Strategy<Value = TxContract> {
    (call(), any::<i32>(), bytes(8), bytes(8)).prop_map(
        |(call, permission_id, provider, contract_name)| TxContract {
            call,
            permission_id,
            provider,
            contract_name,
        },
    )
}

fn authority() -> impl Strategy<Value = Authority> {
    (proptest::option::of((bytes(6), bytes(21))), bytes(6)).prop_map(
        |(account, permission_name)| Authority {
            account,
            permission_name,
        },
    )
}

prop_compose! {
    fn raw_data()(
        ref_block_bytes in bytes(3),
        ref_block_num in any::<i64>(),
        ref_block_hash in bytes(9),
        expiration in any::<i64>(),
        auths in vec(authority(), 0..2),
        data in bytes(20),
        contracts in vec(contract(), 0..3),
        scripts in bytes(5),
        timestamp in any::<i64>(),
        fee_limit in any::<i64>(),
    ) -> RawData {
        RawData {
            ref_block_bytes, ref_block_num, ref_block_hash, expiration, auths, data, contracts,
            scripts, timestamp, fee_limit,
        }
    }
}

fn key() -> impl Strategy<Value = PrivateKey> {
    any::<[u8; 32]>().prop_filter_map("a valid scalar", |b| PrivateKey::from_bytes(&b).ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoding_an_encoded_transaction_gives_back_the_same_transaction(raw in raw_data()) {
        let bytes = raw.encode();
        prop_assert_eq!(RawData::decode(&bytes).unwrap(), raw);
    }

    #[test]
    fn encoding_a_decoded_hex_string_gives_back_the_same_hex(raw in raw_data()) {
        let hex_text = hex::encode(raw.encode());
        let decoded = RawData::decode_hex(&hex_text).unwrap();
        prop_assert_eq!(hex::encode(decoded.encode()), hex_text);
    }

    #[test]
    fn node_json_reads_back_as_the_same_transaction(raw in raw_data()) {
        let text = serde_json::to_string(&json::to_node_json(&raw)).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(json::from_node_json(&value).unwrap(), raw);
    }

    #[test]
    fn any_bytes_that_decode_reencode_to_themselves(data in bytes(200)) {
        decode_everything(&data);
    }

    #[test]
    fn a_changed_byte_in_a_valid_transaction_never_panics_the_decoder(
        raw in raw_data(), at in any::<prop::sample::Index>(), xor in 1u8..=255,
    ) {
        let mut bytes = raw.encode();
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
        }
        decode_everything(&bytes);
    }

    #[test]
    fn a_signed_transaction_names_its_signer_and_survives_encoding(
        raw in raw_data(), key in key(),
    ) {
        let signed = SignedTransaction::sign(raw, &key);
        prop_assert_eq!(signed.signers().unwrap(), vec![key.address()]);
        let back = SignedTransaction::decode(&signed.encode()).unwrap();
        prop_assert_eq!(back, signed);
    }
}

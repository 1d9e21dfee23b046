//! Every validation error the node gives comes back from the simulator with the node's code,
//! and the client classifies it by that code.

use crate::common;

use common::*;
use serde_json::json;
use tron_adapter::node::{BroadcastClass, Finality, NodeError, ResponseCode};
use tron_adapter::simulator::SimConfig;
use tron_adapter::tx::{self, SignedTransaction, TxContract};
use tron_adapter::{PrivateKey, TronAddress};

struct World {
    sim: tron_adapter::simulator::SimHandle,
    client: tron_adapter::node::NodeClient,
    pool_key: PrivateKey,
    pool: TronAddress,
    renter: TronAddress,
}

async fn world() -> World {
    let (sim, client) = start(SimConfig::for_tests()).await;
    let pool_key = key("validating pool");
    let pool = pool_key.address();
    let renter = key("validating renter").address();
    activate(&sim, &pool, 10_000).await;
    stake(&sim, &pool, 5_000).await;
    activate(&sim, &renter, 1).await;
    World {
        sim,
        client,
        pool_key,
        pool,
        renter,
    }
}

/// Broadcasts `tx` and checks the node's code, the client's class, and (for contract
/// validation) that building the same contract on the node fails with `{"Error": …}`.
async fn expect(
    w: &World,
    tx: &SignedTransaction,
    code: ResponseCode,
    class: BroadcastClass,
) -> String {
    let reply = w.client.broadcast_hex(tx).await.unwrap();
    assert_eq!(reply.code, code, "{reply:?}");
    assert_eq!(reply.class(), class);
    assert_eq!(reply.txid.as_deref(), Some(tx.txid().to_hex().as_str()));
    if code == ResponseCode::ContractValidateError {
        let built = w.client.build_via_node(&tx.raw.contracts[0]).await;
        match built {
            Err(NodeError::Servlet { message, .. }) => {
                assert!(message.contains("ContractValidateException"), "{message}")
            }
            other => panic!("building should fail like the broadcast: {other:?}"),
        }
    }
    // The JSON broadcast gives the same code (its message arrives hex-encoded and is decoded).
    let again = w.client.broadcast_transaction(tx).await.unwrap();
    if code != ResponseCode::DupTransactionError {
        assert_eq!(again.code, code);
        assert_eq!(again.message, reply.message);
    }
    reply.message
}

#[tokio::test]
async fn below_one_trx_is_a_contract_validate_error() {
    let w = world().await;
    let tx = signed(
        &w.client,
        &w.pool_key,
        delegate(&w.pool, &w.renter, TRX - 1, false, 0),
    )
    .await;
    let message = expect(
        &w,
        &tx,
        ResponseCode::ContractValidateError,
        BroadcastClass::Rejected,
    )
    .await;
    assert!(message.contains("1 TRX"), "{message}");
}

#[tokio::test]
async fn more_than_available_is_a_contract_validate_error() {
    let w = world().await;
    let tx = signed(
        &w.client,
        &w.pool_key,
        delegate(&w.pool, &w.renter, 5_001 * TRX, false, 0),
    )
    .await;
    let message = expect(
        &w,
        &tx,
        ResponseCode::ContractValidateError,
        BroadcastClass::Rejected,
    )
    .await;
    assert!(
        message.contains("available FreezeEnergyV2 balance"),
        "{message}"
    );
}

#[tokio::test]
async fn a_receiver_that_is_not_activated_is_refused() {
    let w = world().await;
    let stranger = key("never activated").address();
    let tx = signed(
        &w.client,
        &w.pool_key,
        delegate(&w.pool, &stranger, 10 * TRX, false, 0),
    )
    .await;
    let message = expect(
        &w,
        &tx,
        ResponseCode::ContractValidateError,
        BroadcastClass::Rejected,
    )
    .await;
    assert!(
        message.contains(&format!("Account[{}] not exists", stranger.to_hex())),
        "{message}"
    );
    assert!(w
        .client
        .account(&stranger, Finality::Head)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_owner_cannot_delegate_to_itself_or_to_a_contract() {
    let w = world().await;
    let tx = signed(
        &w.client,
        &w.pool_key,
        delegate(&w.pool, &w.pool, 10 * TRX, false, 0),
    )
    .await;
    let message = expect(
        &w,
        &tx,
        ResponseCode::ContractValidateError,
        BroadcastClass::Rejected,
    )
    .await;
    assert!(
        message.contains("must not be the same as ownerAddress"),
        "{message}"
    );

    let usdt = w.sim.usdt_contract();
    let tx = signed(
        &w.client,
        &w.pool_key,
        delegate(&w.pool, &usdt, 10 * TRX, false, 0),
    )
    .await;
    let message = expect(
        &w,
        &tx,
        ResponseCode::ContractValidateError,
        BroadcastClass::Rejected,
    )
    .await;
    assert!(message.contains("contract addresses"), "{message}");
}

#[tokio::test]
async fn a_lock_period_beyond_the_maximum_is_refused() {
    let w = world().await;
    let tx = signed(
        &w.client,
        &w.pool_key,
        delegate(&w.pool, &w.renter, 10 * TRX, true, 10_000_000),
    )
    .await;
    let message = expect(
        &w,
        &tx,
        ResponseCode::ContractValidateError,
        BroadcastClass::Rejected,
    )
    .await;
    assert!(message.contains("cannot exceed"), "{message}");
}

#[tokio::test]
async fn undelegating_what_was_never_lent_is_refused() {
    let w = world().await;
    let tx = signed(
        &w.client,
        &w.pool_key,
        undelegate(&w.pool, &w.renter, 10 * TRX),
    )
    .await;
    let message = expect(
        &w,
        &tx,
        ResponseCode::ContractValidateError,
        BroadcastClass::Rejected,
    )
    .await;
    assert!(
        message.contains("delegated Resource does not exist"),
        "{message}"
    );
}

#[tokio::test]
async fn a_signature_by_another_key_is_a_sigerror() {
    let w = world().await;
    let thief = key("not the pool");
    let tx = signed(
        &w.client,
        &thief,
        delegate(&w.pool, &w.renter, 10 * TRX, false, 0),
    )
    .await;
    expect(&w, &tx, ResponseCode::SigError, BroadcastClass::Rejected).await;
    // No signature at all.
    let mut bare = tx.clone();
    bare.signatures.clear();
    expect(&w, &bare, ResponseCode::SigError, BroadcastClass::Rejected).await;
}

#[tokio::test]
async fn expired_and_too_distant_expirations_mean_rebuild() {
    let w = world().await;
    let head = w.client.now_block(Finality::Head).await.unwrap();
    let call = delegate(&w.pool, &w.renter, 10 * TRX, false, 0);
    let mut params = tx::TxParams::new(head.ref_block(), head.timestamp - 60_000);
    params.expiration = head.timestamp; // <= head time: expired
    let old = SignedTransaction::sign(
        tx::build(TxContract::new(call.clone()), &params).unwrap(),
        &w.pool_key,
    );
    expect(
        &w,
        &old,
        ResponseCode::TransactionExpirationError,
        BroadcastClass::Rebuild,
    )
    .await;

    let mut params = tx::TxParams::new(head.ref_block(), head.timestamp + 3_600_000);
    params.expiration = head.timestamp + 25 * 3_600_000; // more than 24 h after the head
    let far = SignedTransaction::sign(
        tx::build(TxContract::new(call), &params).unwrap(),
        &w.pool_key,
    );
    expect(
        &w,
        &far,
        ResponseCode::TransactionExpirationError,
        BroadcastClass::Rebuild,
    )
    .await;
}

#[tokio::test]
async fn a_reference_block_the_node_does_not_have_is_a_tapos_error() {
    let w = world().await;
    let mut raw = build(&w.client, delegate(&w.pool, &w.renter, 10 * TRX, false, 0)).await;
    raw.ref_block_hash = vec![0xee; 8];
    let tx = SignedTransaction::sign(raw.clone(), &w.pool_key);
    expect(&w, &tx, ResponseCode::TaposError, BroadcastClass::Rebuild).await;
    // A block number the chain has not reached yet.
    raw.ref_block_bytes = vec![0xff, 0xfe];
    let tx = SignedTransaction::sign(raw, &w.pool_key);
    expect(&w, &tx, ResponseCode::TaposError, BroadcastClass::Rebuild).await;
}

#[tokio::test]
async fn the_same_bytes_twice_are_a_duplicate() {
    let w = world().await;
    let tx = signed(
        &w.client,
        &w.pool_key,
        delegate(&w.pool, &w.renter, 10 * TRX, false, 0),
    )
    .await;
    assert_eq!(
        w.client.broadcast_hex(&tx).await.unwrap().class(),
        BroadcastClass::Accepted
    );
    let reply = w.client.broadcast_hex(&tx).await.unwrap();
    assert_eq!(reply.code, ResponseCode::DupTransactionError);
    assert_eq!(reply.class(), BroadcastClass::AlreadyKnown);
    // Still a duplicate once it is in a block.
    wait_info(&w.client, &tx.txid(), Finality::Head).await;
    let reply = w.client.broadcast_transaction(&tx).await.unwrap();
    assert_eq!(reply.class(), BroadcastClass::AlreadyKnown);
}

#[tokio::test]
async fn an_owner_that_cannot_pay_for_bandwidth_gets_bandwith_error() {
    let w = world().await;
    let poor_key = key("poor owner");
    let poor = poor_key.address();
    // 0.1 TRX and no stake: two small transfers fit in the free 600 bytes a day; the third
    // would have to burn about 270,000 sun for its bytes.
    admin(
        &w.sim,
        "activate",
        json!({"address": poor.to_base58(), "balance": 100_000}),
    )
    .await;
    for _ in 0..2 {
        let tx = signed(&w.client, &poor_key, transfer(&poor, &w.renter, 1)).await;
        assert_eq!(
            w.client.broadcast_hex(&tx).await.unwrap().class(),
            BroadcastClass::Accepted
        );
        let info = wait_info(&w.client, &tx.txid(), Finality::Head).await;
        assert!(
            info.receipt.net_usage > 0 && info.receipt.net_fee == 0,
            "{info:?}"
        );
    }
    let tx = signed(&w.client, &poor_key, transfer(&poor, &w.renter, 1)).await;
    expect(
        &w,
        &tx,
        ResponseCode::BandwithError,
        BroadcastClass::Rejected,
    )
    .await;
}

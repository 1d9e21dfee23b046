//! Included versus solidified, and reorganisations, with blocks produced one by one so the
//! boundaries are exact: a transaction is in `/wallet/gettransactioninfobyid` after one block
//! and in `/walletsolidity/…` only after K, and so are its effects on the other solid twins;
//! a reorg removes an unsolidified one.

use crate::common;

use common::*;
use serde_json::{json, Value};
use tron_adapter::node::{BroadcastClass, ChainParameters, Finality, NodeInfo};
use tron_adapter::simulator::SimConfig;
use tron_adapter::tx::Resource;

const K: u64 = 3;

/// Built on the solidified block, so a reorganisation cannot take its reference away.
async fn signed_on_solid(
    client: &tron_adapter::node::NodeClient,
    owner: &tron_adapter::PrivateKey,
    call: tron_adapter::tx::ContractCall,
) -> tron_adapter::tx::SignedTransaction {
    let solid = client.now_block(Finality::Solid).await.unwrap();
    let head = client.now_block(Finality::Head).await.unwrap();
    let mut params = tron_adapter::tx::TxParams::new(solid.ref_block(), head.timestamp);
    params.expiration = head.timestamp + 3_600_000;
    let contract = tron_adapter::tx::TxContract::new(call);
    tron_adapter::tx::SignedTransaction::sign(
        tron_adapter::tx::build(contract, &params).unwrap(),
        owner,
    )
}

#[tokio::test]
async fn a_transaction_is_included_after_one_block_and_solid_after_k() {
    let (sim, client) = start(SimConfig::manual()).await;
    let alice_key = key("finality alice");
    let alice = alice_key.address();
    let bob = key("finality bob").address();
    activate(&sim, &alice, 100).await;
    sim.produce_blocks(1);

    let tx = signed(&client, &alice_key, transfer(&alice, &bob, 5 * TRX)).await;
    assert_eq!(
        client.broadcast_hex(&tx).await.unwrap().class(),
        BroadcastClass::Accepted
    );
    assert!(
        client
            .transaction_info(&tx.txid(), Finality::Head)
            .await
            .unwrap()
            .is_none(),
        "pooled only"
    );

    let included_in = sim.produce_blocks(1);
    let info = client
        .transaction_info(&tx.txid(), Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.block_number, included_in);
    assert!(info.succeeded());
    assert_eq!(
        info.fee, 1_100_000,
        "a transfer that creates an account: 1 TRX + 0.1 TRX"
    );
    assert!(client
        .transaction_info(&tx.txid(), Finality::Solid)
        .await
        .unwrap()
        .is_none());
    assert!(client
        .transaction(&tx.txid(), Finality::Head)
        .await
        .unwrap()
        .is_some());
    assert!(client
        .transaction(&tx.txid(), Finality::Solid)
        .await
        .unwrap()
        .is_none());
    let shown = client
        .transaction(&tx.txid(), Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        shown.raw, tx.raw,
        "the node shows exactly the bytes we signed"
    );
    assert_eq!(shown.contract_ret.as_deref(), Some("SUCCESS"));
    let infos = client
        .transaction_infos_in_block(included_in, Finality::Head)
        .await
        .unwrap();
    assert_eq!(infos.len(), 1);
    assert!(client
        .transaction_infos_in_block(included_in, Finality::Solid)
        .await
        .unwrap()
        .is_empty());

    sim.produce_blocks(K - 1);
    assert!(
        client
            .transaction_info(&tx.txid(), Finality::Solid)
            .await
            .unwrap()
            .is_none(),
        "K - 1 blocks on top are not enough"
    );
    sim.produce_blocks(1);
    let solid = client
        .transaction_info(&tx.txid(), Finality::Solid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(solid.block_number, included_in);
    let node = client.node_info().await.unwrap();
    assert_eq!(node.block_number, included_in + K);
    assert_eq!(node.solid_number, included_in);
    let solid_block = client.now_block(Finality::Solid).await.unwrap();
    assert_eq!(solid_block.number, included_in);
    assert_eq!(solid_block.transactions.len(), 1);
    assert_eq!(
        client
            .account(&bob, Finality::Solid)
            .await
            .unwrap()
            .unwrap()
            .balance,
        5 * TRX
    );
    // Block ids start with the block number, and parents chain.
    let head = client.now_block(Finality::Head).await.unwrap();
    let parent = client
        .block_by_num(head.number - 1, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.parent, parent.id);
    assert_eq!(&head.id[..8], &head.number.to_be_bytes());
    assert!(client
        .block_by_num(head.number + 1, Finality::Head)
        .await
        .unwrap()
        .is_none());
}

/// A node endpoint's JSON answer, over plain HTTP.
async fn post_json(base: &str, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

#[tokio::test]
async fn the_solid_twins_show_a_delegation_only_after_k_blocks() {
    let (sim, client) = start(SimConfig::manual()).await;
    let base = sim.base_url().to_string();
    let owner_key = key("twins owner");
    let owner = owner_key.address();
    let renter = key("twins renter").address();
    activate(&sim, &owner, 1_000).await;
    stake(&sim, &owner, 500).await;
    activate(&sim, &renter, 1).await;
    sim.produce_blocks(K + 1);
    let max_size = |finality| client.can_delegated_max_size(&owner, Resource::Energy, finality);
    let records = |finality| client.delegated_resources(&owner, &renter, finality);
    let pair = json!({"fromAddress": owner.to_hex(), "toAddress": renter.to_hex()});
    assert_eq!(max_size(Finality::Solid).await.unwrap(), 500 * TRX);
    assert!(records(Finality::Solid).await.unwrap().is_empty());

    let tx = signed(
        &client,
        &owner_key,
        delegate(&owner, &renter, 100 * TRX, false, 0),
    )
    .await;
    assert_eq!(
        client.broadcast_hex(&tx).await.unwrap().class(),
        BroadcastClass::Accepted
    );
    let included_in = sim.produce_blocks(1);
    assert_eq!(max_size(Finality::Head).await.unwrap(), 400 * TRX);
    let on_head = records(Finality::Head).await.unwrap();
    assert_eq!(on_head.len(), 1);
    assert_eq!(on_head[0].frozen_balance_for_energy, 100 * TRX);

    // With 0 to K − 1 blocks on top the solidified view still has the old answers, and the
    // head block is not in it.
    for on_top in 0..K {
        if on_top > 0 {
            sim.produce_blocks(1);
        }
        let head = sim.head_number();
        assert_eq!(
            max_size(Finality::Solid).await.unwrap(),
            500 * TRX,
            "{on_top} blocks on top"
        );
        assert!(
            records(Finality::Solid).await.unwrap().is_empty(),
            "{on_top} blocks on top"
        );
        assert_eq!(
            post_json(
                &base,
                "/walletsolidity/getdelegatedresourcev2",
                pair.clone()
            )
            .await,
            json!({}),
            "{on_top} blocks on top"
        );
        assert_eq!(
            post_json(&base, "/walletsolidity/getblockbynum", json!({"num": head})).await,
            json!({}),
            "the unsolidified head {head} is not found on the solid path"
        );
        assert!(client
            .block_by_num(head, Finality::Solid)
            .await
            .unwrap()
            .is_none());
        assert!(client
            .block_by_num(head, Finality::Head)
            .await
            .unwrap()
            .is_some());
    }

    // The K-th block solidifies it: the twins change together.
    sim.produce_blocks(1);
    assert_eq!(max_size(Finality::Solid).await.unwrap(), 400 * TRX);
    assert_eq!(records(Finality::Solid).await.unwrap(), on_head);
    let solid = client
        .block_by_num(included_in, Finality::Solid)
        .await
        .unwrap()
        .unwrap();
    let head_view = client
        .block_by_num(included_in, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(solid.id, head_view.id);
    assert!(solid.transactions.iter().any(|t| t.txid == tx.txid()));

    // getnodeinfo and getchainparameters answer on both paths, with the same content.
    let info = |path| post_json(&base, path, json!({}));
    let on_wallet = NodeInfo::from_node("", &info("/wallet/getnodeinfo").await).unwrap();
    let on_solid = NodeInfo::from_node("", &info("/walletsolidity/getnodeinfo").await).unwrap();
    assert_eq!(on_solid, on_wallet);
    assert_eq!(on_solid.solid_number, included_in);
    assert_eq!(on_solid.block_number, included_in + K);
    let params = |path| post_json(&base, path, json!({}));
    let on_wallet =
        ChainParameters::from_node("", &params("/wallet/getchainparameters").await).unwrap();
    let on_solid =
        ChainParameters::from_node("", &params("/walletsolidity/getchainparameters").await)
            .unwrap();
    assert_eq!(on_solid, on_wallet);
    assert_eq!(on_solid.energy_fee(), Some(100));
}

#[tokio::test]
async fn a_reorg_removes_an_unsolidified_transaction_but_never_a_solid_one() {
    let (sim, client) = start(SimConfig::manual()).await;
    let alice_key = key("reorg alice");
    let alice = alice_key.address();
    let bob = key("reorg bob").address();
    activate(&sim, &alice, 100).await;
    activate(&sim, &bob, 1).await;
    sim.produce_blocks(1);

    let settled = signed(&client, &alice_key, transfer(&alice, &bob, TRX)).await;
    client.broadcast_hex(&settled).await.unwrap();
    sim.produce_blocks(1 + K);
    assert!(client
        .transaction_info(&settled.txid(), Finality::Solid)
        .await
        .unwrap()
        .is_some());

    let fresh = signed_on_solid(&client, &alice_key, transfer(&alice, &bob, 2 * TRX)).await;
    client.broadcast_hex(&fresh).await.unwrap();
    let included_in = sim.produce_blocks(1);
    let before = client.now_block(Finality::Head).await.unwrap();
    assert!(client
        .transaction_info(&fresh.txid(), Finality::Head)
        .await
        .unwrap()
        .is_some());

    let answer = admin(&sim, "faults", json!({"reorg": true})).await;
    assert!(answer["reorged_blocks"].as_u64().unwrap() >= 1);
    assert!(client
        .transaction_info(&fresh.txid(), Finality::Head)
        .await
        .unwrap()
        .is_none());
    assert!(client
        .transaction_info(&settled.txid(), Finality::Head)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        client
            .account(&bob, Finality::Head)
            .await
            .unwrap()
            .unwrap()
            .balance,
        2 * TRX,
        "the reorganised transfer is undone, the solid one stays"
    );
    let after = client.now_block(Finality::Head).await.unwrap();
    assert!(after.number < included_in);
    // The solid block does not move back: it is now also the head.
    let solid = client.now_block(Finality::Solid).await.unwrap();
    assert_eq!(solid.id, after.id);
    assert!(client
        .transaction_info(&settled.txid(), Finality::Solid)
        .await
        .unwrap()
        .is_some());
    sim.produce_blocks(1);
    assert_eq!(client.node_info().await.unwrap().solid_number, after.number);

    // The chain moves on with different blocks; a reference to a dropped block fails TAPOS.
    sim.produce_blocks(K);
    let replaced = client
        .block_by_num(before.number, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(replaced.id, before.id);
    let mut stale = fresh.raw.clone();
    stale.ref_block_bytes = before.ref_block().bytes.to_vec();
    stale.ref_block_hash = before.ref_block().hash.to_vec();
    let stale = tron_adapter::tx::SignedTransaction::sign(stale, &alice_key);
    assert_eq!(
        client.broadcast_hex(&stale).await.unwrap().class(),
        BroadcastClass::Rebuild
    );

    // The same bytes can be sent again, and land.
    let reply = client.broadcast_hex(&fresh).await.unwrap();
    assert_eq!(reply.class(), BroadcastClass::Accepted, "{reply:?}");
    let landed = sim.produce_blocks(1);
    let info = client
        .transaction_info(&fresh.txid(), Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.block_number, landed);
}

#[tokio::test]
async fn a_reorg_that_requeues_puts_the_transaction_in_a_later_block() {
    let (sim, client) = start(SimConfig::manual()).await;
    let alice_key = key("requeue alice");
    let alice = alice_key.address();
    let bob = key("requeue bob").address();
    activate(&sim, &alice, 100).await;
    sim.produce_blocks(K + 1);
    let tx = signed_on_solid(&client, &alice_key, transfer(&alice, &bob, TRX)).await;
    client.broadcast_hex(&tx).await.unwrap();
    sim.produce_blocks(1);
    admin(&sim, "faults", json!({"reorg": {"requeue": true}})).await;
    assert!(client
        .transaction_info(&tx.txid(), Finality::Head)
        .await
        .unwrap()
        .is_none());
    // Requeued: the node still knows it, and the next block has it.
    assert_eq!(
        client.broadcast_hex(&tx).await.unwrap().class(),
        BroadcastClass::AlreadyKnown
    );
    let landed = sim.produce_blocks(1);
    assert_eq!(
        client
            .transaction_info(&tx.txid(), Finality::Head)
            .await
            .unwrap()
            .unwrap()
            .block_number,
        landed
    );
}

#[tokio::test]
async fn usdt_payments_from_the_outside_customer_carry_a_transfer_log() {
    let (sim, client) = start(SimConfig::manual()).await;
    let deposit = key("deposit address").address();
    let paid = admin(
        &sim,
        "transfer",
        json!({"to": deposit.to_base58(), "asset": "USDT", "amount": 25_000_000}),
    )
    .await;
    let txid = tron_adapter::tx::TxId(
        tron_adapter::hexstr::decode_array::<32>("txid", paid["txid"].as_str().unwrap()).unwrap(),
    );
    sim.produce_blocks(1);
    let info = client
        .transaction_info(&txid, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert!(info.succeeded());
    assert_eq!(
        info.receipt.energy_usage_total, 130_285,
        "a first-time recipient"
    );
    assert!(
        info.receipt.energy_fee > 0,
        "the customer has no stake: TRX is burned"
    );
    assert_eq!(info.contract_address, Some(sim.usdt_contract()));
    let logs = info.transfer_logs().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].1.from, sim.customer());
    assert_eq!(logs[0].1.to, deposit);
    assert_eq!(logs[0].1.amount, 25_000_000);
    assert_eq!(
        client
            .trc20_balance_of(&sim.usdt_contract(), &deposit, Finality::Head)
            .await
            .unwrap(),
        25_000_000
    );
    assert_eq!(
        client
            .trc20_balance_of(&sim.usdt_contract(), &deposit, Finality::Solid)
            .await
            .unwrap(),
        0,
        "not solid yet"
    );
    // The second payment to a holder costs the smaller amount.
    let again = admin(
        &sim,
        "transfer",
        json!({"to": deposit.to_base58(), "asset": "USDT", "amount": 1}),
    )
    .await;
    sim.produce_blocks(1);
    let txid = tron_adapter::tx::TxId(
        tron_adapter::hexstr::decode_array::<32>("txid", again["txid"].as_str().unwrap()).unwrap(),
    );
    let info = client
        .transaction_info(&txid, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.receipt.energy_usage_total, 64_285);

    // TRX from the customer activates the address.
    let trx = admin(
        &sim,
        "transfer",
        json!({"to": deposit.to_base58(), "asset": "TRX", "amount": 3_000_000}),
    )
    .await;
    assert_eq!(trx["result"], true);
    sim.produce_blocks(1);
    assert_eq!(
        client
            .account(&deposit, Finality::Head)
            .await
            .unwrap()
            .unwrap()
            .balance,
        3_000_000
    );

    // More USDT than the customer has: included, reverted, fee burned, no log.
    let too_much = admin(
        &sim,
        "transfer",
        json!({"to": deposit.to_base58(), "asset": "USDT", "amount": u64::MAX}),
    )
    .await;
    sim.produce_blocks(1);
    let txid = tron_adapter::tx::TxId(
        tron_adapter::hexstr::decode_array::<32>("txid", too_much["txid"].as_str().unwrap())
            .unwrap(),
    );
    let info = client
        .transaction_info(&txid, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert!(!info.succeeded());
    assert_eq!(info.receipt.result.as_deref(), Some("REVERT"));
    assert!(info.fee > 0);
    assert!(info.transfer_logs().unwrap().is_empty());
    let shown = client
        .transaction(&txid, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.contract_ret.as_deref(), Some("REVERT"));
}

#[tokio::test]
async fn blocks_are_produced_on_their_own_every_few_milliseconds() {
    let (sim, client) = start(SimConfig::for_tests()).await;
    let first = client.now_block(Finality::Head).await.unwrap();
    wait_blocks(&sim, 3).await;
    let later = client.now_block(Finality::Head).await.unwrap();
    assert!(later.number >= first.number + 3);
    assert_eq!(
        later.timestamp - first.timestamp,
        (later.number - first.number) as i64 * 3_000,
        "the chain's clock moves 3 s per block"
    );
    let params = client.chain_parameters().await.unwrap();
    assert_eq!(params.energy_fee(), Some(100));
    assert_eq!(params.get("getTransactionFee"), Some(1_000));
}

//! Stake 2.0 through the client and the simulator over HTTP: the energy formula, delegation and
//! undelegation, the lock rules, the owner's own usage, 24-hour recovery, and signing under an
//! active permission.

use crate::common;

use common::*;
use serde_json::json;
use tron_adapter::node::{energy_for_stake, BroadcastClass, Finality, NodeError, ResponseCode};
use tron_adapter::simulator::SimConfig;
use tron_adapter::trc20;
use tron_adapter::tx::{Resource, SignedTransaction, TxContract};

/// Mainnet's TotalEnergyWeight, the simulator's default "rest of the network".
const NETWORK_WEIGHT: i64 = 16_307_698_552;
const TOTAL_ENERGY_LIMIT: i64 = 180_000_000_000;

#[tokio::test]
async fn staking_gives_the_energy_of_the_formula_over_the_whole_network() {
    let (sim, client) = start(SimConfig::for_tests()).await;
    let pool = key("stake pool").address();
    activate(&sim, &pool, 50_000).await;
    stake(&sim, &pool, 20_000).await;

    let resource = client
        .account_resource(&pool, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resource.total_energy_limit, TOTAL_ENERGY_LIMIT);
    assert_eq!(resource.total_energy_weight, NETWORK_WEIGHT + 20_000);
    // staked_TRX × TotalEnergyLimit / TotalEnergyWeight, in whole TRX.
    let expected = 20_000 * TOTAL_ENERGY_LIMIT / (NETWORK_WEIGHT + 20_000);
    assert_eq!(resource.energy_limit, expected);
    assert_eq!(
        resource.energy_limit,
        energy_for_stake(
            20_000 * TRX,
            resource.total_energy_limit,
            resource.total_energy_weight
        )
    );
    // About 11 energy per TRX, as on mainnet.
    assert!((11 * 20_000..12 * 20_000).contains(&resource.energy_limit));
    assert_eq!(resource.tron_power_limit, 20_000);

    let account = client
        .account(&pool, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.frozen_energy, 20_000 * TRX);
    assert_eq!(account.balance, 30_000 * TRX);
    assert_eq!(
        client
            .can_delegated_max_size(&pool, Resource::Energy, Finality::Head)
            .await
            .unwrap(),
        20_000 * TRX
    );
    // Staking is on the head first, and reaches the solidified view K blocks later.
    wait_blocks(&sim, 4).await;
    let solid = client
        .account_resource(&pool, Finality::Solid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(solid.energy_limit, expected);
}

#[tokio::test]
async fn delegate_raises_the_receiver_and_undelegate_takes_it_back() {
    let (sim, client) = start(SimConfig::for_tests()).await;
    let pool_key = key("delegating pool");
    let pool = pool_key.address();
    let renter = key("renter").address();
    activate(&sim, &pool, 50_000).await;
    stake(&sim, &pool, 20_000).await;
    activate(&sim, &renter, 1).await;
    assert_eq!(energy_limit(&client, &renter).await, 0);

    let lent = 10_000 * TRX;
    let tx = signed(&client, &pool_key, delegate(&pool, &renter, lent, false, 0)).await;
    let reply = client.broadcast_hex(&tx).await.unwrap();
    assert_eq!(reply.class(), BroadcastClass::Accepted, "{reply:?}");
    let info = wait_info(&client, &tx.txid(), Finality::Head).await;
    assert!(info.succeeded());
    assert!(
        info.receipt.net_usage > 0,
        "bandwidth came from the free allowance"
    );

    let resource = client
        .account_resource(&renter, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        resource.energy_limit,
        energy_for_stake(
            lent,
            resource.total_energy_limit,
            resource.total_energy_weight
        )
    );
    assert_eq!(
        resource.total_energy_weight,
        NETWORK_WEIGHT + 20_000,
        "lending does not change the network weight"
    );
    let records = client
        .delegated_resources(&pool, &renter, Finality::Head)
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].frozen_balance_for_energy, lent);
    assert_eq!(records[0].expire_time_for_energy, 0, "unlocked");
    let pool_account = client
        .account(&pool, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pool_account.delegated_energy, lent);
    assert_eq!(pool_account.frozen_energy, 10_000 * TRX);
    let renter_account = client
        .account(&renter, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renter_account.acquired_energy, lent);

    let back = signed(&client, &pool_key, undelegate(&pool, &renter, lent)).await;
    assert_eq!(
        client.broadcast_hex(&back).await.unwrap().class(),
        BroadcastClass::Accepted
    );
    wait_info(&client, &back.txid(), Finality::Head).await;
    assert_eq!(energy_limit(&client, &renter).await, 0);
    assert!(client
        .delegated_resources(&pool, &renter, Finality::Head)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        client
            .can_delegated_max_size(&pool, Resource::Energy, Finality::Head)
            .await
            .unwrap(),
        20_000 * TRX
    );
}

#[tokio::test]
async fn a_locked_delegation_cannot_be_reclaimed_before_its_lock_ends() {
    let (sim, client) = start(SimConfig::for_tests()).await;
    let pool_key = key("locking pool");
    let pool = pool_key.address();
    let renter = key("locked renter").address();
    activate(&sim, &pool, 50_000).await;
    stake(&sim, &pool, 20_000).await;
    activate(&sim, &renter, 1).await;

    // Locked for 1,200 blocks (one hour).
    let lent = 5_000 * TRX;
    let tx = signed(
        &client,
        &pool_key,
        delegate(&pool, &renter, lent, true, 1_200),
    )
    .await;
    assert_eq!(
        client.broadcast_hex(&tx).await.unwrap().class(),
        BroadcastClass::Accepted
    );
    let info = wait_info(&client, &tx.txid(), Finality::Head).await;
    let records = client
        .delegated_resources(&pool, &renter, Finality::Head)
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    let expire = records[0].expire_time_for_energy;
    assert!(
        expire >= info.block_timestamp + 1_200 * 3_000 - 3_000,
        "{expire}"
    );

    // Early reclaim: refused by the node's rule, on build and on broadcast.
    let early = signed(&client, &pool_key, undelegate(&pool, &renter, lent)).await;
    let reply = client.broadcast_hex(&early).await.unwrap();
    assert_eq!(reply.code, ResponseCode::ContractValidateError);
    assert_eq!(reply.class(), BroadcastClass::Rejected);
    assert!(
        reply.message.contains("unlock_balance=0"),
        "{}",
        reply.message
    );
    let built = client
        .build_via_node(&TxContract::new(undelegate(&pool, &renter, lent)))
        .await;
    assert!(matches!(built, Err(NodeError::Servlet { .. })), "{built:?}");

    // A new lock shorter than what remains is refused too.
    let shorter = signed(&client, &pool_key, delegate(&pool, &renter, TRX, true, 10)).await;
    let reply = client.broadcast_hex(&shorter).await.unwrap();
    assert_eq!(reply.code, ResponseCode::ContractValidateError);
    assert!(
        reply.message.contains("remaining time"),
        "{}",
        reply.message
    );

    // An unlocked delegation beside it is a separate record and can be reclaimed at once.
    let free = signed(
        &client,
        &pool_key,
        delegate(&pool, &renter, 2 * TRX, false, 0),
    )
    .await;
    assert_eq!(
        client.broadcast_hex(&free).await.unwrap().class(),
        BroadcastClass::Accepted
    );
    wait_info(&client, &free.txid(), Finality::Head).await;
    assert_eq!(
        client
            .delegated_resources(&pool, &renter, Finality::Head)
            .await
            .unwrap()
            .len(),
        2
    );

    // After the lock period the same reclaim goes through.
    sim.advance_time(3_600_000 + 3_000);
    wait_blocks(&sim, 2).await;
    let late = signed(
        &client,
        &pool_key,
        undelegate(&pool, &renter, lent + 2 * TRX),
    )
    .await;
    let reply = client.broadcast_hex(&late).await.unwrap();
    assert_eq!(reply.class(), BroadcastClass::Accepted, "{reply:?}");
    wait_info(&client, &late.txid(), Finality::Head).await;
    assert_eq!(energy_limit(&client, &renter).await, 0);
}

#[tokio::test]
async fn the_owners_own_usage_limits_what_it_can_lend_until_it_recovers_over_a_day() {
    let (sim, client) = start(SimConfig::for_tests()).await;
    let pool_key = key("busy pool");
    let pool = pool_key.address();
    let renter = key("busy renter").address();
    admin(
        &sim,
        "activate",
        json!({"address": pool.to_base58(), "balance": 50_000 * TRX, "usdt": 1_000_000}),
    )
    .await;
    stake(&sim, &pool, 10_000).await;
    activate(&sim, &renter, 1).await;

    // The pool spends its own energy on a USDT transfer.
    let pay = tron_adapter::tx::ContractCall::TriggerSmart(tron_adapter::tx::TriggerSmart {
        owner: pool,
        contract: sim.usdt_contract(),
        call_value: 0,
        data: trc20::transfer_calldata(&renter, 1_000),
        call_token_value: 0,
        token_id: 0,
    });
    let mut raw = build(&client, pay).await;
    raw.fee_limit = 100 * TRX;
    let tx = SignedTransaction::sign(raw, &pool_key);
    assert_eq!(
        client.broadcast_hex(&tx).await.unwrap().class(),
        BroadcastClass::Accepted
    );
    let info = wait_info(&client, &tx.txid(), Finality::Head).await;
    assert!(info.succeeded());
    assert!(info.receipt.energy_usage > 0, "{info:?}");

    let max = client
        .can_delegated_max_size(&pool, Resource::Energy, Finality::Head)
        .await
        .unwrap();
    assert!(max < 10_000 * TRX, "{max}");
    let all = signed(
        &client,
        &pool_key,
        delegate(&pool, &renter, 10_000 * TRX, false, 0),
    )
    .await;
    let reply = client.broadcast_hex(&all).await.unwrap();
    assert_eq!(reply.code, ResponseCode::ContractValidateError);
    assert!(
        reply.message.contains("available FreezeEnergyV2"),
        "{}",
        reply.message
    );

    // Half a day later part of it is back; a day later all of it.
    sim.advance_time(12 * 3_600_000);
    wait_blocks(&sim, 2).await;
    let half = client
        .can_delegated_max_size(&pool, Resource::Energy, Finality::Head)
        .await
        .unwrap();
    assert!(half > max && half < 10_000 * TRX, "{max} {half}");
    let used = client
        .account_resource(&pool, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert!(used.energy_used > 0 && used.energy_used < info.receipt.energy_usage);
    sim.advance_time(12 * 3_600_000);
    wait_blocks(&sim, 2).await;
    assert_eq!(
        client
            .can_delegated_max_size(&pool, Resource::Energy, Finality::Head)
            .await
            .unwrap(),
        10_000 * TRX
    );
    let all = signed(
        &client,
        &pool_key,
        delegate(&pool, &renter, 10_000 * TRX, false, 0),
    )
    .await;
    assert_eq!(
        client.broadcast_hex(&all).await.unwrap().class(),
        BroadcastClass::Accepted
    );
}

#[tokio::test]
async fn rented_energy_pays_for_the_renters_usdt_transfer() {
    let (sim, client) = start(SimConfig::for_tests()).await;
    let pool_key = key("renting pool");
    let pool = pool_key.address();
    let renter_key = key("usdt sender");
    let renter = renter_key.address();
    let friend = key("usdt holder").address();
    activate(&sim, &pool, 100_000).await;
    stake(&sim, &pool, 50_000).await;
    for (who, usdt) in [(renter, 50_000_000u64), (friend, 1)] {
        admin(
            &sim,
            "activate",
            json!({"address": who.to_base58(), "balance": 10 * TRX, "usdt": usdt}),
        )
        .await;
    }
    // Enough stake for 65,000 energy at today's weight.
    let totals = client
        .account_resource(&pool, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    let sun = tron_adapter::node::stake_for_energy(
        65_000,
        totals.total_energy_limit,
        totals.total_energy_weight,
    );
    let lend = signed(&client, &pool_key, delegate(&pool, &renter, sun, false, 0)).await;
    assert_eq!(
        client.broadcast_hex(&lend).await.unwrap().class(),
        BroadcastClass::Accepted
    );
    wait_info(&client, &lend.txid(), Finality::Head).await;
    assert!(energy_limit(&client, &renter).await >= 65_000);

    let pay = tron_adapter::tx::ContractCall::TriggerSmart(tron_adapter::tx::TriggerSmart {
        owner: renter,
        contract: sim.usdt_contract(),
        call_value: 0,
        data: trc20::transfer_calldata(&friend, 1_000_000),
        call_token_value: 0,
        token_id: 0,
    });
    let mut raw = build(&client, pay).await;
    raw.fee_limit = 30 * TRX;
    let tx = SignedTransaction::sign(raw, &renter_key);
    assert_eq!(
        client.broadcast_hex(&tx).await.unwrap().class(),
        BroadcastClass::Accepted
    );
    let info = wait_info(&client, &tx.txid(), Finality::Head).await;
    assert!(info.succeeded());
    assert_eq!(
        info.receipt.energy_usage_total, 64_285,
        "a recipient that holds USDT"
    );
    assert_eq!(
        info.receipt.energy_usage, 64_285,
        "all of it from the rented energy"
    );
    assert_eq!(info.receipt.energy_fee, 0);
    let logs = info.transfer_logs().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].1.to, friend);
    assert_eq!(logs[0].1.amount, 1_000_000);
    assert_eq!(
        client
            .trc20_balance_of(&sim.usdt_contract(), &friend, Finality::Head)
            .await
            .unwrap(),
        1_000_001
    );
}

#[tokio::test]
async fn an_active_permission_key_can_sign_and_a_stranger_cannot() {
    let (sim, client) = start(SimConfig::for_tests()).await;
    let pool = key("multisig pool").address();
    let bot = key("bot key");
    let renter = key("bot renter").address();
    admin(
        &sim,
        "activate",
        json!({"address": pool.to_base58(), "balance": 10_000 * TRX, "active_keys": [bot.address().to_base58()]}),
    )
    .await;
    stake(&sim, &pool, 5_000).await;
    activate(&sim, &renter, 1).await;
    let account = client
        .account(&pool, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.active_permissions[0].keys[0].address, bot.address());

    // The bot signs under permission 2.
    let mut contract = TxContract::new(delegate(&pool, &renter, 1_000 * TRX, false, 0));
    contract.permission_id = 2;
    let tx = SignedTransaction::sign(build_contract(&client, contract.clone()).await, &bot);
    assert_eq!(
        client.broadcast_hex(&tx).await.unwrap().class(),
        BroadcastClass::Accepted
    );
    wait_info(&client, &tx.txid(), Finality::Head).await;

    // The bot's key is not the owner permission.
    let owner_perm = signed(
        &client,
        &bot,
        delegate(&pool, &renter, 1_000 * TRX, false, 0),
    )
    .await;
    let reply = client.broadcast_hex(&owner_perm).await.unwrap();
    assert_eq!(reply.code, ResponseCode::SigError);
    assert_eq!(reply.class(), BroadcastClass::Rejected);
}

#[tokio::test]
async fn staking_by_transaction_works_like_the_admin_call() {
    use prost::Message;
    use tron_adapter::simulator::execute::{FreezeBalanceV2Wire, FREEZE_BALANCE_V2};
    use tron_adapter::tx::{ContractCall, OtherContract};

    let (sim, client) = start(SimConfig::for_tests()).await;
    let owner_key = key("self-staking pool");
    let owner = owner_key.address();
    activate(&sim, &owner, 1_000).await;
    let freeze = ContractCall::Other(OtherContract {
        type_number: FREEZE_BALANCE_V2,
        type_url: "type.googleapis.com/protocol.FreezeBalanceV2Contract".into(),
        value: FreezeBalanceV2Wire {
            owner_address: owner.as_bytes().to_vec(),
            frozen_balance: 400 * TRX,
            resource: 1,
        }
        .encode_to_vec(),
    });
    let tx = signed(&client, &owner_key, freeze).await;
    assert_eq!(
        client.broadcast_hex(&tx).await.unwrap().class(),
        BroadcastClass::Accepted
    );
    wait_info(&client, &tx.txid(), Finality::Head).await;
    let account = client
        .account(&owner, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.frozen_energy, 400 * TRX);
    let resource = client
        .account_resource(&owner, Finality::Head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        resource.energy_limit,
        energy_for_stake(
            400 * TRX,
            resource.total_energy_limit,
            resource.total_energy_weight
        )
    );
}

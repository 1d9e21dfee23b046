//! Running one transaction against the world, as the node's `processTransaction` does:
//! signature against the owner or active permission, the contract's validation (with the node's
//! error texts), bandwidth, then execution. A validation failure changes nothing and comes back as
//! a [`Reject`] with the node's response code; a smart-contract failure (revert, out of energy) is
//! still included, with its fee burned, as the real chain does.

use prost::Message;

use super::contract::{self, UsdtCosts};
use super::resources::{self, DEFAULT_LOCK_PERIOD_BLOCKS, FREE_NET_LIMIT, TRX};
use super::state::{Account, Delegation, World};
use crate::node::ResponseCode;
use crate::tx::{
    ContractCall, DelegateResource, Resource, SignedTransaction, Transfer, TriggerSmart,
    UnDelegateResource,
};
use crate::TronAddress;

/// `FreezeBalanceV2Contract` (type 54), which the transaction module keeps as opaque bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FreezeBalanceV2Wire {
    #[prost(bytes = "vec", tag = "1")]
    pub owner_address: Vec<u8>,
    #[prost(int64, tag = "2")]
    pub frozen_balance: i64,
    #[prost(int32, tag = "3")]
    pub resource: i32,
}

pub const FREEZE_BALANCE_V2: i32 = 54;
/// The node adds this to a transaction's size when charging bandwidth (`MAX_RESULT_SIZE_IN_TX`).
const MAX_RESULT_SIZE_IN_TX: i64 = 64;
/// Largest fee limit the node accepts (sun).
pub const MAX_FEE_LIMIT: i64 = 15_000_000_000;

/// Why the node refused a transaction: its response code and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub code: ResponseCode,
    pub message: String,
}

impl Reject {
    pub fn new(code: ResponseCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `CONTRACT_VALIDATE_ERROR` with the node's prefix.
    pub fn validate(detail: impl AsRef<str>) -> Self {
        Self::new(
            ResponseCode::ContractValidateError,
            format!("Contract validate error : {}", detail.as_ref()),
        )
    }

    /// The bare validation text, as the build endpoints report it inside `{"Error": …}`.
    pub fn detail(&self) -> &str {
        self.message
            .strip_prefix("Contract validate error : ")
            .unwrap_or(&self.message)
    }
}

/// A TRC20-style event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub address: TronAddress,
    pub topics: Vec<[u8; 32]>,
    pub data: Vec<u8>,
}

/// What the chain records about an included transaction (`TransactionInfo` plus `ret`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    pub fee: i64,
    pub net_usage: i64,
    pub net_fee: i64,
    pub energy_usage: i64,
    pub energy_fee: i64,
    pub energy_usage_total: i64,
    pub energy_penalty_total: i64,
    /// `receipt.result` for smart-contract calls: SUCCESS, REVERT, OUT_OF_ENERGY.
    pub result: Option<&'static str>,
    /// `"result": "FAILED"`.
    pub failed: bool,
    pub res_message: Vec<u8>,
    pub contract_result: Vec<u8>,
    pub contract_address: Option<TronAddress>,
    pub logs: Vec<Log>,
}

impl Receipt {
    /// `ret[0].contractRet` of the transaction.
    pub fn contract_ret(&self) -> &'static str {
        self.result.unwrap_or("SUCCESS")
    }
}

/// The addresses allowed to sign for `owner` under `permission_id`.
fn permission_keys(
    world: &World,
    owner: &TronAddress,
    permission_id: i32,
) -> Option<Vec<TronAddress>> {
    match (permission_id, world.accounts.get(owner)) {
        (0, _) => Some(vec![*owner]),
        (2, Some(account)) => Some(account.active_keys.clone()),
        _ => None,
    }
}

/// The signature check (`TransactionCapsule.validateSignature`, threshold 1).
pub fn check_signature(world: &World, tx: &SignedTransaction) -> Result<(), Reject> {
    let sig_error = |detail: String| {
        Reject::new(
            ResponseCode::SigError,
            format!("Validate signature error: {detail}"),
        )
    };
    let contract = &tx.raw.contracts[0];
    let Some(owner) = owner_of(&contract.call) else {
        return Ok(());
    };
    if tx.signatures.is_empty() {
        return Err(sig_error("miss sig or contract".into()));
    }
    let keys = permission_keys(world, &owner, contract.permission_id).ok_or_else(|| {
        sig_error(format!(
            "permission {} does not exist",
            contract.permission_id
        ))
    })?;
    let signers = tx
        .signers()
        .map_err(|e| sig_error(format!("signature is not valid: {e}")))?;
    let mut seen = Vec::new();
    for signer in signers {
        if !keys.contains(&signer) {
            return Err(sig_error(format!(
                "{} is signed by {} but it is not contained of permission.",
                owner.to_hex(),
                signer.to_hex()
            )));
        }
        if seen.contains(&signer) {
            return Err(sig_error(format!("{} has signed twice!", signer.to_hex())));
        }
        seen.push(signer);
    }
    Ok(())
}

/// The owner of a contract call, including the types decoded only here.
pub fn owner_of(call: &ContractCall) -> Option<TronAddress> {
    match call {
        ContractCall::Other(other) if other.type_number == FREEZE_BALANCE_V2 => {
            FreezeBalanceV2Wire::decode(other.value.as_slice())
                .ok()
                .and_then(|m| TronAddress::from_slice(&m.owner_address).ok())
        }
        other => other.owner(),
    }
}

/// Validates and applies `tx` (already checked for TAPOS, expiration and duplicates).
pub fn process(
    world: &mut World,
    tx: &SignedTransaction,
    costs: &UsdtCosts,
) -> Result<Receipt, Reject> {
    if tx.raw.contracts.len() != 1 {
        return Err(Reject::validate(
            "act size should be exactly 1, this is extend feature",
        ));
    }
    check_signature(world, tx)?;
    let call = &tx.raw.contracts[0].call;
    validate(world, call, tx.raw.fee_limit)?;
    let bytes = bandwidth_bytes(tx);
    let mut receipt = Receipt::default();
    charge_bandwidth(world, call, bytes, &mut receipt)?;
    execute(world, call, tx.raw.fee_limit, costs, &mut receipt);
    // `execute` left the system-contract fee (a new account's 1 TRX) in `fee`.
    receipt.fee += receipt.net_fee + receipt.energy_fee;
    Ok(receipt)
}

/// The size the node charges: the transaction without `ret`, plus the result allowance.
fn bandwidth_bytes(tx: &SignedTransaction) -> i64 {
    let mut bare = tx.clone();
    bare.ret.clear();
    bare.encode().len() as i64 + MAX_RESULT_SIZE_IN_TX
}

/// The contract's own validation, without changing anything (also what the build endpoints run).
pub fn validate(world: &World, call: &ContractCall, fee_limit: i64) -> Result<(), Reject> {
    match call {
        ContractCall::Transfer(t) => validate_transfer(world, t),
        ContractCall::DelegateResource(d) => validate_delegate(world, d),
        ContractCall::UnDelegateResource(u) => validate_undelegate(world, u),
        ContractCall::TriggerSmart(t) => validate_trigger(world, t, fee_limit),
        ContractCall::Other(o) if o.type_number == FREEZE_BALANCE_V2 => {
            let m = FreezeBalanceV2Wire::decode(o.value.as_slice())
                .map_err(|e| Reject::validate(e.to_string()))?;
            let owner = TronAddress::from_slice(&m.owner_address)
                .map_err(|_| Reject::validate("Invalid address"))?;
            validate_freeze(
                world,
                &owner,
                m.frozen_balance,
                Resource::from_number(m.resource),
            )
        }
        ContractCall::Other(o) => Err(Reject::validate(format!(
            "contract type {} is not supported by the simulator",
            o.type_number
        ))),
    }
}

fn not_exists(address: &TronAddress) -> String {
    format!("Account[{}] not exists", address.to_hex())
}

fn validate_transfer(world: &World, t: &Transfer) -> Result<(), Reject> {
    let owner = world
        .accounts
        .get(&t.owner)
        .ok_or_else(|| Reject::validate("Validate TransferContract error, no OwnerAccount."))?;
    if t.amount <= 0 {
        return Err(Reject::validate("Amount must be greater than 0."));
    }
    if t.to == t.owner {
        return Err(Reject::validate("Cannot transfer TRX to yourself."));
    }
    let fee = if world.accounts.contains_key(&t.to) {
        0
    } else {
        world.params.create_account_fee_system
    };
    if owner.balance < t.amount.saturating_add(fee) {
        return Err(Reject::validate(
            "Validate TransferContract error, balance is not sufficient.",
        ));
    }
    Ok(())
}

pub fn validate_freeze(
    world: &World,
    owner: &TronAddress,
    amount: i64,
    resource: Resource,
) -> Result<(), Reject> {
    let account = world
        .accounts
        .get(owner)
        .ok_or_else(|| Reject::validate(not_exists(owner)))?;
    if amount < TRX {
        return Err(Reject::validate(
            "frozenBalance must be greater than or equal to 1 TRX",
        ));
    }
    if amount > account.balance {
        return Err(Reject::validate(
            "frozenBalance must be less than or equal to accountBalance",
        ));
    }
    if !matches!(resource, Resource::Energy | Resource::Bandwidth) {
        return Err(Reject::validate(
            "ResourceCode error, valid ResourceCode[BANDWIDTH、ENERGY]",
        ));
    }
    Ok(())
}

fn validate_delegate(world: &World, d: &DelegateResource) -> Result<(), Reject> {
    let owner = world
        .accounts
        .get(&d.owner)
        .ok_or_else(|| Reject::validate(not_exists(&d.owner)))?;
    if d.balance < TRX {
        return Err(Reject::validate(
            "delegateBalance must be greater than or equal to 1 TRX",
        ));
    }
    match d.resource {
        Resource::Energy => {
            if world.can_delegate_energy(owner) < d.balance {
                return Err(Reject::validate(
                    "delegateBalance must be less than or equal to available FreezeEnergyV2 balance",
                ));
            }
        }
        Resource::Bandwidth => {
            if world.can_delegate_bandwidth(owner) < d.balance {
                return Err(Reject::validate(
                    "delegateBalance must be less than or equal to available FreezeBandwidthV2 balance",
                ));
            }
        }
        _ => {
            return Err(Reject::validate(
                "ResourceCode error, valid ResourceCode[BANDWIDTH、ENERGY]",
            ))
        }
    }
    if d.receiver == d.owner {
        return Err(Reject::validate(
            "receiverAddress must not be the same as ownerAddress",
        ));
    }
    let receiver = world
        .accounts
        .get(&d.receiver)
        .ok_or_else(|| Reject::validate(not_exists(&d.receiver)))?;
    if d.lock {
        let period = lock_period(d.lock_period);
        let max = world.params.max_delegate_lock_period;
        if period < 0 || period > max {
            return Err(Reject::validate(format!(
                "The lock period of delegate resource cannot be less than 0 and cannot exceed {max}!"
            )));
        }
        if let Some(record) = world.delegations.get(&(d.owner, d.receiver, true)) {
            let (name, expire) = match d.resource {
                Resource::Energy => ("ENERGY", record.energy_expire),
                _ => ("BANDWIDTH", record.bandwidth_expire),
            };
            let remain = expire - world.latest_block_ts;
            if period.saturating_mul(resources::SLOT_MS) < remain {
                return Err(Reject::validate(format!(
                    "The lock period for {name} this time cannot be less than the remaining \
                     time[{remain}ms] of the last lock period for {name}!"
                )));
            }
        }
    }
    if receiver.is_contract {
        return Err(Reject::validate(
            "Do not allow delegate resources to contract addresses",
        ));
    }
    Ok(())
}

fn lock_period(requested: i64) -> i64 {
    if requested == 0 {
        DEFAULT_LOCK_PERIOD_BLOCKS
    } else {
        requested
    }
}

fn validate_undelegate(world: &World, u: &UnDelegateResource) -> Result<(), Reject> {
    if !world.accounts.contains_key(&u.owner) {
        return Err(Reject::validate(format!(
            "Account[{}] does not exist",
            u.owner.to_hex()
        )));
    }
    if u.receiver == u.owner {
        return Err(Reject::validate(
            "receiverAddress must not be the same as ownerAddress",
        ));
    }
    let unlocked = world.delegations.get(&(u.owner, u.receiver, false));
    let locked = world.delegations.get(&(u.owner, u.receiver, true));
    if unlocked.is_none() && locked.is_none() {
        return Err(Reject::validate("delegated Resource does not exist"));
    }
    if u.balance <= 0 {
        return Err(Reject::validate(
            "unDelegateBalance must be more than 0 TRX",
        ));
    }
    let now = world.latest_block_ts;
    let pick = |d: &Delegation, energy: bool| -> (i64, i64) {
        if energy {
            (d.energy, d.energy_expire)
        } else {
            (d.bandwidth, d.bandwidth_expire)
        }
    };
    let energy = match u.resource {
        Resource::Energy => true,
        Resource::Bandwidth => false,
        _ => {
            return Err(Reject::validate(
                "ResourceCode error.valid ResourceCode[BANDWIDTH、Energy]",
            ))
        }
    };
    let mut available = unlocked.map(|d| pick(d, energy).0).unwrap_or(0);
    if let Some(d) = locked {
        let (balance, expire) = pick(d, energy);
        if expire < now {
            available += balance;
        }
    }
    if available < u.balance {
        let what = if energy {
            "insufficient delegateFrozenBalance(Energy)"
        } else {
            "insufficient delegatedFrozenBalance(BANDWIDTH)"
        };
        return Err(Reject::validate(format!(
            "{what}, request={}, unlock_balance={available}",
            u.balance
        )));
    }
    Ok(())
}

fn validate_trigger(world: &World, t: &TriggerSmart, fee_limit: i64) -> Result<(), Reject> {
    if !world.accounts.contains_key(&t.owner) {
        return Err(Reject::validate(format!(
            "Validate InternalTransfer error, no OwnerAccount: {}",
            t.owner.to_hex()
        )));
    }
    if !world
        .accounts
        .get(&t.contract)
        .is_some_and(|a| a.is_contract)
    {
        return Err(Reject::validate(
            "No contract or not a valid smart contract",
        ));
    }
    if !(0..=MAX_FEE_LIMIT).contains(&fee_limit) {
        return Err(Reject::validate(format!(
            "feeLimit must be >= 0 and <= {MAX_FEE_LIMIT}"
        )));
    }
    if t.call_value != 0 || t.call_token_value != 0 {
        return Err(Reject::validate(
            "the simulator's contracts take no TRX or TRC10 value",
        ));
    }
    Ok(())
}

/// Charges bandwidth: a new account's creation fee, else staked bandwidth, else the free daily
/// allowance, else burned TRX. Refuses with `BANDWITH_ERROR` when the owner cannot pay.
fn charge_bandwidth(
    world: &mut World,
    call: &ContractCall,
    bytes: i64,
    receipt: &mut Receipt,
) -> Result<(), Reject> {
    let Some(owner) = owner_of(call) else {
        return Ok(());
    };
    let insufficient = || {
        Reject::new(
            ResponseCode::BandwithError,
            "Account resource insufficient error.",
        )
    };
    let now = world.now_slot();
    let Some(account) = world.accounts.get(&owner).cloned() else {
        return Err(insufficient());
    };
    let creates_account =
        matches!(call, ContractCall::Transfer(t) if !world.accounts.contains_key(&t.to));
    let mut updated = account.clone();
    if creates_account {
        let fee = world.params.create_account_fee;
        if updated.balance < fee {
            return Err(insufficient());
        }
        updated.balance -= fee;
        receipt.net_fee = fee;
    } else {
        let staked_left = world.net_limit(&account) - world.net_used(&account);
        let free_left = FREE_NET_LIMIT - world.free_net_used(&account);
        if bytes <= staked_left {
            updated.net_usage =
                resources::increase(account.net_usage, bytes, account.net_slot, now);
            updated.net_slot = now;
            receipt.net_usage = bytes;
        } else if bytes <= free_left {
            updated.free_net_usage =
                resources::increase(account.free_net_usage, bytes, account.free_net_slot, now);
            updated.free_net_slot = now;
            receipt.net_usage = bytes;
        } else {
            let fee = bytes * world.params.transaction_fee;
            if updated.balance < fee {
                return Err(insufficient());
            }
            updated.balance -= fee;
            receipt.net_fee = fee;
        }
    }
    world.accounts.insert(owner, updated);
    Ok(())
}

fn execute(
    world: &mut World,
    call: &ContractCall,
    fee_limit: i64,
    costs: &UsdtCosts,
    receipt: &mut Receipt,
) {
    match call {
        ContractCall::Transfer(t) => {
            let now = world.latest_block_ts;
            let mut fee = 0;
            if !world.accounts.contains_key(&t.to) {
                fee = world.params.create_account_fee_system;
                world.accounts.insert(t.to, Account::new(t.to, 0, now));
            }
            if let Some(owner) = world.accounts.get_mut(&t.owner) {
                owner.balance -= t.amount + fee;
            }
            if let Some(to) = world.accounts.get_mut(&t.to) {
                to.balance += t.amount;
            }
            receipt.fee = fee;
        }
        ContractCall::DelegateResource(d) => execute_delegate(world, d),
        ContractCall::UnDelegateResource(u) => execute_undelegate(world, u),
        ContractCall::TriggerSmart(t) => contract::call(world, t, fee_limit, costs, receipt),
        ContractCall::Other(o) => {
            if let Ok(m) = FreezeBalanceV2Wire::decode(o.value.as_slice()) {
                if let Ok(owner) = TronAddress::from_slice(&m.owner_address) {
                    freeze(
                        world,
                        &owner,
                        m.frozen_balance,
                        Resource::from_number(m.resource),
                    );
                }
            }
        }
    }
}

/// FreezeBalanceV2: balance into stake (validated by [`validate_freeze`]).
pub fn freeze(world: &mut World, owner: &TronAddress, amount: i64, resource: Resource) {
    if let Some(account) = world.accounts.get_mut(owner) {
        account.balance -= amount;
        match resource {
            Resource::Bandwidth => account.frozen_bandwidth += amount,
            _ => account.frozen_energy += amount,
        }
    }
}

fn execute_delegate(world: &mut World, d: &DelegateResource) {
    world.unlock_expired(d.owner, d.receiver);
    let now = world.latest_block_ts;
    let expire = if d.lock {
        now + lock_period(d.lock_period) * resources::SLOT_MS
    } else {
        0
    };
    let energy = d.resource == Resource::Energy;
    let record = world
        .delegations
        .entry((d.owner, d.receiver, d.lock))
        .or_default();
    if energy {
        record.energy += d.balance;
        record.energy_expire = expire;
    } else {
        record.bandwidth += d.balance;
        record.bandwidth_expire = expire;
    }
    if let Some(owner) = world.accounts.get_mut(&d.owner) {
        if energy {
            owner.delegated_energy += d.balance;
            owner.frozen_energy -= d.balance;
        } else {
            owner.delegated_bandwidth += d.balance;
            owner.frozen_bandwidth -= d.balance;
        }
    }
    if let Some(receiver) = world.accounts.get_mut(&d.receiver) {
        if energy {
            receiver.acquired_energy += d.balance;
        } else {
            receiver.acquired_bandwidth += d.balance;
        }
    }
}

fn execute_undelegate(world: &mut World, u: &UnDelegateResource) {
    let energy = u.resource == Resource::Energy;
    let now_slot = world.now_slot();
    let total_weight = world.total_energy_weight();
    let total_limit = world.params.total_energy_limit;
    // The receiver keeps no more than its share of the usage; the rest moves to the owner.
    let mut transfer_usage = 0;
    if let Some(receiver) = world.accounts.get(&u.receiver).cloned() {
        let mut receiver = receiver;
        if energy {
            receiver.energy_usage =
                resources::recover(receiver.energy_usage, receiver.energy_slot, now_slot);
            receiver.energy_slot = now_slot;
            if receiver.acquired_energy < u.balance {
                receiver.acquired_energy = 0;
            } else {
                let max_usage = (u.balance as f64 / TRX as f64
                    * (total_limit as f64 / total_weight.max(1) as f64))
                    as i64;
                let all = receiver.energy_stake().max(1);
                transfer_usage =
                    ((receiver.energy_usage as f64) * (u.balance as f64 / all as f64)) as i64;
                transfer_usage = transfer_usage.min(max_usage);
                receiver.acquired_energy -= u.balance;
            }
            receiver.energy_usage -= transfer_usage;
        } else {
            receiver.acquired_bandwidth = (receiver.acquired_bandwidth - u.balance).max(0);
        }
        world.accounts.insert(u.receiver, receiver);
    }
    world.unlock_expired(u.owner, u.receiver);
    let key = (u.owner, u.receiver, false);
    if let Some(record) = world.delegations.get_mut(&key) {
        if energy {
            record.energy -= u.balance;
        } else {
            record.bandwidth -= u.balance;
        }
        if record.energy <= 0 && record.bandwidth <= 0 {
            world.delegations.remove(&key);
        }
    }
    if let Some(owner) = world.accounts.get_mut(&u.owner) {
        if energy {
            owner.delegated_energy -= u.balance;
            owner.frozen_energy += u.balance;
            if transfer_usage > 0 {
                owner.energy_usage =
                    resources::recover(owner.energy_usage, owner.energy_slot, now_slot)
                        + transfer_usage;
                owner.energy_slot = now_slot;
            }
        } else {
            owner.delegated_bandwidth -= u.balance;
            owner.frozen_bandwidth += u.balance;
        }
    }
}

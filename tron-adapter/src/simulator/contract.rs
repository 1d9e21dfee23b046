//! The one smart contract the simulator runs: a USDT-like TRC20 token at a configured address.
//! `transfer(address,uint256)` moves balances, emits `Transfer(from, to, value)` and costs the
//! energy mainnet USDT costs (more for a recipient holding nothing); `balanceOf(address)` and
//! `decimals()` answer constant calls. Energy comes from the caller's stake first, then TRX is
//! burned up to the fee limit; running out is `OUT_OF_ENERGY` with the fee still burned.

use super::execute::{Log, Receipt};
use super::resources;
use super::state::World;
use crate::trc20::{BALANCE_OF_SELECTOR, TRANSFER_SELECTOR, TRANSFER_TOPIC};
use crate::tx::TriggerSmart;
use crate::TronAddress;

/// keccak256("decimals()")[..4].
pub const DECIMALS_SELECTOR: [u8; 4] = [0x31, 0x3c, 0xe5, 0x67];

/// Energy a USDT call costs. Mainnet receipts show 64,285 for a recipient that already holds
/// USDT and 130,285 for a first-time recipient, dynamic-energy penalty included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtCosts {
    pub transfer_existing: i64,
    pub penalty_existing: i64,
    pub transfer_new: i64,
    pub penalty_new: i64,
    /// A transfer that reverts (amount above the balance).
    pub revert: i64,
    /// `balanceOf` / `decimals` (what `triggerconstantcontract` reports as `energy_used`).
    pub constant: i64,
}

impl Default for UsdtCosts {
    fn default() -> Self {
        Self {
            transfer_existing: 64_285,
            penalty_existing: 49_635,
            transfer_new: 130_285,
            penalty_new: 100_635,
            revert: 9_000,
            constant: 935,
        }
    }
}

fn word_of_address(address: &TronAddress) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[12..].copy_from_slice(&address.evm_bytes());
    word
}

fn word_of_amount(amount: u128) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[16..].copy_from_slice(&amount.to_be_bytes());
    word
}

/// An address argument: the low 20 bytes of a word whose high bytes are zero (or 0x41 in byte
/// 11, as some wallets write it).
fn address_arg(word: &[u8]) -> Option<TronAddress> {
    if word.len() != 32 || word[..11].iter().any(|b| *b != 0) || !matches!(word[11], 0 | 0x41) {
        return None;
    }
    let mut evm = [0u8; 20];
    evm.copy_from_slice(&word[12..]);
    Some(TronAddress::from_evm_bytes(evm))
}

fn amount_arg(word: &[u8]) -> Option<u128> {
    if word.len() != 32 || word[..16].iter().any(|b| *b != 0) {
        return None;
    }
    let mut low = [0u8; 16];
    low.copy_from_slice(&word[16..]);
    Some(u128::from_be_bytes(low))
}

/// What a read-only call returns: the output word, or a revert.
pub enum ConstantResult {
    Output(Vec<u8>),
    Revert,
}

/// `triggerconstantcontract`: `balanceOf(address)` or `decimals()`; anything else reverts.
pub fn constant_call(world: &World, data: &[u8]) -> ConstantResult {
    if data.len() == 36 && data[..4] == BALANCE_OF_SELECTOR {
        if let Some(holder) = address_arg(&data[4..36]) {
            return ConstantResult::Output(word_of_amount(world.usdt_balance(&holder)).to_vec());
        }
    }
    if data.len() == 4 && data[..4] == DECIMALS_SELECTOR {
        return ConstantResult::Output(word_of_amount(6).to_vec());
    }
    ConstantResult::Revert
}

/// Runs a `TriggerSmartContract` against the token (validated already: the contract exists and
/// the fee limit is in range).
pub fn call(
    world: &mut World,
    t: &TriggerSmart,
    fee_limit: i64,
    costs: &UsdtCosts,
    receipt: &mut Receipt,
) {
    receipt.contract_address = Some(t.contract);
    enum Outcome {
        Transfer { to: TronAddress, amount: u128 },
        Read,
        Revert,
    }
    let outcome = if t.contract != world.usdt_contract {
        Outcome::Revert
    } else if t.data.len() == 68 && t.data[..4] == TRANSFER_SELECTOR {
        match (address_arg(&t.data[4..36]), amount_arg(&t.data[36..68])) {
            (Some(to), Some(amount)) if amount <= world.usdt_balance(&t.owner) => {
                Outcome::Transfer { to, amount }
            }
            _ => Outcome::Revert,
        }
    } else if matches!(constant_call(world, &t.data), ConstantResult::Output(_)) {
        Outcome::Read
    } else {
        Outcome::Revert
    };
    let (needed, penalty) = match &outcome {
        Outcome::Transfer { to, .. } if world.usdt_balance(to) > 0 => {
            (costs.transfer_existing, costs.penalty_existing)
        }
        Outcome::Transfer { .. } => (costs.transfer_new, costs.penalty_new),
        Outcome::Read => (costs.constant, 0),
        Outcome::Revert => (costs.revert, 0),
    };

    // Energy: the caller's own first, then TRX burned within the fee limit.
    let now_slot = world.now_slot();
    let price = world.params.energy_fee.max(1);
    let Some(owner) = world.accounts.get(&t.owner).cloned() else {
        return;
    };
    let own_available = (world.energy_limit(&owner) - world.energy_used(&owner)).max(0);
    let burnable = fee_limit.min(owner.balance).max(0) / price;
    let (own_used, burned, out_of_energy) = if needed > own_available + burnable {
        (own_available, burnable, true)
    } else {
        let own = needed.min(own_available);
        (own, needed - own, false)
    };
    let mut owner = owner;
    if own_used > 0 {
        owner.energy_usage =
            resources::increase(owner.energy_usage, own_used, owner.energy_slot, now_slot);
        owner.energy_slot = now_slot;
    }
    owner.balance -= burned * price;
    world.accounts.insert(t.owner, owner);
    receipt.energy_usage = own_used;
    receipt.energy_fee = burned * price;
    receipt.energy_usage_total = own_used + burned;

    if out_of_energy {
        receipt.result = Some("OUT_OF_ENERGY");
        receipt.failed = true;
        receipt.res_message = format!(
            "Not enough energy for 'SSTORE' operation executing: curInvokeEnergyLimit[{}], \
             curOpEnergy[20000], usedEnergy[{}]",
            own_available + burnable,
            own_available + burnable
        )
        .into_bytes();
        return;
    }
    match outcome {
        Outcome::Transfer { to, amount } => {
            *world.usdt.entry(t.owner).or_default() -= amount;
            *world.usdt.entry(to).or_default() += amount;
            receipt.result = Some("SUCCESS");
            receipt.energy_penalty_total = penalty;
            // Mainnet USDT's transfer leaves a zero word in contractResult (tx_info.json).
            receipt.contract_result = vec![0u8; 32];
            receipt.logs.push(Log {
                address: t.contract,
                topics: vec![
                    TRANSFER_TOPIC,
                    word_of_address(&t.owner),
                    word_of_address(&to),
                ],
                data: word_of_amount(amount).to_vec(),
            });
        }
        Outcome::Read => {
            receipt.result = Some("SUCCESS");
            if let ConstantResult::Output(word) = constant_call(world, &t.data) {
                receipt.contract_result = word;
            }
        }
        Outcome::Revert => {
            receipt.result = Some("REVERT");
            receipt.failed = true;
            receipt.res_message = b"REVERT opcode executed".to_vec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::keccak256;

    #[test]
    fn the_decimals_selector_is_keccak_of_its_signature() {
        assert_eq!(keccak256(b"decimals()")[..4], DECIMALS_SELECTOR);
    }
}

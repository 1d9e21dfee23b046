//! What a block pays: every TRX `TransferContract` and every USDT `Transfer` log in it, read
//! from the block and its receipts. Pure: no IO, no judgement about whose address it is.
//!
//! - A TRX transfer counts when its transaction succeeded (`ret[0].contractRet` SUCCESS, or
//!   absent: a system contract in a block either applied or was not packed) and it is the
//!   transaction's only contract. Its deposit id is the txID.
//! - A USDT transfer counts when the receipt succeeded (no `FAILED`, `receipt.result` SUCCESS)
//!   and the log was emitted by the configured USDT contract: any other contract can emit a
//!   log with the same topic. Its deposit id is `txid:log_index`, the index in the receipt's
//!   `log` list. The calldata is never read: only the log says what moved.
//! - A log of another contract is never parsed, so a token with a different `Transfer` shape
//!   (TRC721 has four topics) cannot stop the scan. A log of the USDT contract that does not
//!   parse is the node answering garbage: an error, and the block is read again later.

use std::collections::HashMap;

use engine::domain::Asset;

use crate::node::{NodeBlock, NodeError, TransactionInfo};
use crate::trc20::{self, LogEntry};
use crate::tx::{ContractCall, TxId};
use crate::TronAddress;

/// One incoming transfer as the block shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenTransfer {
    pub txid: TxId,
    /// The `Transfer` log's index for USDT; none for TRX.
    pub log_index: Option<u32>,
    pub asset: Asset,
    /// Sun for TRX, base units (10^-6) for USDT.
    pub amount: u128,
    pub from: TronAddress,
    pub to: TronAddress,
    pub block_number: u64,
    /// The transaction's expiration (ms since the epoch): after a block this late, no block can
    /// include it any more.
    pub expiration_ms: i64,
}

impl SeenTransfer {
    /// `<txid>` or `<txid>:<log_index>`, as `engine::domain::DepositId` writes it.
    pub fn deposit_id(&self) -> String {
        match self.log_index {
            Some(i) => format!("{}:{i}", self.txid),
            None => self.txid.to_hex(),
        }
    }
}

/// The block's successful TRX transfers.
pub fn trx_transfers(block: &NodeBlock) -> Vec<SeenTransfer> {
    let mut out = Vec::new();
    for tx in &block.transactions {
        if tx.contract_ret.as_deref().is_some_and(|r| r != "SUCCESS") {
            continue;
        }
        let [contract] = tx.raw.contracts.as_slice() else {
            continue;
        };
        let ContractCall::Transfer(t) = &contract.call else {
            continue;
        };
        if t.amount <= 0 {
            continue;
        }
        out.push(SeenTransfer {
            txid: tx.txid,
            log_index: None,
            asset: Asset::Trx,
            amount: t.amount as u128,
            from: t.owner,
            to: t.to,
            block_number: block.number,
            expiration_ms: tx.raw.expiration,
        });
    }
    out
}

/// Whether the block holds a smart-contract call, i.e. whether its receipts can carry logs.
pub fn has_contract_calls(block: &NodeBlock) -> bool {
    block.transactions.iter().any(|tx| {
        tx.raw
            .contracts
            .iter()
            .any(|c| matches!(c.call, ContractCall::TriggerSmart(_)))
    })
}

/// The contract that emitted a log (`address` is 20 bytes of hex, or 21 with 0x41); `None`
/// when it is not an address at all.
pub fn log_contract(log: &LogEntry) -> Option<TronAddress> {
    let bytes = crate::hexstr::decode("log address", &log.address).ok()?;
    match bytes.len() {
        20 => {
            let mut evm = [0u8; 20];
            evm.copy_from_slice(&bytes);
            Some(TronAddress::from_evm_bytes(evm))
        }
        21 => TronAddress::from_slice(&bytes).ok(),
        _ => None,
    }
}

fn malformed(endpoint: &str, reason: String) -> NodeError {
    NodeError::Malformed {
        endpoint: endpoint.to_string(),
        reason,
    }
}

/// The block's successful USDT `Transfer` logs, from its receipts (`endpoint` names where the
/// receipts came from, for errors). Every receipt must belong to this block.
pub fn usdt_transfers(
    block: &NodeBlock,
    receipts: &[TransactionInfo],
    usdt: &TronAddress,
    endpoint: &str,
) -> Result<Vec<SeenTransfer>, NodeError> {
    let expirations: HashMap<TxId, i64> = block
        .transactions
        .iter()
        .map(|tx| (tx.txid, tx.raw.expiration))
        .collect();
    let mut out = Vec::new();
    for info in receipts {
        if info.block_number != block.number {
            return Err(malformed(
                endpoint,
                format!(
                    "receipt of {} says block {}, asked for block {}",
                    info.id, info.block_number, block.number
                ),
            ));
        }
        let Some(&expiration_ms) = expirations.get(&info.id) else {
            return Err(malformed(
                endpoint,
                format!(
                    "receipt of {} is not a transaction of block {}",
                    info.id, block.number
                ),
            ));
        };
        if !info.succeeded() {
            continue;
        }
        for (index, log) in info.logs.iter().enumerate() {
            if log_contract(log).as_ref() != Some(usdt) {
                continue;
            }
            let transfer = match trc20::parse_transfer_log(log) {
                Ok(Some(t)) => t,
                Ok(None) => continue, // another event of the token (Approval, …)
                Err(e) => {
                    return Err(malformed(
                        endpoint,
                        format!("USDT log {index} of {}: {e}", info.id),
                    ))
                }
            };
            if transfer.amount == 0 {
                continue;
            }
            let log_index = u32::try_from(index)
                .map_err(|_| malformed(endpoint, format!("{} has too many logs", info.id)))?;
            out.push(SeenTransfer {
                txid: info.id,
                log_index: Some(log_index),
                asset: Asset::Usdt,
                amount: transfer.amount,
                from: transfer.from,
                to: transfer.to,
                block_number: block.number,
                expiration_ms,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{NodeTransaction, Receipt};
    use crate::trc20::TRANSFER_TOPIC;
    use crate::tx::{self, TxContract, TxParams};

    fn addr(n: u8) -> TronAddress {
        TronAddress::from_evm_bytes([n; 20])
    }

    fn node_tx(call: ContractCall, ret: Option<&str>) -> NodeTransaction {
        let mut params = TxParams::new(tx::RefBlock::from_block_id(&[7u8; 32]), 1_000);
        params.expiration = 61_000;
        let raw = tx::build(TxContract::new(call), &params).unwrap();
        NodeTransaction {
            txid: raw.txid(),
            raw,
            signatures: Vec::new(),
            contract_ret: ret.map(str::to_string),
        }
    }

    fn block(number: u64, transactions: Vec<NodeTransaction>) -> NodeBlock {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&number.to_be_bytes());
        NodeBlock {
            id,
            number,
            parent: [0u8; 32],
            timestamp: 3_000,
            witness: None,
            transactions,
        }
    }

    fn word(address: &TronAddress) -> String {
        format!("{}{}", "0".repeat(24), hex::encode(address.evm_bytes()))
    }

    fn transfer_log(
        contract: &TronAddress,
        from: &TronAddress,
        to: &TronAddress,
        v: u128,
    ) -> LogEntry {
        LogEntry {
            address: hex::encode(contract.evm_bytes()),
            topics: vec![hex::encode(TRANSFER_TOPIC), word(from), word(to)],
            data: format!("{v:064x}"),
        }
    }

    fn info(txid: TxId, number: u64, logs: Vec<LogEntry>, result: Option<&str>) -> TransactionInfo {
        TransactionInfo {
            id: txid,
            fee: 0,
            block_number: number,
            block_timestamp: 3_000,
            contract_result: Vec::new(),
            contract_address: None,
            receipt: Receipt {
                result: result.map(str::to_string),
                ..Receipt::default()
            },
            logs,
            failed: result.is_some_and(|r| r != "SUCCESS"),
            res_message: None,
            unfreeze_amount: 0,
            withdraw_amount: 0,
            withdraw_expire_amount: 0,
        }
    }

    fn trigger(owner: &TronAddress, contract: &TronAddress) -> ContractCall {
        ContractCall::TriggerSmart(tx::TriggerSmart {
            owner: *owner,
            contract: *contract,
            call_value: 0,
            data: trc20::transfer_calldata(&addr(9), 5),
            call_token_value: 0,
            token_id: 0,
        })
    }

    #[test]
    fn a_successful_trx_transfer_is_seen_with_its_txid_and_expiration() {
        let call = ContractCall::Transfer(tx::Transfer {
            owner: addr(1),
            to: addr(2),
            amount: 7_000_000,
        });
        let t = node_tx(call, Some("SUCCESS"));
        let seen = trx_transfers(&block(12, vec![t.clone()]));
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].deposit_id(), t.txid.to_hex());
        assert_eq!(seen[0].amount, 7_000_000);
        assert_eq!(seen[0].asset, Asset::Trx);
        assert_eq!((seen[0].from, seen[0].to), (addr(1), addr(2)));
        assert_eq!(seen[0].block_number, 12);
        assert_eq!(seen[0].expiration_ms, 61_000);
    }

    #[test]
    fn a_trx_transfer_that_did_not_succeed_is_not_seen() {
        let call = ContractCall::Transfer(tx::Transfer {
            owner: addr(1),
            to: addr(2),
            amount: 7,
        });
        assert!(trx_transfers(&block(1, vec![node_tx(call, Some("REVERT"))])).is_empty());
    }

    #[test]
    fn only_logs_of_the_usdt_contract_count_and_each_keeps_its_index() {
        let usdt = addr(0xaa);
        let fake = addr(0xbb);
        let t = node_tx(trigger(&addr(1), &usdt), Some("SUCCESS"));
        let logs = vec![
            transfer_log(&fake, &addr(1), &addr(2), 99),
            transfer_log(&usdt, &addr(1), &addr(2), 25),
            // A TRC721-shaped Transfer of another contract (four topics) is never parsed.
            LogEntry {
                topics: vec![
                    hex::encode(TRANSFER_TOPIC),
                    word(&addr(1)),
                    word(&addr(2)),
                    word(&addr(3)),
                ],
                ..transfer_log(&fake, &addr(1), &addr(2), 0)
            },
            transfer_log(&usdt, &addr(1), &addr(3), 30),
        ];
        let b = block(5, vec![t.clone()]);
        assert!(has_contract_calls(&b));
        let seen =
            usdt_transfers(&b, &[info(t.txid, 5, logs, Some("SUCCESS"))], &usdt, "test").unwrap();
        let ids: Vec<String> = seen.iter().map(SeenTransfer::deposit_id).collect();
        assert_eq!(ids, vec![format!("{}:1", t.txid), format!("{}:3", t.txid)]);
        assert_eq!((seen[0].to, seen[0].amount), (addr(2), 25));
        assert_eq!((seen[1].to, seen[1].amount), (addr(3), 30));
        assert!(seen
            .iter()
            .all(|s| s.asset == Asset::Usdt && s.expiration_ms == 61_000));
    }

    #[test]
    fn a_failed_usdt_call_pays_nothing() {
        let usdt = addr(0xaa);
        let t = node_tx(trigger(&addr(1), &usdt), Some("REVERT"));
        let logs = vec![transfer_log(&usdt, &addr(1), &addr(2), 25)];
        let seen = usdt_transfers(
            &block(5, vec![t.clone()]),
            &[info(t.txid, 5, logs, Some("REVERT"))],
            &usdt,
            "test",
        )
        .unwrap();
        assert!(seen.is_empty());
    }

    #[test]
    fn a_receipt_from_another_block_or_a_garbled_usdt_log_is_an_error() {
        let usdt = addr(0xaa);
        let t = node_tx(trigger(&addr(1), &usdt), Some("SUCCESS"));
        let b = block(5, vec![t.clone()]);
        let wrong_block = info(t.txid, 6, Vec::new(), Some("SUCCESS"));
        assert!(usdt_transfers(&b, &[wrong_block], &usdt, "test").is_err());
        let stranger = info(TxId([3u8; 32]), 5, Vec::new(), Some("SUCCESS"));
        assert!(usdt_transfers(&b, &[stranger], &usdt, "test").is_err());
        let mut garbled = transfer_log(&usdt, &addr(1), &addr(2), 25);
        garbled.data = "00".into();
        let garbled = info(t.txid, 5, vec![garbled], Some("SUCCESS"));
        assert!(usdt_transfers(&b, &[garbled], &usdt, "test").is_err());
    }
}

//! The deposit watcher (docs/deposits.md): TRX `TransferContract`s and USDT `Transfer` logs to
//! our deposit addresses, detected from included blocks and confirmed only from solidified ones.
//! Crediting is the engine's `DepositFlow` (DepositConfirmed → Account.CreditDeposit →
//! Deposit.MarkCredited).
//!
//! Each pass ([`DepositWatcher::scan_once`]):
//! 1. **Solid**: reads the blocks from the `deposits:solid` cursor up to the node's solid block
//!    on `/walletsolidity/…`; each of our transfers is detected (if the head pass missed it) and
//!    confirmed. Then the deposits detected earlier whose block the solid view has passed
//!    without them are looked for again: in a later block, they wait for it; in no block and
//!    expired by the solid block's time (no block can take them any more), they are rejected as
//!    `Vanished`; included but failed, as `FailedOnChain`.
//! 2. **Head**: reads the blocks from the `deposits:head` cursor (never below the solid cursor)
//!    up to the head on `/wallet/…`, and detects our transfers there. When the block under the
//!    cursor is no longer the one it read (a reorganisation), the head cursor goes back to the
//!    solid one and the blocks are read again.
//!
//! A cursor moves only after every transfer of its block has been decided, so a crash re-reads
//! a block. Nothing is credited twice: every command carries an id derived from the deposit id
//! (`derived_command_id`), so a repeat is answered from the command log, and the `Deposit`
//! aggregate refuses a second detection or confirmation, which is taken as "already done".
//!
//! One owner across processes (a Postgres session advisory lock); a standby takes over when
//! the owner's connection goes away.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use engine::domain::{
    AccountId, Amount, DepositCommand, DepositError, DepositId, DepositRejection, TransitionError,
    TxId as DomainTxId,
};
use engine::process::runner::run_owned;
use engine::process::Buses;
use engine::store::{derived_command_id, Actor, CommandMetadata};
use tokio::sync::watch;
use tracing::Instrument;

use super::deposits_scan::{has_contract_calls, trx_transfers, usdt_transfers, SeenTransfer};
use super::deposits_store::{self as store, Cursor, Pending};
use crate::error::Error;
use crate::node::{Finality, NodeBlock, NodeClient};
use crate::TronAddress;

/// The actor, the namespace of command ids, and the ownership lock's name.
pub const NAME: &str = "deposit-watcher";
/// The cursor of the head pass (detection).
pub const HEAD_CURSOR: &str = "deposits:head";
/// The cursor of the solid pass (confirmation).
pub const SOLID_CURSOR: &str = "deposits:solid";
/// Pending deposits looked at again per pass, at most.
const VANISH_CHECKS_PER_PASS: i64 = 200;

/// How the watcher runs.
#[derive(Debug, Clone)]
pub struct DepositWatcherConfig {
    /// The USDT TRC20 contract (mainnet `TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t`; the simulator's
    /// is `SimHandle::usdt_contract()`). Logs of any other contract are ignored.
    pub usdt_contract: TronAddress,
    /// The first block read when the cursors do not exist yet; `None` is the node's solid block
    /// at that moment (a new installation does not read the chain from its genesis).
    pub start_block: Option<u64>,
    /// The pause between passes that found nothing more to read.
    pub poll_interval: Duration,
    /// Blocks read per pass and view, at most (a watcher far behind catches up in steps).
    pub max_blocks_per_pass: u64,
    /// How often a standby tries to take ownership.
    pub standby_retry: Duration,
}

impl DepositWatcherConfig {
    pub fn new(usdt_contract: TronAddress) -> Self {
        Self {
            usdt_contract,
            start_block: None,
            poll_interval: Duration::from_secs(1),
            max_blocks_per_pass: 200,
            standby_retry: Duration::from_secs(1),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Blocks read on the head and on the solidified view.
    pub head_blocks: u64,
    pub solid_blocks: u64,
    /// New `DepositDetected`, `DepositConfirmed` and `DepositRejected` events (repeats of
    /// earlier decisions are not counted).
    pub detected: u64,
    pub confirmed: u64,
    pub rejected: u64,
    /// The head cursor went back because the chain under it changed.
    pub rewound: bool,
    /// A view had more blocks than one pass reads.
    pub behind: bool,
}

/// How a command for a deposit came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decided {
    /// A new event.
    Done,
    /// Decided before (a repeated id, or the aggregate was already past this step).
    Already,
    /// Refused for another reason (logged): nothing to do for this deposit.
    Refused,
}

/// A transfer to one of our addresses.
struct Ours {
    seen: SeenTransfer,
    account_id: AccountId,
    deposit_id: DepositId,
}

pub struct DepositWatcher {
    buses: Arc<Buses>,
    node: NodeClient,
    config: DepositWatcherConfig,
}

fn ms_of(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl DepositWatcher {
    pub fn new(buses: Arc<Buses>, node: NodeClient, config: DepositWatcherConfig) -> Self {
        Self {
            buses,
            node,
            config,
        }
    }

    pub fn config(&self) -> &DepositWatcherConfig {
        &self.config
    }

    /// Runs passes until shutdown, as the one owner across processes (standing by while
    /// another process owns the watcher). A failed pass is retried with backoff; the pass in
    /// hand is finished before returning.
    pub async fn run(&self, shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        let lock_key = format!("adapter:{NAME}");
        // Consecutive failed passes, for the back-off.
        let failures = std::sync::atomic::AtomicU32::new(0);
        let failures = &failures;
        run_owned(
            self.buses.pool(),
            &lock_key,
            self.config.standby_retry,
            shutdown,
            || async {
                match self.scan_once().await {
                    Ok(report) => {
                        failures.store(0, std::sync::atomic::Ordering::Relaxed);
                        if report.behind {
                            Duration::ZERO
                        } else {
                            self.config.poll_interval
                        }
                    }
                    Err(e) => {
                        let n = failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        let wait = Duration::from_millis(100 * 2u64.pow(n.min(6)))
                            .max(self.config.poll_interval);
                        tracing::warn!(worker = NAME, error = %e, retry_in_ms = ms_of(wait),
                            "deposit scan failed; the same blocks will be read again");
                        wait
                    }
                }
            },
        )
        .await?;
        Ok(())
    }

    /// One pass: the solid view, then the head (see the module documentation).
    pub async fn scan_once(&self) -> Result<ScanReport, Error> {
        let mut report = ScanReport::default();
        let info = self.node.node_info().await?;
        let start = self.config.start_block.unwrap_or(info.solid_number);
        let pool = self.buses.pool();
        let solid = store::init_cursor(pool, SOLID_CURSOR, start).await?;
        let head = store::init_cursor(pool, HEAD_CURSOR, start).await?;
        let solid = self
            .solid_pass(solid, info.solid_number, &mut report)
            .instrument(tracing::info_span!("deposit_scan", view = "solid"))
            .await?;
        self.head_pass(head, &solid, info.block_number, &mut report)
            .instrument(tracing::info_span!("deposit_scan", view = "head"))
            .await?;
        if report != ScanReport::default() {
            tracing::debug!(?report, "deposit pass");
        }
        Ok(report)
    }

    async fn solid_pass(
        &self,
        mut cursor: Cursor,
        solid_number: u64,
        report: &mut ScanReport,
    ) -> Result<Cursor, Error> {
        let pool = self.buses.pool();
        let last = solid_number.min(
            cursor
                .next_block
                .saturating_add(self.config.max_blocks_per_pass.max(1) - 1),
        );
        report.behind |= last < solid_number;
        let mut solid_time = None;
        while cursor.next_block <= last {
            let n = cursor.next_block;
            let Some(block) = self.node.block_by_num(n, Finality::Solid).await? else {
                break;
            };
            let span = tracing::info_span!("deposit_block", block = n, view = "solid");
            async {
                for ours in self.ours_in(&block, Finality::Solid).await? {
                    self.settle_solid(&ours, report).await?;
                }
                Ok::<_, Error>(())
            }
            .instrument(span)
            .await?;
            cursor = Cursor {
                next_block: n + 1,
                last_block_id: Some(block.id),
            };
            store::save_cursor(pool, SOLID_CURSOR, &cursor).await?;
            report.solid_blocks += 1;
            solid_time = Some(block.timestamp);
        }
        if let Some(solid_time) = solid_time {
            self.check_vanished(cursor.next_block, solid_time, report)
                .await?;
        }
        Ok(cursor)
    }

    async fn head_pass(
        &self,
        mut cursor: Cursor,
        solid: &Cursor,
        head_number: u64,
        report: &mut ScanReport,
    ) -> Result<(), Error> {
        let pool = self.buses.pool();
        if cursor.next_block <= solid.next_block {
            // The solid pass has read these already, and its block id is final.
            cursor = solid.clone();
        } else if !self.still_there(&cursor).await? {
            self.rewind(solid, report).await?;
            return Ok(());
        }
        let last = head_number.min(
            cursor
                .next_block
                .saturating_add(self.config.max_blocks_per_pass.max(1) - 1),
        );
        report.behind |= last < head_number;
        while cursor.next_block <= last {
            let n = cursor.next_block;
            let Some(block) = self.node.block_by_num(n, Finality::Head).await? else {
                break;
            };
            if cursor.last_block_id.is_some_and(|id| id != block.parent) {
                self.rewind(solid, report).await?;
                return Ok(());
            }
            let span = tracing::info_span!("deposit_block", block = n, view = "head");
            async {
                for ours in self.ours_in(&block, Finality::Head).await? {
                    if self.detect(&ours, report).await? != Decided::Refused {
                        store::upsert_pending(
                            pool,
                            &Pending {
                                deposit_id: ours.deposit_id.clone(),
                                txid: ours.seen.txid,
                                block_number: ours.seen.block_number,
                                expiration_ms: ours.seen.expiration_ms,
                            },
                        )
                        .await?;
                    }
                }
                Ok::<_, Error>(())
            }
            .instrument(span)
            .await?;
            cursor = Cursor {
                next_block: n + 1,
                last_block_id: Some(block.id),
            };
            store::save_cursor(pool, HEAD_CURSOR, &cursor).await?;
            report.head_blocks += 1;
        }
        Ok(())
    }

    /// Whether the block before the head cursor is still the one it read.
    async fn still_there(&self, cursor: &Cursor) -> Result<bool, Error> {
        let Some(expected) = cursor.last_block_id else {
            return Ok(true);
        };
        let previous = cursor.next_block.saturating_sub(1);
        Ok(self
            .node
            .block_by_num(previous, Finality::Head)
            .await?
            .is_some_and(|b| b.id == expected))
    }

    async fn rewind(&self, solid: &Cursor, report: &mut ScanReport) -> Result<(), Error> {
        tracing::warn!(
            back_to = solid.next_block,
            "the chain under the head cursor changed (reorganisation); reading again from the solid block"
        );
        store::save_cursor(self.buses.pool(), HEAD_CURSOR, solid).await?;
        report.rewound = true;
        Ok(())
    }

    /// The transfers of a block to our deposit addresses.
    async fn ours_in(&self, block: &NodeBlock, finality: Finality) -> Result<Vec<Ours>, Error> {
        let mut seen = trx_transfers(block);
        if has_contract_calls(block) {
            let receipts = self
                .node
                .transaction_infos_in_block(block.number, finality)
                .await?;
            let endpoint = match finality {
                Finality::Head => "/wallet/gettransactioninfobyblocknum",
                Finality::Solid => "/walletsolidity/gettransactioninfobyblocknum",
            };
            seen.extend(usdt_transfers(
                block,
                &receipts,
                &self.config.usdt_contract,
                endpoint,
            )?);
        }
        if seen.is_empty() {
            return Ok(Vec::new());
        }
        let mut addresses: Vec<TronAddress> = seen.iter().map(|s| s.to).collect();
        addresses.sort();
        addresses.dedup();
        let accounts = store::deposit_accounts(self.buses.pool(), &addresses).await?;
        let mut out = Vec::new();
        for s in seen {
            let Some(account) = accounts.get(&s.to) else {
                continue; // not one of ours
            };
            let account_id = match AccountId::parse(account.as_str()) {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(account_id = %account, address = %s.to, error = %e,
                        "deposit address filed under an invalid account id; transfer ignored");
                    continue;
                }
            };
            let txid = DomainTxId::parse(&s.txid.to_hex()).map_err(|e| {
                Error::Engine(engine::Error::Corrupt {
                    what: format!("txid {}", s.txid),
                    reason: e.to_string(),
                })
            })?;
            let deposit_id = DepositId::new(txid, s.log_index);
            out.push(Ours {
                seen: s,
                account_id,
                deposit_id,
            });
        }
        Ok(out)
    }

    fn meta(step: &str, deposit_id: &DepositId) -> CommandMetadata {
        let id = deposit_id.to_string();
        let command_id = derived_command_id(NAME, &[step, &id]);
        let detect_id = derived_command_id(NAME, &["detect", &id]);
        CommandMetadata::caused_by(command_id, detect_id, detect_id, Actor::system(NAME))
    }

    /// `DetectDeposit`.
    async fn detect(&self, ours: &Ours, report: &mut ScanReport) -> Result<Decided, Error> {
        let s = &ours.seen;
        let span = tracing::info_span!("deposit", deposit_id = %ours.deposit_id, txid = %s.txid);
        async {
            let amount = match i128::try_from(s.amount)
                .map_err(|_| engine::domain::AmountError::TooLarge)
                .and_then(Amount::from_i128)
            {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(amount = %s.amount, error = %e, "transfer amount cannot be credited; ignored");
                    return Ok(Decided::Refused);
                }
            };
            let command = DepositCommand::DetectDeposit {
                account_id: ours.account_id.clone(),
                asset: s.asset,
                amount,
                txid: ours.deposit_id.txid().clone(),
                log_index: s.log_index,
                from: s.from,
                to: s.to,
                block_number: s.block_number,
                at: Utc::now(),
            };
            let outcome = self
                .buses
                .deposit
                .execute(
                    &ours.deposit_id.to_string(),
                    command,
                    Self::meta("detect", &ours.deposit_id),
                )
                .await?;
            Ok(match outcome.result {
                Ok(_) if outcome.duplicate => Decided::Already,
                Ok(_) => {
                    report.detected += 1;
                    tracing::info!(account_id = %ours.account_id, asset = %s.asset, amount = %amount,
                        block = s.block_number, "deposit detected");
                    Decided::Done
                }
                Err(DepositError::DepositAlreadyDetected { .. }) => Decided::Already,
                Err(refusal) => {
                    tracing::warn!(refusal = %refusal, "deposit detection refused");
                    Decided::Refused
                }
            })
        }
        .instrument(span)
        .await
    }

    /// A transfer in a solidified block: detected (if not yet) and confirmed.
    async fn settle_solid(&self, ours: &Ours, report: &mut ScanReport) -> Result<(), Error> {
        if self.detect(ours, report).await? == Decided::Refused {
            return Ok(());
        }
        let span =
            tracing::info_span!("deposit", deposit_id = %ours.deposit_id, txid = %ours.seen.txid);
        async {
            let command = DepositCommand::ConfirmDeposit {
                block_number: ours.seen.block_number,
                at: Utc::now(),
            };
            let id = ours.deposit_id.to_string();
            let outcome = self
                .buses
                .deposit
                .execute(&id, command, Self::meta("confirm", &ours.deposit_id))
                .await?;
            match outcome.result {
                Ok(_) if outcome.duplicate => {}
                Ok(_) => {
                    report.confirmed += 1;
                    tracing::info!(account_id = %ours.account_id, block = ours.seen.block_number,
                        "deposit confirmed on the solidified chain");
                }
                Err(DepositError::Transition(TransitionError::InvalidTransition { state, .. }))
                    if state == "Confirmed" || state == "Credited" => {}
                Err(refusal) => {
                    tracing::error!(refusal = %refusal, block = ours.seen.block_number,
                        "a deposit on the solidified chain cannot be confirmed; left for an operator");
                }
            }
            store::remove_pending(self.buses.pool(), &ours.deposit_id).await
        }
        .instrument(span)
        .await
    }

    /// Looks again for the deposits detected in blocks the solid view has passed without them.
    async fn check_vanished(
        &self,
        solid_next: u64,
        solid_time: i64,
        report: &mut ScanReport,
    ) -> Result<(), Error> {
        let pool = self.buses.pool();
        for p in store::pending_below(pool, solid_next, VANISH_CHECKS_PER_PASS).await? {
            let span = tracing::info_span!("deposit", deposit_id = %p.deposit_id, txid = %p.txid);
            async {
                match self.node.transaction_info(&p.txid, Finality::Head).await? {
                    Some(info) if info.block_number >= solid_next => {
                        tracing::info!(
                            from_block = p.block_number,
                            to_block = info.block_number,
                            "deposit moved to a later block; waiting for that one to solidify"
                        );
                        store::move_pending(pool, &p.deposit_id, info.block_number).await
                    }
                    Some(info) if !info.succeeded() => {
                        self.reject(&p, DepositRejection::FailedOnChain, report)
                            .await
                    }
                    Some(info) => {
                        self.recheck_solid_block(&p, info.block_number, report)
                            .await
                    }
                    None if p.expiration_ms <= solid_time => {
                        self.reject(&p, DepositRejection::Vanished, report).await
                    }
                    None => {
                        tracing::debug!(
                            "deposit not in any block, not expired yet: it may still be included"
                        );
                        Ok(())
                    }
                }
            }
            .instrument(span)
            .await?;
        }
        Ok(())
    }

    /// The transaction is in a solidified block other than the one it was detected in: confirm
    /// it from there if that block pays this deposit, else it vanished.
    async fn recheck_solid_block(
        &self,
        p: &Pending,
        block_number: u64,
        report: &mut ScanReport,
    ) -> Result<(), Error> {
        if let Some(block) = self
            .node
            .block_by_num(block_number, Finality::Solid)
            .await?
        {
            let ours = self.ours_in(&block, Finality::Solid).await?;
            if let Some(found) = ours.iter().find(|o| o.deposit_id == p.deposit_id) {
                return self.settle_solid(found, report).await;
            }
        }
        self.reject(p, DepositRejection::Vanished, report).await
    }

    async fn reject(
        &self,
        p: &Pending,
        reason: DepositRejection,
        report: &mut ScanReport,
    ) -> Result<(), Error> {
        let command = DepositCommand::RejectDeposit {
            reason,
            at: Utc::now(),
        };
        let outcome = self
            .buses
            .deposit
            .execute(
                &p.deposit_id.to_string(),
                command,
                Self::meta("reject", &p.deposit_id),
            )
            .await?;
        match outcome.result {
            Ok(_) if outcome.duplicate => {}
            Ok(_) => {
                report.rejected += 1;
                tracing::warn!(
                    ?reason,
                    block = p.block_number,
                    "deposit rejected: it will not be credited"
                );
            }
            Err(refusal) => {
                tracing::info!(refusal = %refusal, "deposit already settled; nothing to reject");
            }
        }
        store::remove_pending(self.buses.pool(), &p.deposit_id).await
    }
}

//! The order's decisions about work on the chain: requesting a delegation from a pool wallet,
//! recording its signed bytes before broadcast (write-ahead), its expiry, confirmation or
//! failure; then the same steps for the reclaim, which is retried until it succeeds.

use crate::domain::field::FieldError;
use crate::domain::transition::TransitionError;
use chrono::{DateTime, Utc};

use super::decide::later;
use super::error::OrderError;
use super::{
    Delegation, Order, OrderCommand, OrderEvent, OrderPolicy, OrderStatus, Reclaim, SignedTx,
};
use crate::domain::ids::TxId;
use crate::domain::money::MAX_AMOUNT;
use crate::domain::text::require_reason;
use crate::domain::DomainCommand;

/// The longest signed transaction we record, in hex digits (TRON caps a transaction far lower).
pub const MAX_SIGNED_TX_HEX: usize = 1 << 20;

impl Order {
    pub(super) fn decide_on_chain(
        &self,
        command: OrderCommand,
        policy: &OrderPolicy,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        use OrderCommand::*;
        use OrderStatus as S;
        let name = command.command_type();
        let event = match command {
            RequestDelegation {
                wallet,
                delegate_sun,
                at,
            } => {
                let p = self.expect(name, &[S::Paid, S::DelegationFailed])?;
                if self.status == S::DelegationFailed && !self.last_failure_retryable {
                    return Err(OrderError::FailureNotRetryable);
                }
                let max = policy.max_delegation_attempts;
                if self.attempts >= max {
                    return Err(OrderError::AttemptsExhausted {
                        attempts: self.attempts,
                        max,
                    });
                }
                check_sun(delegate_sun)?;
                if self.failed_wallets.contains(&wallet) {
                    return Err(OrderError::WalletAlreadyTried { wallet });
                }
                if !policy.pool_wallets.contains(&wallet) {
                    return Err(OrderError::WalletNotInPool { wallet });
                }
                if policy.pool_wallets.contains(&p.receiver) {
                    return Err(OrderError::ReceiverIsPoolWallet {
                        receiver: p.receiver,
                    });
                }
                OrderEvent::DelegationRequested {
                    account_id: p.account_id.clone(),
                    receiver: p.receiver,
                    wallet,
                    attempt: self.attempts.saturating_add(1),
                    delegate_sun,
                    energy: p.energy,
                    duration: p.duration,
                    at,
                }
            }
            RecordDelegationSigned {
                txid,
                signed_tx_hex,
                expiration_ms,
                at,
            } => {
                let d = self.delegation_in(name, &[S::DelegationRequested])?;
                check_signed(&signed_tx_hex, expiration_ms)?;
                OrderEvent::DelegationSigned {
                    wallet: d.wallet,
                    attempt: d.attempt,
                    txid,
                    signed_tx_hex,
                    expiration_ms,
                    at,
                }
            }
            RecordDelegationExpired { txid, at } => {
                let d = self.delegation_in(name, &[S::DelegationSigned])?;
                check_expired(d.signed.as_ref(), name, &txid, at)?;
                OrderEvent::DelegationExpired {
                    wallet: d.wallet,
                    attempt: d.attempt,
                    txid,
                    at,
                }
            }
            ConfirmDelegation {
                txid,
                block_number,
                at,
            } => {
                let p = self.expect(name, &[S::DelegationSigned])?;
                let d = self.delegation_in(name, &[S::DelegationSigned])?;
                check_current(d.signed.as_ref(), name, &txid)?;
                let active_until = later(at, p.duration.period(), "active_until")?;
                return Ok(vec![
                    OrderEvent::DelegationConfirmed {
                        wallet: d.wallet,
                        receiver: p.receiver,
                        attempt: d.attempt,
                        txid,
                        block_number,
                        delegate_sun: d.delegate_sun,
                        at,
                    },
                    OrderEvent::OrderActivated {
                        account_id: p.account_id.clone(),
                        receiver: p.receiver,
                        wallet: d.wallet,
                        energy: p.energy,
                        duration: p.duration,
                        active_from: at,
                        active_until,
                    },
                ]);
            }
            FailDelegation {
                reason,
                retryable,
                at,
            } => {
                let d = self.delegation_in(name, &[S::DelegationRequested, S::DelegationSigned])?;
                require_reason(&reason)?;
                let attempts_left = if retryable {
                    policy.max_delegation_attempts.saturating_sub(d.attempt)
                } else {
                    0
                };
                OrderEvent::DelegationFailed {
                    wallet: d.wallet,
                    attempt: d.attempt,
                    txid: d.signed.as_ref().map(|s| s.txid.clone()),
                    reason,
                    retryable,
                    attempts_left,
                    at,
                }
            }
            RequestReclaim { at } => {
                let p = self.expect(name, &[S::Active])?;
                let d = self.delegation_in(name, &[S::Active])?;
                let not_before = self
                    .active_until
                    .ok_or_else(|| TransitionError::new(self.status.as_str(), name))?;
                if at < not_before {
                    return Err(OrderError::TooEarly { at, not_before });
                }
                OrderEvent::ReclaimRequested {
                    wallet: d.wallet,
                    receiver: p.receiver,
                    delegate_sun: d.delegate_sun,
                    attempt: 1,
                    at,
                }
            }
            RecordReclaimSigned {
                txid,
                signed_tx_hex,
                expiration_ms,
                at,
            } => {
                let (d, r) = self.reclaim_in(name, &[S::ReclaimRequested])?;
                check_signed(&signed_tx_hex, expiration_ms)?;
                OrderEvent::ReclaimSigned {
                    wallet: d.wallet,
                    attempt: r.attempt,
                    txid,
                    signed_tx_hex,
                    expiration_ms,
                    at,
                }
            }
            RecordReclaimExpired { txid, at } => {
                let (d, r) = self.reclaim_in(name, &[S::ReclaimSigned])?;
                check_expired(r.signed.as_ref(), name, &txid, at)?;
                OrderEvent::ReclaimExpired {
                    wallet: d.wallet,
                    attempt: r.attempt,
                    txid,
                    at,
                }
            }
            FailReclaim { reason, at } => {
                let (d, r) = self.reclaim_in(name, &[S::ReclaimRequested, S::ReclaimSigned])?;
                require_reason(&reason)?;
                let txid = r.signed.as_ref().map(|s| s.txid.clone());
                OrderEvent::ReclaimFailed {
                    wallet: d.wallet,
                    attempt: r.attempt,
                    txid,
                    reason,
                    at,
                }
            }
            ConfirmReclaim {
                txid,
                block_number,
                at,
            } => {
                let p = self.expect(name, &[S::ReclaimSigned])?;
                let (d, r) = self.reclaim_in(name, &[S::ReclaimSigned])?;
                check_current(r.signed.as_ref(), name, &txid)?;
                OrderEvent::Reclaimed {
                    wallet: d.wallet,
                    receiver: p.receiver,
                    txid,
                    block_number,
                    delegate_sun: d.delegate_sun,
                    at,
                }
            }
            PlaceOrder { .. }
            | MarkPaid { .. }
            | RejectOrder { .. }
            | CancelOrder { .. }
            | RefundOrder { .. }
            | CompleteOrder { .. } => {
                return Err(TransitionError::new(self.status.as_str(), name).into());
            }
        };
        Ok(vec![event])
    }

    /// The current delegation, if the order is in one of `allowed`.
    fn delegation_in(
        &self,
        command: &str,
        allowed: &[OrderStatus],
    ) -> Result<&Delegation, OrderError> {
        match &self.delegation {
            Some(d) if allowed.contains(&self.status) => Ok(d),
            _ => Err(TransitionError::new(self.status.as_str(), command).into()),
        }
    }

    /// The reclaimed delegation and the reclaim, if the order is in one of `allowed`.
    fn reclaim_in(
        &self,
        command: &str,
        allowed: &[OrderStatus],
    ) -> Result<(&Delegation, &Reclaim), OrderError> {
        let d = self.delegation_in(command, allowed)?;
        let r = self
            .reclaim
            .as_ref()
            .ok_or_else(|| TransitionError::new(self.status.as_str(), command))?;
        Ok((d, r))
    }
}

fn check_sun(delegate_sun: u64) -> Result<(), OrderError> {
    if delegate_sun == 0 {
        return Err(FieldError::zero("delegate_sun").into());
    }
    if delegate_sun > MAX_AMOUNT {
        return Err(FieldError::too_large("delegate_sun", MAX_AMOUNT).into());
    }
    Ok(())
}

/// Signed bytes are whole hex bytes, bounded, and expire at a representable time.
fn check_signed(signed_tx_hex: &str, expiration_ms: i64) -> Result<(), OrderError> {
    let problem = if signed_tx_hex.is_empty() {
        "signed_tx_hex is empty"
    } else if signed_tx_hex.len() > MAX_SIGNED_TX_HEX {
        "signed_tx_hex is too long"
    } else if !signed_tx_hex.len().is_multiple_of(2)
        || !signed_tx_hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        "signed_tx_hex is not whole bytes of hex"
    } else if expiration_ms <= 0 || DateTime::<Utc>::from_timestamp_millis(expiration_ms).is_none()
    {
        "expiration_ms is not a valid time"
    } else {
        return Ok(());
    };
    Err(OrderError::InvalidSignedTransaction {
        problem: problem.to_string(),
    })
}

/// `txid` must be the transaction recorded as signed.
fn check_current(signed: Option<&SignedTx>, command: &str, txid: &TxId) -> Result<(), OrderError> {
    let signed = signed.ok_or_else(|| TransitionError::new("unsigned", command))?;
    if &signed.txid != txid {
        return Err(OrderError::TxidMismatch {
            expected: signed.txid.clone(),
            actual: txid.clone(),
        });
    }
    Ok(())
}

/// `txid` must be the recorded transaction, and its expiration must have passed at `at`.
fn check_expired(
    signed: Option<&SignedTx>,
    command: &str,
    txid: &TxId,
    at: DateTime<Utc>,
) -> Result<(), OrderError> {
    check_current(signed, command, txid)?;
    let expiration_ms = signed.map_or(i64::MIN, |s| s.expiration_ms);
    if at.timestamp_millis() < expiration_ms {
        let not_before = DateTime::<Utc>::from_timestamp_millis(expiration_ms)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        return Err(OrderError::TooEarly { at, not_before });
    }
    Ok(())
}

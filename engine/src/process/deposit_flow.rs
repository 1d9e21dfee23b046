//! A deposit confirmed on the solidified chain is credited to its account, then marked
//! credited. The account refuses a second credit for the same deposit, so a replay credits
//! nothing twice.

use std::sync::Arc;

use crate::domain::account::AccountCommand;
use crate::domain::deposit::{DepositCommand, DepositEvent};
use crate::domain::AccountError;
use crate::error::Error;
use crate::log::{AnyEvent, TypedEvent};
use crate::process::cause::Cause;
use crate::process::runner::{Effects, Reactor};
use crate::process::Buses;

pub const NAME: &str = "deposit-flow";

pub struct DepositFlow {
    buses: Arc<Buses>,
}

impl DepositFlow {
    pub fn new(buses: Arc<Buses>) -> Self {
        Self { buses }
    }
}

impl Reactor for DepositFlow {
    fn name(&self) -> &'static str {
        NAME
    }

    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.buses.appended())
    }

    async fn react(&self, event: &TypedEvent, _effects: &mut Effects) -> Result<(), Error> {
        let AnyEvent::Deposit(DepositEvent::DepositConfirmed {
            deposit_id,
            account_id,
            asset,
            amount,
            ..
        }) = &event.event
        else {
            return Ok(());
        };
        let cause = Cause::new(NAME, event);
        let credit = AccountCommand::CreditDeposit {
            deposit_id: deposit_id.clone(),
            asset: *asset,
            amount: *amount,
        };
        let outcome = self
            .buses
            .account
            .execute(account_id.as_str(), credit, cause.meta("credit"))
            .await?;
        match outcome.result {
            Ok(_) | Err(AccountError::DepositAlreadyCredited { .. }) => {
                let mark = DepositCommand::MarkCredited { at: cause.at() };
                self.buses
                    .deposit
                    .execute(cause.aggregate_id(), mark, cause.meta("mark-credited"))
                    .await?;
            }
            Err(refusal) => {
                tracing::error!(deposit_id = %deposit_id, account_id = %account_id, refusal = %refusal,
                    "confirmed deposit could not be credited; left confirmed for an operator");
            }
        }
        Ok(())
    }
}

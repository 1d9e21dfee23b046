//! The domain: aggregates, their commands, events and errors (one error type per aggregate),
//! pricing, and the value types they share, each with its own parse error. Pure code with no IO; everything here is testable with given/when/then.

use std::fmt;

pub mod account;
pub mod address;
pub mod decide;
pub mod deposit;
pub mod duration;
pub mod field;
pub mod ids;
pub mod maintenance;
pub mod money;
pub mod order;
pub mod price_list;
pub mod pricing;
pub mod recent;
pub mod text;
pub mod transition;
pub mod wallet;

#[cfg(test)]
mod error_codes;

pub use account::{Account, AccountCommand, AccountError, AccountEvent, Balance, Settlement};
pub use address::{AddressError, TronAddress};
pub use decide::replay;
pub use deposit::{Deposit, DepositCommand, DepositError, DepositEvent, DepositRejection};
pub use duration::{DurationError, DurationTier};
pub use field::FieldError;
pub use ids::{AccountId, DepositId, IdError, IdKind, OrderId, TxId};
pub use maintenance::{
    Job, JobRecord, JobStatus, Maintenance, MaintenanceCommand, MaintenanceError, MaintenanceEvent,
};
pub use money::{Amount, AmountError, Asset, UnknownAsset, MAX_AMOUNT};
pub use order::{Order, OrderCommand, OrderError, OrderEvent, OrderPolicy, OrderStatus};
pub use price_list::{PriceList, PriceListCommand, PriceListError, PriceListEvent, PRICE_LIST_ID};
pub use pricing::{PriceTable, PriceTableError, Quote, QuoteError};
pub use recent::SETTLED_IDS_KEPT;
pub use transition::TransitionError;
pub use wallet::{KeyRef, Wallet, WalletCommand, WalletError, WalletEvent};

/// A command addressed to one aggregate. Its type name is stable: it is stored in the command log.
/// Commands are cloned when the bus decides a batch again after a concurrency conflict.
pub trait DomainCommand: Clone + fmt::Debug + Send + Sync + 'static {
    fn command_type(&self) -> &'static str;

    /// The aggregate id a command names inside itself, if it names one (`OpenAccount` carries
    /// its account id): the bus refuses to run it against any other aggregate.
    fn names_aggregate(&self) -> Option<String> {
        None
    }

    /// Whether the command starts a new aggregate (`PlaceOrder`, under an id nobody used). The
    /// bus then decides it on the empty state without reading the store first; if the stream
    /// exists after all, the conditional append finds it, and the command is decided again on
    /// the loaded state. A hint for speed, never for correctness.
    fn creates_aggregate(&self) -> bool {
        false
    }
}

/// What the command bus needs of an aggregate beyond `cqrs_es::Aggregate`: cloning (the later
/// commands of a batch are decided on one copy of the held state, so a decision whose append
/// fails never reaches it),
/// equality (snapshots and in-memory state are proven equal to a full replay), and a name for
/// the shape of its serialised state, so a snapshot of an older shape is ignored, not misread.
pub trait DomainAggregate:
    cqrs_es::Aggregate<Command: DomainCommand, Error: serde::Serialize + Clone + PartialEq>
    + Clone
    + PartialEq
    + fmt::Debug
    + 'static
{
    /// Bump when the serialised state changes shape (e.g. `"account/1"` → `"account/2"`).
    const STATE_SCHEMA: &'static str;

    /// The pure decision: the events a command produces on this state, or why it is refused.
    /// Must not change `self`; `cqrs_es::Aggregate::handle` is this followed by `apply`. The bus
    /// calls it directly, so a batch of one command is decided without copying the state.
    fn decide(
        &self,
        command: Self::Command,
        services: &Self::Services,
    ) -> Result<Vec<Self::Event>, Self::Error>;
}

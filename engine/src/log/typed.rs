//! Typed batches: every event of the global log decoded into the domain's event type of its
//! aggregate. An event of an unknown aggregate type or shape is an error, never skipped.

use cqrs_es::Aggregate;

use crate::domain::{
    Account, AccountEvent, Deposit, DepositEvent, Maintenance, MaintenanceEvent, Order, OrderEvent,
    PriceList, PriceListEvent, Wallet, WalletEvent,
};
use crate::error::Error;
use crate::log::RecordedEvent;

/// A domain event of any aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEvent {
    Account(AccountEvent),
    Order(OrderEvent),
    Deposit(DepositEvent),
    Wallet(WalletEvent),
    PriceList(PriceListEvent),
    Maintenance(MaintenanceEvent),
}

/// A recorded event with its payload decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedEvent {
    pub recorded: RecordedEvent,
    pub event: AnyEvent,
}

impl AnyEvent {
    /// Decodes a recorded (already upcast) event by its aggregate type.
    pub fn decode(recorded: &RecordedEvent) -> Result<AnyEvent, Error> {
        fn one<A: Aggregate>(
            r: &RecordedEvent,
            wrap: fn(A::Event) -> AnyEvent,
        ) -> Option<Result<AnyEvent, Error>> {
            r.decode::<A>().map(|e| e.map(wrap))
        }
        one::<Account>(recorded, AnyEvent::Account)
            .or_else(|| one::<Order>(recorded, AnyEvent::Order))
            .or_else(|| one::<Deposit>(recorded, AnyEvent::Deposit))
            .or_else(|| one::<Wallet>(recorded, AnyEvent::Wallet))
            .or_else(|| one::<PriceList>(recorded, AnyEvent::PriceList))
            .or_else(|| one::<Maintenance>(recorded, AnyEvent::Maintenance))
            .unwrap_or_else(|| {
                Err(Error::corrupt(
                    format!("event at {}", recorded.position),
                    format!("unknown aggregate type {:?}", recorded.aggregate_type),
                ))
            })
    }
}

impl TryFrom<RecordedEvent> for TypedEvent {
    type Error = Error;
    fn try_from(recorded: RecordedEvent) -> Result<Self, Error> {
        let event = AnyEvent::decode(&recorded)?;
        Ok(TypedEvent { recorded, event })
    }
}

//! Helpers around `DomainAggregate::decide`, the pure half of every aggregate: `handle` is that
//! decision written to the cqrs-es event sink, and `replay` folds events into a fresh aggregate
//! (how the store rebuilds state, and how tests prove that events alone reproduce it).

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

use super::DomainAggregate;

/// The body of every `handle`: decide, then write each event to the sink (which applies it).
pub(crate) async fn decide_into_sink<A: DomainAggregate>(
    aggregate: &mut A,
    command: A::Command,
    services: &A::Services,
    sink: &EventSink<A>,
) -> Result<(), A::Error> {
    let events = aggregate.decide(command, services)?;
    for event in events {
        sink.write(event, aggregate).await;
    }
    Ok(())
}

/// The state after applying `events`, in order, to a fresh aggregate.
pub fn replay<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> A {
    let mut aggregate = A::default();
    for event in events {
        aggregate.apply(event);
    }
    aggregate
}

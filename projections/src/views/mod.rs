//! The read models. Each folds its events into rows loaded for the batch and writes them back
//! in one statement per table (see `rows.rs`); none holds business logic beyond copying and
//! adding up what the events carry.

pub mod balances;
pub mod daily;
pub mod deposits;
pub mod orders;
pub mod wallets;

use engine::log::TypedEvent;

use crate::error::Error;

/// An `Apply` error naming the projection and the event.
pub(crate) fn apply_error(
    projection: &'static str,
    event: &TypedEvent,
    reason: impl Into<String>,
) -> Error {
    Error::Apply {
        projection,
        position: event.recorded.position,
        reason: format!(
            "{} {} #{} ({}): {}",
            event.recorded.aggregate_type,
            event.recorded.aggregate_id,
            event.recorded.sequence,
            event.recorded.event_type,
            reason.into()
        ),
    }
}

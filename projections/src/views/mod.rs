//! The read models. Each folds its events into rows loaded for the batch and writes them back
//! in one statement per table (see `rows.rs`); none holds business logic beyond copying and
//! adding up what the events carry.

pub mod balances;
pub mod daily;
pub mod deposits;
pub mod orders;
pub mod wallets;

use crate::error::Error;
use crate::log::Event;

/// An `Apply` error naming the projection and the event.
pub(crate) fn apply_error(
    projection: &'static str,
    event: &Event,
    reason: impl Into<String>,
) -> Error {
    Error::Apply {
        projection,
        position: event.position,
        reason: format!(
            "{} {} #{} ({}): {}",
            event.aggregate_type,
            event.aggregate_id,
            event.sequence,
            event.event_type,
            reason.into()
        ),
    }
}

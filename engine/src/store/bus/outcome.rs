//! What a command's caller gets back ([`Outcome`], [`Committed`]), how an outcome is stored in
//! `command_log.outcome`, and how a stored outcome is answered again to a command id that was
//! run before.

use cqrs_es::persist::EventUpcaster;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::Error;
use crate::log::LogPosition;
use crate::store::event_store::{self, StoredOutcome};
use crate::store::metadata::CommandMetadata;

/// The outcome of one command.
#[derive(Debug, PartialEq)]
pub struct Outcome<A: Aggregate> {
    pub command_id: Uuid,
    /// True when this command id had been run before and this is its first outcome, replayed.
    pub duplicate: bool,
    pub result: Result<Committed<A::Event>, A::Error>,
}

impl<A: Aggregate> Clone for Outcome<A>
where
    A::Error: Clone,
{
    fn clone(&self) -> Self {
        Self {
            command_id: self.command_id,
            duplicate: self.duplicate,
            result: self.result.clone(),
        }
    }
}

impl<A: Aggregate> Outcome<A> {
    pub fn is_accepted(&self) -> bool {
        self.result.is_ok()
    }

    /// The same outcome, answered again to a copy of its command.
    pub(super) fn as_duplicate(&self) -> Self
    where
        A::Error: Clone,
    {
        Self {
            duplicate: true,
            ..self.clone()
        }
    }
}

/// What an accepted command wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed<E> {
    /// The aggregate's version after this command (its last event's sequence).
    pub version: u64,
    pub events: Vec<E>,
    /// The log position of each event, in order.
    pub positions: Vec<LogPosition>,
}

impl<E> Committed<E> {
    /// Where the command's last event sits in the global log (for read-your-writes).
    pub fn last_position(&self) -> Option<LogPosition> {
        self.positions.last().copied()
    }
}

/// The outcome as stored in `command_log.outcome`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum StoredResult<E> {
    Accepted {
        first_sequence: u64,
        last_sequence: u64,
    },
    Rejected(E),
}

impl<E: Serialize> StoredResult<E> {
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string(self).map_err(|e| Error::corrupt("command outcome to store", e))
    }
}

/// The command `meta` names, of type `command_type` for aggregate `aggregate_id`, was run before
/// and its outcome stored as `row`: that outcome again (marked `duplicate`), with the events it
/// wrote read back. An error if the id was used for another command or another request.
pub(super) async fn replay<A: Aggregate>(
    pool: &PgPool,
    upcasters: &[Box<dyn EventUpcaster>],
    aggregate_id: &str,
    command_type: &str,
    meta: &CommandMetadata,
    row: &StoredOutcome,
) -> Result<Outcome<A>, Error>
where
    A::Error: serde::de::DeserializeOwned,
{
    let command_id = meta.command_id;
    if !meta.same_request(row.fingerprint.as_deref()) {
        return Err(Error::CommandIdReused {
            command_id,
            used_for: format!("another {} request", row.command_type),
        });
    }
    if row.aggregate_type != A::TYPE
        || row.aggregate_id != aggregate_id
        || row.command_type != command_type
    {
        return Err(Error::CommandIdReused {
            command_id,
            used_for: format!(
                "{} on {} {}",
                row.command_type, row.aggregate_type, row.aggregate_id
            ),
        });
    }
    let stored: StoredResult<A::Error> = serde_json::from_value(row.outcome.clone())
        .map_err(|e| Error::corrupt("command outcome", e))?;
    let result = match stored {
        StoredResult::Rejected(error) => Err(error),
        StoredResult::Accepted {
            first_sequence,
            last_sequence,
        } => {
            let events = if last_sequence >= first_sequence {
                event_store::events_between::<A>(
                    pool,
                    aggregate_id,
                    first_sequence,
                    last_sequence,
                    upcasters,
                )
                .await?
            } else {
                Vec::new()
            };
            let (events, positions) = events.into_iter().unzip();
            Ok(Committed {
                version: last_sequence,
                events,
                positions,
            })
        }
    };
    Ok(Outcome {
        command_id,
        duplicate: true,
        result,
    })
}

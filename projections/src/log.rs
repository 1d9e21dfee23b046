//! The projections' reader of the global log: the same order and horizon as
//! `engine::log::GlobalLogReader` (`(transaction_id, global_position)` after the checkpoint,
//! only from transactions older than every running one) and the same upcaster chain, but lean:
//! the payload travels as the stored JSON text and is decoded straight into the domain event
//! when no upcaster applies to its type and version, and metadata is not read (no view uses
//! it). A rebuild reads every event of the log, so this is where its time goes.

use chrono::{DateTime, Utc};
use cqrs_es::persist::EventUpcaster;
use cqrs_es::Aggregate;
use engine::domain::{Account, Deposit, Maintenance, Order, PriceList, Wallet};
use engine::log::{AnyEvent, LogPosition};
use engine::store::upcast::{upcast, upcasters, RawEvent};
use sqlx::PgConnection;

use crate::error::Error;

/// One event as the projections see it: where it is, whose it is, and the decoded event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub position: LogPosition,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: u64,
    pub event_type: String,
    pub recorded_at: DateTime<Utc>,
    pub event: AnyEvent,
}

/// Reads the global log for projections; holds the upcaster chain.
pub struct Reader {
    upcasters: Vec<Box<dyn EventUpcaster>>,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

type Row = (
    i64,
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    DateTime<Utc>,
);

impl Reader {
    pub fn new() -> Self {
        Self::with_upcasters(upcasters())
    }

    /// With another upcaster chain (tests).
    pub fn with_upcasters(upcasters: Vec<Box<dyn EventUpcaster>>) -> Self {
        Self { upcasters }
    }

    /// Up to `limit` events after `after`, below the transaction horizon, in log order.
    pub async fn read(
        &self,
        conn: &mut PgConnection,
        after: LogPosition,
        limit: i64,
    ) -> Result<Vec<Event>, Error> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT e.global_position, e.transaction_id::text, e.aggregate_type, e.aggregate_id, \
                    e.sequence, e.event_type, e.event_version, e.payload::text, e.recorded_at \
             FROM events e \
             WHERE (e.transaction_id, e.global_position) > ($1::text::xid8, $2) \
               AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY e.transaction_id, e.global_position \
             LIMIT $3",
        )
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .fetch_all(conn)
        .await?;
        rows.into_iter().map(|r| self.decode(r)).collect()
    }

    fn decode(&self, row: Row) -> Result<Event, Error> {
        let (pos, tx, aggregate_type, aggregate_id, sequence, event_type, version, payload, at) =
            row;
        let position = LogPosition::new(
            tx.parse()
                .map_err(|e| Error::corrupt(format!("transaction id at {pos}"), e))?,
            pos,
        );
        let what = || format!("{aggregate_type} event {event_type} at {position}");
        let upcast_needed = self
            .upcasters
            .iter()
            .any(|u| u.can_upcast(&event_type, &version));
        let event = if upcast_needed {
            let value = serde_json::from_str(&payload).map_err(|e| Error::corrupt(what(), e))?;
            let raw = upcast(
                RawEvent {
                    event_type: event_type.clone(),
                    event_version: version,
                    payload: value,
                },
                &self.upcasters,
            );
            decode_any(&aggregate_type, Source::Value(raw.payload))
        } else {
            decode_any(&aggregate_type, Source::Text(&payload))
        }
        .map_err(|reason| Error::corrupt(what(), reason))?;
        Ok(Event {
            position,
            aggregate_type,
            aggregate_id,
            sequence: sequence as u64,
            event_type,
            recorded_at: at,
            event,
        })
    }
}

enum Source<'a> {
    Text(&'a str),
    Value(serde_json::Value),
}

fn parse<E: serde::de::DeserializeOwned>(source: Source<'_>) -> Result<E, String> {
    match source {
        Source::Text(t) => serde_json::from_str(t).map_err(|e| e.to_string()),
        Source::Value(v) => serde_json::from_value(v).map_err(|e| e.to_string()),
    }
}

/// Decodes a payload by its aggregate type; an unknown type is an error, never skipped.
fn decode_any(aggregate_type: &str, source: Source<'_>) -> Result<AnyEvent, String> {
    if aggregate_type == Account::TYPE {
        parse(source).map(AnyEvent::Account)
    } else if aggregate_type == Order::TYPE {
        parse(source).map(AnyEvent::Order)
    } else if aggregate_type == Deposit::TYPE {
        parse(source).map(AnyEvent::Deposit)
    } else if aggregate_type == Wallet::TYPE {
        parse(source).map(AnyEvent::Wallet)
    } else if aggregate_type == PriceList::TYPE {
        parse(source).map(AnyEvent::PriceList)
    } else if aggregate_type == Maintenance::TYPE {
        parse(source).map(AnyEvent::Maintenance)
    } else {
        Err(format!("unknown aggregate type {aggregate_type:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::domain::AccountEvent;
    use engine::store::upcast::payload_upcaster;

    fn row(version: &str, payload: &str) -> Row {
        (
            7,
            "1234".into(),
            "account".into(),
            "tg:1".into(),
            3,
            "FundsReleased".into(),
            version.into(),
            payload.into(),
            Utc::now(),
        )
    }

    /// A 1.0 `FundsReleased` without its `reason` (as if the field came later).
    const OLD: &str = r#"{"FundsReleased":{"order_id":"o-1","asset":"TRX","amount":5,"available_after":5,"reserved_after":0}}"#;

    #[test]
    fn an_old_event_version_is_read_through_the_upcasters_and_refused_without_them() {
        fn add_reason(mut v: serde_json::Value) -> serde_json::Value {
            if let Some(inner) = v.get_mut("FundsReleased").and_then(|x| x.as_object_mut()) {
                inner.insert("reason".into(), "unspecified".into());
            }
            v
        }
        let reader =
            Reader::with_upcasters(vec![payload_upcaster("FundsReleased", "1.1", add_reason)]);
        let event = reader.decode(row("1.0", OLD)).unwrap();
        assert!(matches!(
            event.event,
            AnyEvent::Account(AccountEvent::FundsReleased { ref reason, .. }) if reason == "unspecified"
        ));
        assert_eq!(event.position, LogPosition::new(1234, 7));
        assert!(Reader::with_upcasters(Vec::new())
            .decode(row("1.0", OLD))
            .is_err());
    }

    #[test]
    fn an_event_of_an_unknown_aggregate_type_is_an_error_not_skipped() {
        let mut r = row("1.0", "{}");
        r.2 = "mystery".into();
        let err = Reader::new().decode(r).unwrap_err();
        assert!(err.to_string().contains("unknown aggregate type"), "{err}");
    }
}

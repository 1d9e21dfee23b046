//! Upcasting: older stored event versions are rewritten to the current shape on read, by the
//! same chain for the command bus (loading aggregates) and every reader of the global log.
//! The chain is cqrs-es's `EventUpcaster`s; event versions are semantic ("1.0").

use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster};
use serde_json::Value;

/// The upcasters of this code base, oldest first. Empty until an event changes shape: add a
/// `SemanticVersionEventUpcaster` per change (see docs/adr/0001-event-store.md).
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    Vec::new()
}

/// A raw stored event as upcasters see it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
}

/// Runs the chain over one event.
pub fn upcast(raw: RawEvent, chain: &[Box<dyn EventUpcaster>]) -> RawEvent {
    chain.iter().fold(raw, |raw, up| {
        if !up.can_upcast(&raw.event_type, &raw.event_version) {
            return raw;
        }
        let serialized = cqrs_es::persist::SerializedEvent::new(
            String::new(),
            0,
            String::new(),
            raw.event_type,
            raw.event_version,
            raw.payload,
            Value::Null,
        );
        let out = up.upcast(serialized);
        RawEvent {
            event_type: out.event_type,
            event_version: out.event_version,
            payload: out.payload,
        }
    })
}

/// Builds a payload-rewriting upcaster for one event type up to `version`.
pub fn payload_upcaster(
    event_type: &str,
    version: &str,
    f: fn(Value) -> Value,
) -> Box<dyn EventUpcaster> {
    Box::new(SemanticVersionEventUpcaster::new(
        event_type,
        version,
        Box::new(f),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_older_version_is_rewritten_and_the_current_one_left_alone() {
        fn add_reason(mut v: Value) -> Value {
            if let Some(inner) = v.get_mut("FundsReleased").and_then(|x| x.as_object_mut()) {
                inner.insert("reason".into(), json!("unspecified"));
            }
            v
        }
        let chain = vec![payload_upcaster("FundsReleased", "1.1", add_reason)];
        let old = RawEvent {
            event_type: "FundsReleased".into(),
            event_version: "1.0".into(),
            payload: json!({"FundsReleased": {"order_id": "o1"}}),
        };
        let up = upcast(old, &chain);
        assert_eq!(
            up.event_version, "1.1.0",
            "cqrs-es writes the full semantic version"
        );
        assert_eq!(up.payload["FundsReleased"]["reason"], "unspecified");
        let current = upcast(up.clone(), &chain);
        assert_eq!(current, up);
    }
}

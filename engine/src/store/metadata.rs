//! The metadata contract every command carries and every event it produces stores: command id,
//! correlation id, causation id, actor (subject and role) and request id. Stored as the
//! postgres-es `metadata` JSON object of strings.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who asked: a token's subject and role, or a process of ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub subject: String,
    pub role: String,
}

impl Actor {
    pub fn new(subject: impl Into<String>, role: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            role: role.into(),
        }
    }

    /// One of our own processes (a process manager, the adapter, the scheduler).
    pub fn system(process: impl Into<String>) -> Self {
        Self::new(process, "system")
    }
}

/// The metadata of one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandMetadata {
    /// Names this command; a second command with the same id is the same command.
    pub command_id: Uuid,
    /// Shared by every command and event of one business flow (one order, one deposit).
    pub correlation_id: Uuid,
    /// The command or event that caused this one (the command itself for a root command).
    pub causation_id: Uuid,
    pub actor: Actor,
    pub request_id: Option<String>,
    /// Why a person did this (admin actions); stored on the events beside the actor.
    pub reason: Option<String>,
    /// What makes two copies of this command the same request (for example a hash of the HTTP
    /// request it came from). Kept in the command log, not on the events: a command id sent
    /// again with another fingerprint is refused (`Error::CommandIdReused`) instead of being
    /// answered with the first outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

pub const KEY_COMMAND_ID: &str = "command_id";
pub const KEY_CORRELATION_ID: &str = "correlation_id";
pub const KEY_CAUSATION_ID: &str = "causation_id";
pub const KEY_ACTOR_SUBJECT: &str = "actor_subject";
pub const KEY_ACTOR_ROLE: &str = "actor_role";
pub const KEY_REQUEST_ID: &str = "request_id";
pub const KEY_REASON: &str = "reason";

impl CommandMetadata {
    /// A root command: a new id that is also its own correlation and causation.
    pub fn new(actor: Actor) -> Self {
        let id = Uuid::new_v4();
        Self {
            command_id: id,
            correlation_id: id,
            causation_id: id,
            actor,
            request_id: None,
            reason: None,
            fingerprint: None,
        }
    }

    /// A root command with a given id (for example derived from an `Idempotency-Key`).
    pub fn with_command_id(actor: Actor, command_id: Uuid) -> Self {
        Self {
            command_id,
            correlation_id: command_id,
            causation_id: command_id,
            actor,
            request_id: None,
            reason: None,
            fingerprint: None,
        }
    }

    /// A command caused by something in a flow: it keeps the flow's correlation id.
    /// The command id should be deterministic (see [`derived_command_id`]) so that a process
    /// manager that runs twice issues the same command twice, which the bus then ignores.
    pub fn caused_by(
        command_id: Uuid,
        correlation_id: Uuid,
        causation_id: Uuid,
        actor: Actor,
    ) -> Self {
        Self {
            command_id,
            correlation_id,
            causation_id,
            actor,
            request_id: None,
            reason: None,
            fingerprint: None,
        }
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn with_fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.fingerprint = Some(fingerprint.into());
        self
    }

    /// Whether a command with `other` as its metadata may be answered as a copy of this one:
    /// their fingerprints agree where both have one.
    pub fn same_request(&self, other: Option<&str>) -> bool {
        match (self.fingerprint.as_deref(), other) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    /// The string map stored on every event.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut m = HashMap::with_capacity(6);
        m.insert(KEY_COMMAND_ID.into(), self.command_id.to_string());
        m.insert(KEY_CORRELATION_ID.into(), self.correlation_id.to_string());
        m.insert(KEY_CAUSATION_ID.into(), self.causation_id.to_string());
        m.insert(KEY_ACTOR_SUBJECT.into(), self.actor.subject.clone());
        m.insert(KEY_ACTOR_ROLE.into(), self.actor.role.clone());
        if let Some(r) = &self.request_id {
            m.insert(KEY_REQUEST_ID.into(), r.clone());
        }
        if let Some(r) = &self.reason {
            m.insert(KEY_REASON.into(), r.clone());
        }
        m
    }

    /// Reads the contract back from a stored map; `None` if a required key is missing.
    pub fn from_map(m: &HashMap<String, String>) -> Option<Self> {
        let uuid = |k: &str| m.get(k).and_then(|v| Uuid::parse_str(v).ok());
        Some(Self {
            command_id: uuid(KEY_COMMAND_ID)?,
            correlation_id: uuid(KEY_CORRELATION_ID)?,
            causation_id: uuid(KEY_CAUSATION_ID)?,
            actor: Actor::new(m.get(KEY_ACTOR_SUBJECT)?, m.get(KEY_ACTOR_ROLE)?),
            request_id: m.get(KEY_REQUEST_ID).cloned(),
            reason: m.get(KEY_REASON).cloned(),
            // Not stored on events: it lives in the command log.
            fingerprint: None,
        })
    }
}

/// A deterministic command id: the same (namespace, parts) always give the same id, so a
/// process manager that handles an event twice sends the same command twice.
pub fn derived_command_id(namespace: &str, parts: &[&str]) -> Uuid {
    let mut name = String::from(namespace);
    for p in parts {
        name.push('\u{1f}');
        name.push_str(p);
    }
    Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_survives_the_string_map_it_is_stored_as() {
        let m = CommandMetadata::new(Actor::new("bot-1", "bot")).with_request_id("req-7");
        assert_eq!(CommandMetadata::from_map(&m.to_map()), Some(m));
    }

    #[test]
    fn derived_command_ids_are_stable_and_distinct() {
        let a = derived_command_id("reserve", &["order-1"]);
        assert_eq!(a, derived_command_id("reserve", &["order-1"]));
        assert_ne!(a, derived_command_id("reserve", &["order-2"]));
        assert_ne!(a, derived_command_id("capture", &["order-1"]));
        assert_ne!(
            derived_command_id("x", &["a", "bc"]),
            derived_command_id("x", &["ab", "c"])
        );
    }
}

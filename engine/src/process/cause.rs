//! The metadata of a command sent because of an event: a command id derived from the event and
//! the step, the flow's correlation id, the event's command as causation, and the process as
//! actor.

use uuid::Uuid;

use crate::log::TypedEvent;
use crate::store::{derived_command_id, Actor, CommandMetadata};

/// An event as the cause of further commands.
#[derive(Clone, Copy)]
pub struct Cause<'a> {
    pub process: &'static str,
    pub event: &'a TypedEvent,
}

impl<'a> Cause<'a> {
    pub fn new(process: &'static str, event: &'a TypedEvent) -> Self {
        Self { process, event }
    }

    /// The metadata for step `step` of handling this event.
    pub fn meta(&self, step: &str) -> CommandMetadata {
        let r = &self.event.recorded;
        let sequence = r.sequence.to_string();
        let command_id = derived_command_id(
            self.process,
            &[step, &r.aggregate_type, &r.aggregate_id, &sequence],
        );
        let parent = r.command_metadata();
        let correlation = parent
            .as_ref()
            .map(|m| m.correlation_id)
            .unwrap_or(command_id);
        let causation = parent.as_ref().map(|m| m.command_id).unwrap_or(Uuid::nil());
        let mut meta = CommandMetadata::caused_by(
            command_id,
            correlation,
            causation,
            Actor::system(self.process),
        );
        meta.request_id = parent.and_then(|m| m.request_id);
        meta
    }

    pub fn aggregate_id(&self) -> &str {
        &self.event.recorded.aggregate_id
    }

    pub fn at(&self) -> chrono::DateTime<chrono::Utc> {
        self.event.recorded.recorded_at
    }
}

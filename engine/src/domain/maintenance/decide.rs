//! A maintenance job's decisions: a job starts once; only a running rebuild finishes or fails.

use super::error::MaintenanceError;
use super::{JobStatus, Maintenance, MaintenanceCommand, MaintenanceEvent};
use crate::domain::field::FieldError;
use crate::domain::text::{require_actor, require_reason, require_text, MAX_REASON_LEN};
use crate::domain::transition::TransitionError;
use crate::domain::{DomainAggregate, DomainCommand};

/// The longest failure message kept (longer ones are cut, on a character boundary).
const MAX_ERROR_LEN: usize = MAX_REASON_LEN;

impl DomainAggregate for Maintenance {
    const STATE_SCHEMA: &'static str = "maintenance/1";

    fn decide(
        &self,
        command: MaintenanceCommand,
        _services: &(),
    ) -> Result<Vec<MaintenanceEvent>, MaintenanceError> {
        use MaintenanceCommand::*;
        let name = command.command_type();
        let state = match &self.record {
            None => "New",
            Some(r) => match r.status {
                JobStatus::Running => "Running",
                JobStatus::Finished { .. } => "Finished",
                JobStatus::Failed { .. } => "Failed",
            },
        };
        let running = matches!(&self.record, Some(r) if r.status == JobStatus::Running);
        let event = match command {
            StartRebuild {
                projections,
                actor,
                reason,
                at,
            } => {
                if self.record.is_some() {
                    return Err(TransitionError::new(state, name).into());
                }
                if projections.is_empty() {
                    return Err(FieldError::TextRequired {
                        field: "projections".into(),
                    }
                    .into());
                }
                for p in &projections {
                    require_text("projections", p, 64)?;
                }
                require_actor(&actor)?;
                require_reason(&reason)?;
                MaintenanceEvent::RebuildStarted {
                    projections,
                    actor,
                    reason,
                    at,
                }
            }
            FinishRebuild { events, at } => {
                if !running {
                    return Err(TransitionError::new(state, name).into());
                }
                MaintenanceEvent::RebuildFinished { events, at }
            }
            FailRebuild { error, at } => {
                if !running {
                    return Err(TransitionError::new(state, name).into());
                }
                let error: String = error.trim().chars().take(MAX_ERROR_LEN).collect();
                let error = if error.is_empty() {
                    "unknown error".to_string()
                } else {
                    error
                };
                MaintenanceEvent::RebuildFailed { error, at }
            }
            RecordKeyRotation {
                master_key_fingerprint,
                resealed,
                unchanged,
                actor,
                reason,
                at,
            } => {
                if self.record.is_some() {
                    return Err(TransitionError::new(state, name).into());
                }
                require_text("master_key_fingerprint", &master_key_fingerprint, 64)?;
                require_actor(&actor)?;
                require_reason(&reason)?;
                MaintenanceEvent::MasterKeyRotated {
                    master_key_fingerprint,
                    resealed,
                    unchanged,
                    actor,
                    reason,
                    at,
                }
            }
        };
        Ok(vec![event])
    }
}

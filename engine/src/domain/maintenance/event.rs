//! What happened to a maintenance job.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaintenanceEvent {
    RebuildStarted {
        projections: Vec<String>,
        actor: String,
        reason: String,
        at: DateTime<Utc>,
    },
    RebuildFinished {
        events: u64,
        at: DateTime<Utc>,
    },
    RebuildFailed {
        error: String,
        at: DateTime<Utc>,
    },
    MasterKeyRotated {
        /// Names the master key (a hash of it, not the key).
        master_key_fingerprint: String,
        resealed: u64,
        unchanged: u64,
        actor: String,
        reason: String,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for MaintenanceEvent {
    fn event_type(&self) -> String {
        match self {
            MaintenanceEvent::RebuildStarted { .. } => "RebuildStarted",
            MaintenanceEvent::RebuildFinished { .. } => "RebuildFinished",
            MaintenanceEvent::RebuildFailed { .. } => "RebuildFailed",
            MaintenanceEvent::MasterKeyRotated { .. } => "MasterKeyRotated",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

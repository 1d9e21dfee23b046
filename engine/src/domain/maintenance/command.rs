//! What can be asked of a maintenance job: start a projection rebuild and record how it ended,
//! or record a master-key rotation that has been carried out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::DomainCommand;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaintenanceCommand {
    StartRebuild {
        projections: Vec<String>,
        actor: String,
        reason: String,
        at: DateTime<Utc>,
    },
    FinishRebuild {
        events: u64,
        at: DateTime<Utc>,
    },
    FailRebuild {
        error: String,
        at: DateTime<Utc>,
    },
    /// Every stored key is now sealed under the master key with this fingerprint.
    RecordKeyRotation {
        master_key_fingerprint: String,
        resealed: u64,
        unchanged: u64,
        actor: String,
        reason: String,
        at: DateTime<Utc>,
    },
}

impl DomainCommand for MaintenanceCommand {
    fn command_type(&self) -> &'static str {
        match self {
            MaintenanceCommand::StartRebuild { .. } => "StartRebuild",
            MaintenanceCommand::FinishRebuild { .. } => "FinishRebuild",
            MaintenanceCommand::FailRebuild { .. } => "FailRebuild",
            MaintenanceCommand::RecordKeyRotation { .. } => "RecordKeyRotation",
        }
    }
}

//! The `Maintenance` aggregate: one admin job on the running system, recorded so that every
//! admin action is an event with its actor and reason. A job is either a projection rebuild
//! (started, then finished or failed: it runs in the background) or a master-key rotation
//! (recorded once it is done, with what it re-sealed). Each job has its own id.

mod command;
mod decide;
mod event;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use command::MaintenanceCommand;
pub use event::MaintenanceEvent;

use super::decide::decide_into_sink;
mod error;
pub use error::MaintenanceError;

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum JobStatus {
    Running,
    Finished { at: DateTime<Utc> },
    Failed { at: DateTime<Utc>, error: String },
}

/// What a job is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Job {
    Rebuild {
        projections: Vec<String>,
        /// Events the finished rebuild read.
        events: Option<u64>,
    },
    KeyRotation {
        master_key_fingerprint: String,
        resealed: u64,
        unchanged: u64,
    },
}

/// A job as it stands, with who asked for it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job: Job,
    pub status: JobStatus,
    pub actor: String,
    pub reason: String,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    record: Option<JobRecord>,
}

impl Maintenance {
    /// The job, once started or recorded.
    pub fn record(&self) -> Option<&JobRecord> {
        self.record.as_ref()
    }
}

impl Aggregate for Maintenance {
    const TYPE: &'static str = "maintenance";
    type Command = MaintenanceCommand;
    type Event = MaintenanceEvent;
    type Error = MaintenanceError;
    type Services = ();

    async fn handle(
        &mut self,
        command: MaintenanceCommand,
        services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), MaintenanceError> {
        decide_into_sink(self, command, services, sink).await
    }

    fn apply(&mut self, event: MaintenanceEvent) {
        match event {
            MaintenanceEvent::RebuildStarted {
                projections,
                actor,
                reason,
                at,
            } => {
                self.record = Some(JobRecord {
                    job: Job::Rebuild {
                        projections,
                        events: None,
                    },
                    status: JobStatus::Running,
                    actor,
                    reason,
                    started_at: at,
                });
            }
            MaintenanceEvent::RebuildFinished { events, at } => {
                if let Some(record) = &mut self.record {
                    if let Job::Rebuild { events: read, .. } = &mut record.job {
                        *read = Some(events);
                    }
                    record.status = JobStatus::Finished { at };
                }
            }
            MaintenanceEvent::RebuildFailed { error, at } => {
                if let Some(record) = &mut self.record {
                    record.status = JobStatus::Failed { at, error };
                }
            }
            MaintenanceEvent::MasterKeyRotated {
                master_key_fingerprint,
                resealed,
                unchanged,
                actor,
                reason,
                at,
            } => {
                self.record = Some(JobRecord {
                    job: Job::KeyRotation {
                        master_key_fingerprint,
                        resealed,
                        unchanged,
                    },
                    status: JobStatus::Finished { at },
                    actor,
                    reason,
                    started_at: at,
                });
            }
        }
    }
}

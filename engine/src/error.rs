//! The crate's error type: what can go wrong outside the domain's own decisions (which are
//! per-aggregate refusals such as `AccountError`, carried in command outcomes).

/// Errors of the event store, the command bus, the log reader and the private cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{aggregate_type} {aggregate_id}: still conflicting after {attempts} attempts")]
    Conflict {
        aggregate_type: &'static str,
        aggregate_id: String,
        attempts: u32,
    },
    #[error(
        "command id {command_id} was already used for {used_for}; a command id names one command"
    )]
    CommandIdReused {
        command_id: uuid::Uuid,
        used_for: String,
    },
    #[error("{command_type} names {named}, but was sent to {aggregate_type} {aggregate_id}")]
    WrongAggregate {
        command_type: &'static str,
        named: String,
        aggregate_type: &'static str,
        aggregate_id: String,
    },
    #[error("stored {what} could not be decoded: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("the batch this command was decided in could not be stored: {0}")]
    BatchFailed(String),
    #[error("private PostgreSQL cluster: {0}")]
    Cluster(String),
}

impl Error {
    pub(crate) fn corrupt(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Corrupt {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

//! The crate's error type.

/// Errors of the projector runtime, the read models, rebuilds and the audit chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Engine(#[from] engine::Error),
    #[error("projection {projection}: {reason} (event at {position})")]
    Apply {
        projection: &'static str,
        position: engine::log::LogPosition,
        reason: String,
    },
    #[error("unknown projection {0:?}; known: {1}")]
    UnknownProjection(String, String),
    #[error("unknown aggregate type {0:?}; known: account, order, deposit, wallet")]
    UnknownAggregateType(String),
    #[error("{0}")]
    Busy(String),
    #[error("stored {what} could not be decoded: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The chain no longer agrees with a head signed before: nothing is signed over it.
    #[error("{0}; nothing was signed (`trx-energy audit verify` names the problem)")]
    HeadDisagrees(String),
}

impl Error {
    pub(crate) fn corrupt(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Corrupt {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    /// A lost or refused connection, as opposed to an error in the data or the SQL: the work
    /// can be retried on a new connection (nothing was committed).
    pub fn is_connection(&self) -> bool {
        let sqlx_error = match self {
            Error::Database(e) => e,
            Error::Engine(engine::Error::Database(e)) => e,
            _ => return false,
        };
        match sqlx_error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            // admin_shutdown, crash_shutdown, cannot_connect_now (class 57P) and a connection
            // failure (class 08).
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
            _ => false,
        }
    }
}

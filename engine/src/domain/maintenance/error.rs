//! `MaintenanceError`: why a maintenance job refuses a command: out of turn (a job starts
//! once; only a running one finishes), or a missing or overlong text. Serialised as the refusal
//! it holds, with its stable `code` tag.

use serde::{Deserialize, Serialize};

use crate::domain::field::FieldError;
use crate::domain::transition::TransitionError;

/// Everything a maintenance job refuses a command for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MaintenanceError {
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Field(#[from] FieldError),
}

impl MaintenanceError {
    /// The stable machine-readable code (the same string as the serialised `code` tag).
    pub fn code(&self) -> &'static str {
        match self {
            MaintenanceError::Transition(e) => e.code(),
            MaintenanceError::Field(e) => e.code(),
        }
    }
}

//! `TransitionError`: a command its aggregate does not take in the state it is in (confirming a
//! deposit twice, enabling an enabled wallet). The order, deposit, wallet and maintenance
//! aggregates refuse with it.

use serde::{Deserialize, Serialize};

/// A command not allowed in the aggregate's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum TransitionError {
    #[error("{command} is not allowed while {state}")]
    InvalidTransition { state: String, command: String },
}

impl TransitionError {
    /// `command` is not allowed while the aggregate is in `state`.
    pub fn new(state: &str, command: &str) -> Self {
        TransitionError::InvalidTransition {
            state: state.to_string(),
            command: command.to_string(),
        }
    }

    /// The stable machine-readable code (the same string as the serialised `code` tag).
    pub fn code(&self) -> &'static str {
        match self {
            TransitionError::InvalidTransition { .. } => "invalid_transition",
        }
    }
}

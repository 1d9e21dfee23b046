//! `DepositError`: why a deposit refuses a command. Each variant has a stable snake_case
//! `code()`, which is also its serialised `code` tag; codes never change once published.

use serde::{Deserialize, Serialize};

use crate::domain::ids::DepositId;
use crate::domain::money::Asset;
use crate::domain::transition::TransitionError;

/// Everything a deposit refuses a command for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum DepositError {
    #[error("deposit {deposit_id} was already detected")]
    DepositAlreadyDetected { deposit_id: DepositId },
    #[error("a {asset} deposit {} a log index", if *asset == Asset::Usdt { "needs" } else { "has no" })]
    LogIndexMismatch {
        asset: Asset,
        log_index: Option<u32>,
    },
    #[error(transparent)]
    #[serde(untagged)]
    Transition(#[from] TransitionError),
}

impl DepositError {
    /// The stable machine-readable code (the same string as the serialised `code` tag).
    pub fn code(&self) -> &'static str {
        match self {
            DepositError::DepositAlreadyDetected { .. } => "deposit_already_detected",
            DepositError::LogIndexMismatch { .. } => "log_index_mismatch",
            DepositError::Transition(e) => e.code(),
        }
    }
}

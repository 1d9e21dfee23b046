//! `PriceListError`: why the price list refuses a price change: a unit price out of range, or
//! a missing actor or reason. Serialised as the refusal it holds, with its stable `code` tag.

use serde::{Deserialize, Serialize};

use crate::domain::field::FieldError;
use crate::domain::pricing::PriceTableError;

/// Everything the price list refuses a command for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PriceListError {
    #[error(transparent)]
    Table(#[from] PriceTableError),
    #[error(transparent)]
    Field(#[from] FieldError),
}

impl PriceListError {
    /// The stable machine-readable code (the same string as the serialised `code` tag).
    pub fn code(&self) -> &'static str {
        match self {
            PriceListError::Table(e) => e.code(),
            PriceListError::Field(e) => e.code(),
        }
    }
}

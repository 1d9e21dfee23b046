//! `FieldError`: a command field outside its bounds (a zero or oversized quantity, a missing or
//! overlong text, a time past the representable range). Every aggregate that checks fields
//! refuses with it; each variant names the field.

use serde::{Deserialize, Serialize};

/// A field of a command outside its bounds. Serialised with its stable `code` tag, like every
/// refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum FieldError {
    #[error("{field} must be greater than zero")]
    ZeroQuantity { field: String },
    #[error("{field} must be at most {max}")]
    QuantityTooLarge { field: String, max: u64 },
    #[error("{field} must not be empty")]
    TextRequired { field: String },
    #[error("{field} is {len} characters long; at most {max} are allowed")]
    TextTooLong {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("{field} is out of the representable time range")]
    TimeOutOfRange { field: String },
}

impl FieldError {
    /// The stable machine-readable code (the same string as the serialised `code` tag).
    pub fn code(&self) -> &'static str {
        match self {
            FieldError::ZeroQuantity { .. } => "zero_quantity",
            FieldError::QuantityTooLarge { .. } => "quantity_too_large",
            FieldError::TextRequired { .. } => "text_required",
            FieldError::TextTooLong { .. } => "text_too_long",
            FieldError::TimeOutOfRange { .. } => "time_out_of_range",
        }
    }

    /// The field it names.
    pub fn field(&self) -> &str {
        match self {
            FieldError::ZeroQuantity { field }
            | FieldError::QuantityTooLarge { field, .. }
            | FieldError::TextRequired { field }
            | FieldError::TextTooLong { field, .. }
            | FieldError::TimeOutOfRange { field } => field,
        }
    }

    pub(crate) fn zero(field: &str) -> Self {
        FieldError::ZeroQuantity {
            field: field.to_string(),
        }
    }

    pub(crate) fn too_large(field: &str, max: u64) -> Self {
        FieldError::QuantityTooLarge {
            field: field.to_string(),
            max,
        }
    }
}

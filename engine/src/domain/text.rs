//! Checks for the free-text fields commands carry: reasons (why an admin adjusted a balance,
//! why a delegation failed) and actors (who did it). Both are required and bounded, so every
//! manual action in the log says who and why, and no event grows without limit. A text that
//! fails its check is a [`FieldError`] naming the field.

use super::field::FieldError;

/// The longest reason we keep.
pub const MAX_REASON_LEN: usize = 500;
/// The longest actor name (a token subject) we keep.
pub const MAX_ACTOR_LEN: usize = 128;

/// A required text of at most `max` characters (not counting surrounding whitespace).
pub(crate) fn require_text(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(FieldError::TextRequired {
            field: field.to_string(),
        });
    }
    let len = trimmed.chars().count();
    if len > max {
        return Err(FieldError::TextTooLong {
            field: field.to_string(),
            len,
            max,
        });
    }
    Ok(())
}

pub(crate) fn require_reason(value: &str) -> Result<(), FieldError> {
    require_text("reason", value, MAX_REASON_LEN)
}

pub(crate) fn require_actor(value: &str) -> Result<(), FieldError> {
    require_text("actor", value, MAX_ACTOR_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_must_be_given_and_bounded() {
        assert!(require_reason("chargeback").is_ok());
        assert_eq!(
            require_reason("   "),
            Err(FieldError::TextRequired {
                field: "reason".into()
            })
        );
        assert!(require_reason(&"x".repeat(500)).is_ok());
        assert_eq!(
            require_reason(&"x".repeat(501)),
            Err(FieldError::TextTooLong {
                field: "reason".into(),
                len: 501,
                max: 500
            })
        );
    }

    #[test]
    fn an_actor_must_be_named() {
        assert!(require_actor("admin:alice").is_ok());
        assert_eq!(require_actor("").unwrap_err().code(), "text_required");
        assert_eq!(
            require_actor(&"a".repeat(129)).unwrap_err().code(),
            "text_too_long"
        );
    }
}

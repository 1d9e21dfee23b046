//! [`Secret`]: a string that must never be shown (keys, tokens' HMAC key, URLs with passwords).
//! Its `Debug` and `Display` print `***`; only [`Secret::expose`] gives the value, at the one
//! place that uses it.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// A secret string: never printed, not by `Debug`, `Display` or `Serialize`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

/// What a secret shows instead of itself.
pub const REDACTED: &str = "***";

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Settings are never written back, so a serialized secret (the settings table's defaults, a
/// dump for support) shows only that there is one.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_never_shown_by_debug_display_or_serialize() {
        let s = Secret::new("hunter2-the-password");
        for shown in [
            format!("{s:?}"),
            format!("{s}"),
            format!("{s:#?}"),
            serde_json::to_string(&s).unwrap(),
            format!("{:?}", Some(&s)),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains(REDACTED), "{shown}");
        }
        assert_eq!(s.expose(), "hunter2-the-password");
    }

    #[test]
    fn a_secret_reads_as_a_plain_string() {
        let s: Secret = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(s, Secret::new("abc"));
    }
}

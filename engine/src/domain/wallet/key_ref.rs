//! `KeyRef`: where a pool wallet's signing key is kept (e.g. `vault:pool-1`), never the key.
//! Anything that looks like key material — a run of 64 hex digits, a mnemonic phrase, or text
//! longer than 128 characters — is refused, and is never echoed into errors or debug output.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::WalletError;
use crate::domain::field::FieldError;

/// The longest key reference we accept.
pub const MAX_KEY_REF_LEN: usize = 128;

/// A reference to a signing key. Construct freely; `validate` before it is recorded.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyRef(String);

impl KeyRef {
    pub fn new(reference: impl Into<String>) -> Self {
        KeyRef(reference.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Refuses an empty reference and anything that looks like key material.
    pub fn validate(&self) -> Result<(), WalletError> {
        let s = self.0.as_str();
        if s.trim().is_empty() {
            return Err(FieldError::TextRequired {
                field: "key_ref".into(),
            }
            .into());
        }
        if looks_like_key_material(s) {
            return Err(WalletError::KeyMaterialNotAllowed {
                length: s.chars().count(),
            });
        }
        Ok(())
    }
}

fn looks_like_key_material(s: &str) -> bool {
    let longest_hex_run = s
        .split(|c: char| !c.is_ascii_hexdigit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    let words = s.split_whitespace().count();
    s.chars().count() > MAX_KEY_REF_LEN || longest_hex_run >= 64 || words >= 12
}

/// Shows the reference only when it is acceptable, so rejected key material never reaches logs.
impl fmt::Debug for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.validate() {
            Ok(()) => write!(f, "KeyRef({:?})", self.0),
            Err(_) => write!(
                f,
                "KeyRef(<refused, {} characters>)",
                self.0.chars().count()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vault_reference_is_accepted() {
        assert!(KeyRef::new("vault:pool-1").validate().is_ok());
        assert!(KeyRef::new("vault:".to_string() + &"a".repeat(63))
            .validate()
            .is_ok());
    }

    #[test]
    fn a_private_key_in_hex_is_refused_bare_or_wrapped() {
        let key = "8e".repeat(32);
        for text in [key.clone(), format!("vault:{key}"), format!("0x{key}")] {
            let length = text.len();
            assert_eq!(
                KeyRef::new(text).validate(),
                Err(WalletError::KeyMaterialNotAllowed { length })
            );
        }
    }

    #[test]
    fn a_mnemonic_or_an_overlong_reference_is_refused() {
        let mnemonic = "abandon ".repeat(11) + "about";
        assert_eq!(
            KeyRef::new(mnemonic).validate().unwrap_err().code(),
            "key_material_not_allowed"
        );
        assert_eq!(
            KeyRef::new("v".repeat(129)).validate(),
            Err(WalletError::KeyMaterialNotAllowed { length: 129 })
        );
        assert_eq!(
            KeyRef::new("  ").validate(),
            Err(WalletError::Field(FieldError::TextRequired {
                field: "key_ref".into()
            }))
        );
    }

    #[test]
    fn refused_key_material_never_appears_in_debug_output() {
        let key = "8e".repeat(32);
        let shown = format!("{:?}", KeyRef::new(key.clone()));
        assert!(!shown.contains(&key), "{shown}");
        assert_eq!(shown, "KeyRef(<refused, 64 characters>)");
        assert_eq!(
            format!("{:?}", KeyRef::new("vault:a")),
            "KeyRef(\"vault:a\")"
        );
    }
}

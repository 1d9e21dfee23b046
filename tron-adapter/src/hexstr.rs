//! Strict hex input: what a person pastes on a command line or what a node returns. Odd lengths,
//! non-hex characters and wrong lengths are errors that say which field was wrong.

/// Why a hex string was refused. `what` names the field ("raw_data_hex", "private key", …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("{what}: hex has an odd number of digits ({len})")]
    OddLength { what: &'static str, len: usize },
    #[error("{what}: '{found}' at position {index} is not a hex digit")]
    NotHex {
        what: &'static str,
        found: char,
        index: usize,
    },
    #[error("{what}: expected {expected} bytes, got {actual}")]
    WrongLength {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
}

/// Decodes hex (an optional `0x` prefix and surrounding whitespace are allowed).
pub fn decode(what: &'static str, text: &str) -> Result<Vec<u8>, HexError> {
    let text = text.trim();
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if let Some((index, found)) = text.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(HexError::NotHex { what, found, index });
    }
    if !text.len().is_multiple_of(2) {
        return Err(HexError::OddLength {
            what,
            len: text.len(),
        });
    }
    hex::decode(text).map_err(|_| HexError::OddLength {
        what,
        len: text.len(),
    })
}

/// Decodes hex that must be exactly `N` bytes.
pub fn decode_array<const N: usize>(what: &'static str, text: &str) -> Result<[u8; N], HexError> {
    let bytes = decode(what, text)?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| HexError::WrongLength {
            what,
            expected: N,
            actual: bytes.len(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_length_and_non_hex_input_are_named_errors() {
        assert_eq!(
            decode("raw", "abc"),
            Err(HexError::OddLength {
                what: "raw",
                len: 3
            })
        );
        assert_eq!(
            decode("raw", "zz"),
            Err(HexError::NotHex {
                what: "raw",
                found: 'z',
                index: 0
            })
        );
        assert_eq!(
            decode_array::<2>("ref", "0a0b0c"),
            Err(HexError::WrongLength {
                what: "ref",
                expected: 2,
                actual: 3
            })
        );
    }

    #[test]
    fn a_0x_prefix_and_upper_case_digits_are_accepted() {
        assert_eq!(decode("x", " 0xAb01 ").unwrap(), vec![0xab, 0x01]);
        assert_eq!(decode("x", "").unwrap(), Vec::<u8>::new());
    }
}

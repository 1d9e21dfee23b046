//! Reading a node request the way java-tron's servlets do: a JSON body (or nothing) merged with
//! the query string, `visible` deciding whether addresses are base58 or `41…` hex, and every
//! failure answered HTTP 200 with `{"Error": "<exception class> : <message>"}`.

use serde_json::{Map, Value};

use crate::TronAddress;

/// The exception classes the node names in `{"Error": …}`.
pub const JSON_EXCEPTION: &str = "com.alibaba.fastjson.JSONException";
pub const PARSE_EXCEPTION: &str = "org.tron.core.services.http.JsonFormat$ParseException";
pub const NULL_POINTER: &str = "java.lang.NullPointerException";
pub const ILLEGAL_ARGUMENT: &str = "java.lang.IllegalArgumentException";
pub const HEX_EXCEPTION: &str = "org.bouncycastle.util.encoders.DecoderException";
pub const PROTOBUF_EXCEPTION: &str = "com.google.protobuf.InvalidProtocolBufferException";
pub const VALIDATE_EXCEPTION: &str = "org.tron.core.exception.ContractValidateException";

/// A servlet failure: the `{"Error": …}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServletError {
    pub class: &'static str,
    pub message: String,
}

impl ServletError {
    pub fn new(class: &'static str, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({ "Error": format!("class {} : {}", self.class, self.message) })
    }
}

/// A parsed request: its parameters and whether the caller asked for `visible` output.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub fields: Map<String, Value>,
    pub visible: bool,
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let digit = |b: u8| (b as char).to_digit(16);
                match (digit(bytes[i + 1]), digit(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Params {
    /// The body (JSON object or empty) over the query string.
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<Self, ServletError> {
        let mut fields = Map::new();
        if let Some(query) = query {
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                fields.insert(percent_decode(key), Value::String(percent_decode(value)));
            }
        }
        let text = std::str::from_utf8(body)
            .map_err(|_| ServletError::new(JSON_EXCEPTION, "body is not UTF-8"))?;
        if !text.trim().is_empty() {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| ServletError::new(JSON_EXCEPTION, format!("syntax error, {e}")))?;
            let Value::Object(map) = value else {
                return Err(ServletError::new(
                    JSON_EXCEPTION,
                    "can not cast to JSONObject.",
                ));
            };
            fields.extend(map);
        }
        let visible = match fields.get("visible") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            Some(_) => {
                return Err(ServletError::new(
                    PARSE_EXCEPTION,
                    "visible must be a boolean",
                ))
            }
        };
        Ok(Self { fields, visible })
    }

    fn wrong_type(key: &str, expected: &str) -> ServletError {
        ServletError::new(
            PARSE_EXCEPTION,
            format!("Expected {expected} for field \"{key}\""),
        )
    }

    /// An integer field (a JSON number or a string of digits, as protobuf JSON allows).
    pub fn i64(&self, key: &str) -> Result<Option<i64>, ServletError> {
        match self.fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| Self::wrong_type(key, "an int64")),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| Self::wrong_type(key, "an int64")),
            Some(_) => Err(Self::wrong_type(key, "an int64")),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ServletError> {
        match self.fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(_) => Err(Self::wrong_type(key, "a boolean")),
        }
    }

    pub fn string(&self, key: &str) -> Result<Option<&str>, ServletError> {
        match self.fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Self::wrong_type(key, "a string")),
        }
    }

    /// Hex bytes (the node's `ByteArray.fromHexString`; odd lengths and non-hex are refused).
    pub fn hex(&self, key: &str) -> Result<Option<Vec<u8>>, ServletError> {
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        let text = text.strip_prefix("0x").unwrap_or(text);
        if !text.len().is_multiple_of(2) {
            return Err(ServletError::new(
                HEX_EXCEPTION,
                "exception decoding Hex string: odd number of hex digits",
            ));
        }
        hex::decode(text).map(Some).map_err(|_| {
            ServletError::new(
                HEX_EXCEPTION,
                "exception decoding Hex string: invalid characters encountered in Hex string",
            )
        })
    }

    /// An address: base58 with `visible=true`, `41…` hex otherwise (the node's rule).
    pub fn address(&self, key: &str) -> Result<Option<TronAddress>, ServletError> {
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        let parsed = if self.visible {
            TronAddress::from_base58(text)
        } else {
            TronAddress::from_hex(text)
        };
        // The node decodes a bad base58 address to null and fails later with an NPE.
        parsed
            .map(Some)
            .map_err(|_| ServletError::new(NULL_POINTER, "null"))
    }

    /// A required address.
    pub fn require_address(&self, key: &str) -> Result<TronAddress, ServletError> {
        self.address(key)?
            .ok_or_else(|| ServletError::new(NULL_POINTER, "null"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_body_merge_and_visible_is_read_from_either() {
        let p = Params::parse(Some("visible=true&num=5"), b"{\"value\":\"ab\"}").unwrap();
        assert!(p.visible);
        assert_eq!(p.i64("num").unwrap(), Some(5));
        assert_eq!(p.hex("value").unwrap(), Some(vec![0xab]));
        assert_eq!(p.i64("missing").unwrap(), None);
    }

    #[test]
    fn bad_input_gives_the_node_error_classes() {
        assert_eq!(
            Params::parse(None, b"{not json").unwrap_err().class,
            JSON_EXCEPTION
        );
        assert_eq!(
            Params::parse(None, b"[1]").unwrap_err().class,
            JSON_EXCEPTION
        );
        let p = Params::parse(None, b"{\"num\":{}, \"value\":\"abc\", \"x\":\"zz\"}").unwrap();
        assert_eq!(p.i64("num").unwrap_err().class, PARSE_EXCEPTION);
        assert_eq!(p.hex("value").unwrap_err().class, HEX_EXCEPTION);
        assert_eq!(p.hex("x").unwrap_err().class, HEX_EXCEPTION);
        assert_eq!(p.address("x").unwrap_err().class, NULL_POINTER);
        assert_eq!(percent_decode("a%20b+c%zz"), "a b c%zz");
    }
}

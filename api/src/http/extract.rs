//! Request-body extraction with the API's error shape: malformed JSON is a 400, a JSON value that
//! does not fit the request (wrong type, unknown or missing field, a number out of range) a 422
//! naming the field, a body over [`super::BODY_LIMIT`] a 413.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON request body of type `T` (request DTOs use `deny_unknown_fields`).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(CONTENT_TYPE) {
            let ok = ct
                .to_str()
                .map(|v| {
                    let mime = v.split(';').next().unwrap_or("").trim();
                    mime.eq_ignore_ascii_case("application/json")
                })
                .unwrap_or(false);
            if !ok {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the body must be application/json",
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body is larger than {} bytes", super::BODY_LIMIT),
                )
            } else {
                ApiError::bad_request("unreadable_body", "the request body could not be read")
            }
        })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parses a JSON document into `T`, with the API's errors.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        json_error(&inner, (path != ".").then_some(path))
    })?;
    de.end().map_err(|e| json_error(&e, None))?;
    Ok(value)
}

fn json_error(e: &serde_json::Error, path: Option<String>) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        }
        Category::Data => {
            let message = e.to_string();
            // serde names an unknown or missing field only in its message: `field `x``.
            let named = message
                .split('`')
                .nth(1)
                .filter(|_| {
                    message.starts_with("unknown field") || message.starts_with("missing field")
                })
                .map(str::to_string);
            // The path already ends in an unknown key; a missing one is named under it.
            let missing = message.starts_with("missing field");
            let field = match (path, named) {
                (Some(p), Some(n)) if missing => Some(format!("{p}.{n}")),
                (Some(p), _) => Some(p),
                (None, n) => n,
            };
            let code = if message.starts_with("unknown field") {
                "unknown_field"
            } else if message.starts_with("missing field") {
                "missing_field"
            } else {
                "invalid_field"
            };
            let mut err = ApiError::unprocessable(code, strip_position(&message));
            if let Some(f) = field {
                err = err.field(f);
            }
            err
        }
    }
}

/// serde_json's messages end with ` at line L column C`; the field says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Dto {
        energy: u64,
        receiver: String,
    }

    fn err(body: &str) -> serde_json::Value {
        parse::<Dto>(body.as_bytes()).unwrap_err().body()["error"].clone()
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(err("{").get("code").unwrap(), "malformed_json");
        assert_eq!(
            err(r#"{"energy": "x", "receiver": "T"}"#)["field"],
            "energy"
        );
        assert_eq!(err(r#"{"energy": -1, "receiver": "T"}"#)["field"], "energy");
        assert_eq!(
            err(r#"{"energy": 1e40, "receiver": "T"}"#)["field"],
            "energy"
        );
        assert_eq!(
            err(r#"{"energy": 99999999999999999999999, "receiver": "T"}"#)["field"],
            "energy"
        );
        let e = err(r#"{"energy": 1, "receiver": "T", "extra": 1}"#);
        assert_eq!(e["code"], "unknown_field");
        assert_eq!(e["field"], "extra");
        let e = err(r#"{"energy": 1}"#);
        assert_eq!(e["code"], "missing_field");
        assert_eq!(e["field"], "receiver");
        assert_eq!(
            err(r#"{"energy": 1, "receiver": "T"} x"#)["code"],
            "malformed_json"
        );
    }
}

//! The one error shape of the API: `{"error": {"code", "message", "field"}}` with a stable code.
//! A 500 carries an opaque `id` that is also in the log line with the cause; the cause itself
//! never leaves the server.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::domain::DomainError;
use serde::Serialize;

/// Everything a request can be answered with other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A client error with its status, stable code, message and (when known) the field.
    #[error("{code}: {message}")]
    Client {
        status: StatusCode,
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// Over the caller's rate limit (429 with `Retry-After`).
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// A failure of ours; its cause is logged under an opaque id, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Client {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Names (or renames) the offending field.
    pub fn field(self, name: impl Into<String>) -> Self {
        match self {
            ApiError::Client {
                status,
                code,
                message,
                ..
            } => ApiError::Client {
                status,
                code,
                message,
                field: Some(name.into()),
            },
            other => other,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Client { status, .. } => *status,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response body (also what an idempotent retry replays).
    pub fn body(&self) -> serde_json::Value {
        match self {
            ApiError::Client {
                code,
                message,
                field,
                ..
            } => serde_json::to_value(Body {
                error: Inner {
                    code,
                    message,
                    field: field.as_deref(),
                    id: None,
                },
            })
            .unwrap_or_default(),
            ApiError::RateLimited { retry_after_secs } => serde_json::to_value(Body {
                error: Inner {
                    code: "rate_limited",
                    message: &format!("too many requests; retry after {retry_after_secs} s"),
                    field: None,
                    id: None,
                },
            })
            .unwrap_or_default(),
            ApiError::Internal(cause) => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                tracing::error!(error_id = %id, %cause, "internal error");
                serde_json::to_value(Body {
                    error: Inner {
                        code: "internal",
                        message: "internal error; quote the id when reporting it",
                        field: None,
                        id: Some(&id),
                    },
                })
                .unwrap_or_default()
            }
        }
    }

    /// A domain refusal: its stable code, and the status and field it stands for.
    pub fn domain(e: &DomainError) -> Self {
        use DomainError::*;
        let status = match e {
            InvalidTransition { .. }
            | TooEarly { .. }
            | AccountAlreadyOpen
            | OrderAlreadyPlaced
            | OrderAlreadyReserved { .. }
            | ReservationSettled { .. }
            | DepositAlreadyCredited { .. }
            | DepositAlreadyDetected { .. }
            | WalletAlreadyRegistered
            | WalletDisabled => StatusCode::CONFLICT,
            AccountNotOpen | WalletNotRegistered => StatusCode::NOT_FOUND,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let field: Option<String> = match e {
            ZeroQuantity { field }
            | QuantityTooLarge { field, .. }
            | TextRequired { field }
            | TextTooLong { field, .. }
            | TimeOutOfRange { field } => Some(field.clone()),
            EnergyBelowMinimum { .. } | EnergyAboveMaximum { .. } | PriceOverflow { .. } => {
                Some("energy".into())
            }
            DurationNotOffered { .. } => Some("duration".into()),
            AssetNotAccepted { .. } | UnknownAsset { .. } => Some("asset".into()),
            PriceAboveLimit { .. } => Some("max_price".into()),
            // Only an admin's price change reaches the API with this refusal.
            InvalidPriceTable { .. } => Some("unit_price".into()),
            ReceiverIsPoolWallet { .. } => Some("receiver".into()),
            _ => None,
        };
        ApiError::Client {
            status,
            code: e.code(),
            message: e.to_string(),
            field,
        }
    }
}

impl From<engine::Error> for ApiError {
    fn from(e: engine::Error) -> Self {
        ApiError::internal(e)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if let ApiError::RateLimited { retry_after_secs } = &self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_error_keeps_its_code_and_names_its_field() {
        let e = ApiError::domain(&DomainError::ZeroQuantity {
            field: "energy".into(),
        });
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = e.body();
        assert_eq!(body["error"]["code"], "zero_quantity");
        assert_eq!(body["error"]["field"], "energy");
        let e = ApiError::domain(&DomainError::AccountAlreadyOpen);
        assert_eq!(e.status(), StatusCode::CONFLICT);
    }

    #[test]
    fn an_internal_error_never_shows_its_cause() {
        let body = ApiError::internal("password=hunter2 at db.internal").body();
        let text = body.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("db.internal"),
            "{text}"
        );
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(body["error"]["id"].as_str().map(str::len), Some(32));
    }
}

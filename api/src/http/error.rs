//! The one error shape of the API: `{"error": {"code", "message", "field"}}` with a stable code.
//! A 500 carries an opaque `id` that is also in the log line with the cause; the cause itself
//! never leaves the server.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::domain::{
    AccountError, DepositError, DurationError, FieldError, MaintenanceError, OrderError,
    PriceListError, PriceTableError, QuoteError, TransitionError, WalletError,
};
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

    /// A domain refusal: its stable code and message, and the status and field it stands for.
    pub fn domain(e: &impl Refusal) -> Self {
        ApiError::Client {
            status: e.status(),
            code: e.code(),
            message: e.to_string(),
            field: e.field(),
        }
    }
}

/// A domain refusal as the API answers it: the domain's stable code and message, and the
/// status and request field the API gives it (422 and no field unless said otherwise).
pub trait Refusal: std::fmt::Display {
    fn code(&self) -> &'static str;

    fn status(&self) -> StatusCode {
        StatusCode::UNPROCESSABLE_ENTITY
    }

    fn field(&self) -> Option<String> {
        None
    }
}

impl Refusal for FieldError {
    fn code(&self) -> &'static str {
        FieldError::code(self)
    }

    fn field(&self) -> Option<String> {
        Some(FieldError::field(self).to_string())
    }
}

impl Refusal for TransitionError {
    fn code(&self) -> &'static str {
        TransitionError::code(self)
    }

    fn status(&self) -> StatusCode {
        StatusCode::CONFLICT
    }
}

impl Refusal for DurationError {
    fn code(&self) -> &'static str {
        DurationError::code(self)
    }

    fn field(&self) -> Option<String> {
        Some("duration".into())
    }
}

impl Refusal for QuoteError {
    fn code(&self) -> &'static str {
        QuoteError::code(self)
    }

    fn field(&self) -> Option<String> {
        match self {
            QuoteError::Field(e) => Refusal::field(e),
            QuoteError::Duration(e) => Refusal::field(e),
            QuoteError::AssetNotAccepted { .. } => Some("asset".into()),
            QuoteError::EnergyBelowMinimum { .. }
            | QuoteError::EnergyAboveMaximum { .. }
            | QuoteError::PriceOverflow { .. } => Some("energy".into()),
        }
    }
}

impl Refusal for PriceTableError {
    fn code(&self) -> &'static str {
        PriceTableError::code(self)
    }

    /// Only an admin's price change reaches the API with this refusal.
    fn field(&self) -> Option<String> {
        Some("unit_price".into())
    }
}

impl Refusal for AccountError {
    fn code(&self) -> &'static str {
        AccountError::code(self)
    }

    fn status(&self) -> StatusCode {
        use AccountError::*;
        match self {
            AccountNotOpen => StatusCode::NOT_FOUND,
            AccountAlreadyOpen
            | OrderAlreadyReserved { .. }
            | ReservationSettled { .. }
            | DepositAlreadyCredited { .. } => StatusCode::CONFLICT,
            Field(e) => e.status(),
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            AccountError::Field(e) => Refusal::field(e),
            _ => None,
        }
    }
}

impl Refusal for OrderError {
    fn code(&self) -> &'static str {
        OrderError::code(self)
    }

    fn status(&self) -> StatusCode {
        use OrderError::*;
        match self {
            TooEarly { .. } | OrderAlreadyPlaced => StatusCode::CONFLICT,
            Transition(e) => e.status(),
            Field(e) => e.status(),
            Quote(e) => e.status(),
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn field(&self) -> Option<String> {
        use OrderError::*;
        match self {
            PriceAboveLimit { .. } => Some("max_price".into()),
            ReceiverIsPoolWallet { .. } => Some("receiver".into()),
            Transition(e) => Refusal::field(e),
            Field(e) => Refusal::field(e),
            Quote(e) => Refusal::field(e),
            _ => None,
        }
    }
}

impl Refusal for DepositError {
    fn code(&self) -> &'static str {
        DepositError::code(self)
    }

    fn status(&self) -> StatusCode {
        match self {
            DepositError::DepositAlreadyDetected { .. } => StatusCode::CONFLICT,
            DepositError::Transition(e) => e.status(),
            DepositError::LogIndexMismatch { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

impl Refusal for WalletError {
    fn code(&self) -> &'static str {
        WalletError::code(self)
    }

    fn status(&self) -> StatusCode {
        use WalletError::*;
        match self {
            WalletNotRegistered => StatusCode::NOT_FOUND,
            WalletAlreadyRegistered | WalletDisabled => StatusCode::CONFLICT,
            Transition(e) => e.status(),
            Field(e) => e.status(),
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            WalletError::Transition(e) => Refusal::field(e),
            WalletError::Field(e) => Refusal::field(e),
            _ => None,
        }
    }
}

impl Refusal for PriceListError {
    fn code(&self) -> &'static str {
        PriceListError::code(self)
    }

    fn status(&self) -> StatusCode {
        match self {
            PriceListError::Table(e) => e.status(),
            PriceListError::Field(e) => e.status(),
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            PriceListError::Table(e) => Refusal::field(e),
            PriceListError::Field(e) => Refusal::field(e),
        }
    }
}

impl Refusal for MaintenanceError {
    fn code(&self) -> &'static str {
        MaintenanceError::code(self)
    }

    fn status(&self) -> StatusCode {
        match self {
            MaintenanceError::Transition(e) => e.status(),
            MaintenanceError::Field(e) => e.status(),
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            MaintenanceError::Transition(e) => Refusal::field(e),
            MaintenanceError::Field(e) => Refusal::field(e),
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
        let e = ApiError::domain(&OrderError::Field(FieldError::ZeroQuantity {
            field: "energy".into(),
        }));
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = e.body();
        assert_eq!(body["error"]["code"], "zero_quantity");
        assert_eq!(body["error"]["field"], "energy");
        let e = ApiError::domain(&AccountError::AccountAlreadyOpen);
        assert_eq!(e.status(), StatusCode::CONFLICT);
        let e = ApiError::domain(&AccountError::AccountNotOpen);
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let e = ApiError::domain(&OrderError::from(QuoteError::Duration(
            DurationError::DurationNotOffered {
                duration: "2h".into(),
            },
        )));
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = e.body();
        assert_eq!(body["error"]["code"], "duration_not_offered");
        assert_eq!(body["error"]["field"], "duration");
        assert_eq!(
            body["error"]["message"],
            "duration \"2h\" is not offered (1h, 1d, 3d, 7d, 14d or 30d)"
        );
        let e = ApiError::domain(&WalletError::from(TransitionError::new(
            "Disabled",
            "DisableWallet",
        )));
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(e.body()["error"]["code"], "invalid_transition");
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

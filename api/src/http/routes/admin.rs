//! Admins: list and revoke the API's tokens.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use crate::http::auth::{self, TokenRecord};
use crate::http::error::ApiError;
use crate::http::{AppState, Caller, Role};

pub const ROLES: &[Role] = &[Role::Admin];

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Tokens {
    pub tokens: Vec<TokenRecord>,
}

/// `GET /v1/admin/tokens`: ids, subjects, roles, expiry and revocation; never a token.
#[utoipa::path(
    get,
    path = "/v1/admin/tokens",
    tag = "admin",
    responses((status = 200, description = "Issued tokens", body = Tokens))
)]
pub async fn tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Tokens>, ApiError> {
    caller.require(ROLES)?;
    Ok(Json(Tokens {
        tokens: auth::list(&state.pool).await?,
    }))
}

/// `POST /v1/admin/tokens/{jti}/revoke`: the token is refused from now on.
#[utoipa::path(
    post,
    path = "/v1/admin/tokens/{jti}/revoke",
    tag = "admin",
    params(("jti" = String, Path, description = "Token id")),
    responses((status = 200, description = "Revoked", body = Object))
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(jti): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(ROLES)?;
    if !auth::revoke(&state.pool, &jti).await? {
        return Err(ApiError::not_found("token_not_found", "no such token"));
    }
    // Here at once; other processes on the revocation's announcement.
    state.known_tokens.forget(&jti);
    tracing::info!(jti = %jti, actor = %caller.subject, "token revoked");
    Ok(Json(serde_json::json!({"jti": jti, "revoked": true})))
}

//! The route handlers, one file per resource. Each handler names the roles it admits in a
//! `ROLES` constant next to it and checks them first.

use axum::extract::Request;

use super::error::ApiError;
use super::owners::Opener;
use super::RequestId;
use super::{AppState, Caller};
use engine::store::CommandMetadata;

pub mod accounts;
pub mod adjustments;
pub mod admin;
pub mod audit;
pub mod daily;
pub mod feed;
pub mod finance;
pub mod health;
pub mod maintenance;
pub mod orders;
pub mod prices;
pub mod quotes;
pub mod verifications;
pub mod wallets;

/// Any path we do not serve.
pub async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(
        "route_not_found",
        format!("no route {}", request.uri().path()),
    )
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// A root command's metadata: the caller as actor, the request id.
pub(crate) fn metadata(caller: &Caller, request_id: &RequestId) -> CommandMetadata {
    CommandMetadata::new(caller.actor()).with_request_id(request_id.0.clone())
}

fn account_not_found() -> ApiError {
    ApiError::not_found("account_not_found", "no such account")
}

/// The account id of `id` if `caller` may use it (404 otherwise, whether or not it exists).
async fn usable_account_id(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<engine::domain::AccountId, ApiError> {
    let account_id = engine::domain::AccountId::parse(id).map_err(|_| account_not_found())?;
    if !may_use(state, caller, account_id.as_str()).await? {
        return Err(account_not_found());
    }
    Ok(account_id)
}

/// Makes sure the account exists and is open (404 otherwise).
pub(crate) async fn open_account(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(engine::domain::AccountId, engine::domain::Account), ApiError> {
    let account_id = usable_account_id(state, caller, id).await?;
    let (account, _) = state.buses.account.load(account_id.as_str()).await?;
    if !account.is_open() {
        return Err(account_not_found());
    }
    Ok((account_id, account))
}

/// [`open_account`] for a caller that needs only the id: an account never closes, so the state
/// this process holds answers when it shows the account open; the store is asked otherwise.
pub(crate) async fn open_account_id(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<engine::domain::AccountId, ApiError> {
    let account_id = usable_account_id(state, caller, id).await?;
    let (held, _) = state.buses.account.peek(account_id.as_str()).await?;
    if held.is_open() {
        return Ok(account_id);
    }
    let (account, _) = state.buses.account.load(account_id.as_str()).await?;
    if !account.is_open() {
        return Err(account_not_found());
    }
    Ok(account_id)
}

/// An admin's reason for an action (kept on its event): trimmed, 1 to 500 characters.
pub(crate) fn reason(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.len() > 500 {
        return Err(ApiError::unprocessable(
            "invalid_reason",
            "a reason of 1 to 500 characters is required",
        )
        .field("reason"));
    }
    Ok(text.to_string())
}

/// Whether `caller` may act on (or read) `account_id`. A bot token may use the accounts its
/// subject opened, and the accounts an admin opened (house accounts); not another bot's. Every
/// other role may use every account. The owner is read from the metadata of the account's first
/// event (through the index on first events), so it needs no table of its own.
pub(crate) async fn may_use(
    state: &AppState,
    caller: &Caller,
    account_id: &str,
) -> Result<bool, ApiError> {
    if caller.role != super::Role::Bot {
        return Ok(true);
    }
    if let Some(opener) = state.owners.get(account_id) {
        return Ok(opener.admits(&caller.subject));
    }
    Ok(
        match crate::store::accounts::opener(&state.pool, account_id).await? {
            None => true, // no such account: the caller gets its usual 404
            Some((role, subject)) => {
                let opener = Opener::from_actor(role, subject);
                state.owners.remember(account_id, opener.clone());
                opener.admits(&caller.subject)
            }
        },
    )
}

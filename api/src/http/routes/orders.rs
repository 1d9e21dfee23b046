//! Orders: place one (with an `Idempotency-Key`), its status with its transaction ids, an
//! account's orders, cancel one.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use engine::domain::order::CancelledBy;
use engine::domain::{replay, Order, OrderCommand, OrderId};
use engine::store::CommandMetadata;
use projections::views::orders;
use projections::views::orders::query::OrderSummary;
use serde::{Deserialize, Serialize};

use super::quotes::{asset, duration, receiver};
use super::{metadata, open_account, open_account_id};
use crate::http::consistency::Written;
use crate::http::consistency::{fresh, projection, wait_for};
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::idempotency;
use crate::http::{AppState, Caller, RequestId, Role};

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub account_id: String,
    pub receiver: String,
    pub energy: u64,
    pub duration: String,
    #[serde(default)]
    pub asset: Option<String>,
    /// The most the customer agreed to pay (smallest units); the order is refused above it.
    #[serde(default)]
    pub max_price: Option<u64>,
}

/// An order as the API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    pub order_id: String,
    pub account_id: String,
    pub status: String,
    pub receiver: String,
    pub energy: u64,
    pub duration: String,
    pub asset: String,
    pub unit_price: u64,
    pub price: u64,
    pub placed_at: DateTime<Utc>,
    pub pay_by: DateTime<Utc>,
    pub active_until: Option<DateTime<Utc>>,
    /// The delegating pool wallet, once one is chosen.
    pub wallet: Option<String>,
    pub delegation_txid: Option<String>,
    pub delegation_block: Option<u64>,
    pub reclaim_txid: Option<String>,
    pub reclaim_block: Option<u64>,
}

fn view(order_id: &str, order: &Order) -> Option<OrderView> {
    let p = order.placement()?;
    let d = order.delegation();
    let r = order.reclaim();
    Some(OrderView {
        order_id: order_id.to_string(),
        account_id: p.account_id.to_string(),
        status: order.status().as_str().to_string(),
        receiver: p.receiver.to_base58(),
        energy: p.energy,
        duration: p.duration.as_str().to_string(),
        asset: p.quote.asset.code().to_string(),
        unit_price: p.quote.unit_price,
        price: p.quote.price.units(),
        placed_at: p.placed_at,
        pay_by: p.pay_by,
        active_until: order.active_until(),
        wallet: d.map(|d| d.wallet.to_base58()),
        delegation_txid: d.and_then(|d| {
            d.confirmed
                .as_ref()
                .map(|c| c.txid.to_string())
                .or_else(|| d.signed.as_ref().map(|s| s.txid.to_string()))
        }),
        delegation_block: d.and_then(|d| d.confirmed.as_ref().map(|c| c.block_number)),
        reclaim_txid: r.and_then(|r| {
            r.confirmed
                .as_ref()
                .map(|c| c.txid.to_string())
                .or_else(|| r.signed.as_ref().map(|s| s.txid.to_string()))
        }),
        reclaim_block: r.and_then(|r| r.confirmed.as_ref().map(|c| c.block_number)),
    })
}

/// The order `id` as `caller` may see it: a bot sees only orders of accounts it may use.
async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<OrderView, ApiError> {
    let not_found = || ApiError::not_found("order_not_found", "no such order");
    let order_id = OrderId::parse(id).map_err(|_| not_found())?;
    let (order, _) = state.buses.order.load(order_id.as_str()).await?;
    let view = view(order_id.as_str(), &order).ok_or_else(not_found)?;
    if !super::may_use(state, caller, &view.account_id).await? {
        return Err(not_found());
    }
    Ok(view)
}

pub const PLACE_ROLES: &[Role] = &[Role::Bot, Role::Admin];

/// `POST /v1/orders` with an `Idempotency-Key`: 201 with the order; a retry with the same key
/// and body gets the same answer, with another body a 422.
#[utoipa::path(
    post,
    path = "/v1/orders",
    tag = "orders",
    params(("Idempotency-Key" = String, Header, description = "Unique per order attempt; a retry with the same key gets the same answer")),
    request_body = PlaceOrder,
    responses((status = 201, description = "Placed", body = OrderView))
)]
pub async fn place(
    State(state): State<AppState>,
    caller: Caller,
    Extension(rid): Extension<RequestId>,
    Extension(written): Extension<Written>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PlaceOrder>,
) -> Result<Response, ApiError> {
    caller.require(PLACE_ROLES)?;
    let key = idempotency::key(&headers)?;
    let receiver = receiver(&body.receiver)?;
    let tier = duration(&body.duration)?;
    let asset = asset(body.asset.as_deref())?;
    if body.energy == 0 {
        return Err(
            ApiError::unprocessable("zero_quantity", "energy must be greater than zero")
                .field("energy"),
        );
    }
    if body.max_price == Some(0) {
        return Err(ApiError::unprocessable(
            "zero_quantity",
            "max_price must be greater than zero",
        )
        .field("max_price"));
    }
    let fingerprint = idempotency::request_hash(
        "POST /v1/orders",
        &serde_json::to_value(&body).map_err(ApiError::internal)?,
    );
    let account_id = open_account_id(&state, &caller, &body.account_id)
        .await
        .map_err(|e| e.field("account_id"))?;
    // The key names the command (per subject), whatever the body says; the order's id also
    // depends on the account. A retry reaches the same order and is answered from the command
    // log; the same key with another body (even another account) is refused there.
    let command_id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("POST /v1/orders\u{0}{}\u{0}{key}", caller.subject).as_bytes(),
    );
    let order_id =
        OrderId::for_client_order(&account_id, &format!("{}\u{0}{}", caller.subject, key));
    let meta = CommandMetadata::with_command_id(caller.actor(), command_id)
        .with_request_id(rid.0.clone())
        .with_fingerprint(fingerprint);
    let command = OrderCommand::PlaceOrder {
        account_id,
        receiver,
        energy: body.energy,
        duration: tier,
        asset,
        max_price: body.max_price,
        at: Utc::now(),
    };
    let outcome = match state
        .buses
        .order
        .execute(order_id.as_str(), command, meta)
        .await
    {
        Err(engine::Error::CommandIdReused { .. }) => {
            return Err(ApiError::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )
            .field(idempotency::HEADER))
        }
        other => other?,
    };
    let committed = written.accept(&state, &caller, outcome)?;
    // The order as this command left it (the same for the first answer and every retry, which
    // get the command's events back from the log), not as it may be by now.
    let events = committed.events.len() as u64;
    let order: Order = replay(committed.events);
    let view = match view(order_id.as_str(), &order) {
        Some(view) if events == committed.version => view,
        _ => load(&state, &caller, order_id.as_str()).await?,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

pub const READ_ROLES: &[Role] = &[Role::Bot, Role::Finance, Role::Auditor, Role::Admin];

/// `GET /v1/orders/{id}`: from the order itself (never older than a command answered before).
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    tag = "orders",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, description = "The order", body = OrderView))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    caller.require(READ_ROLES)?;
    Ok(Json(load(&state, &caller, &id).await?))
}

pub const CANCEL_ROLES: &[Role] = &[Role::Bot, Role::Admin];

/// `POST /v1/orders/{id}/cancel`: only before payment (409 `invalid_transition` after).
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/cancel",
    tag = "orders",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, description = "Cancelled", body = OrderView))
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Extension(rid): Extension<RequestId>,
    Extension(written): Extension<Written>,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    caller.require(CANCEL_ROLES)?;
    let current = load(&state, &caller, &id).await?;
    let command = OrderCommand::CancelOrder {
        by: CancelledBy::Customer,
        at: Utc::now(),
    };
    let outcome = state
        .buses
        .order
        .execute(&current.order_id, command, metadata(&caller, &rid))
        .await?;
    written.accept(&state, &caller, outcome)?;
    Ok(Json(load(&state, &caller, &current.order_id).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OrderSummary>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

const MAX_LIMIT: i64 = 200;

fn cursor_error() -> ApiError {
    ApiError::bad_request("invalid_cursor", "the cursor is not one this API gave").field("cursor")
}

fn encode_cursor(at: DateTime<Utc>, order_id: &str) -> String {
    hex::encode(format!("{}|{order_id}", at.timestamp_micros()))
}

fn decode_cursor(text: &str) -> Result<(DateTime<Utc>, String), ApiError> {
    let raw = hex::decode(text).map_err(|_| cursor_error())?;
    let raw = String::from_utf8(raw).map_err(|_| cursor_error())?;
    let (micros, id) = raw.split_once('|').ok_or_else(cursor_error)?;
    let micros: i64 = micros.parse().map_err(|_| cursor_error())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(cursor_error)?;
    Ok((at, id.to_string()))
}

/// `GET /v1/accounts/{id}/orders?limit=N&cursor=C`: oldest first, from the `orders` read model
/// (the projections), so an order placed a moment ago may appear a moment later.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/orders",
    tag = "orders",
    params(("id" = String, Path, description = "Account id"), ("limit" = Option<i64>, Query, description = "Page size"), ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")),
    responses((status = 200, description = "A page of the account's orders", body = OrderPage))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require(READ_ROLES)?;
    let (account_id, _) = open_account(&state, &caller, &id).await?;
    let caught_up = wait_for(&state, &caller, &headers, &[projection("orders")]).await?;
    let limit = match query.get("limit") {
        None => 50,
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request("invalid_limit", format!("limit is 1 to {MAX_LIMIT}"))
                    .field("limit")
            })?,
    };
    let after = query.get("cursor").map(|c| decode_cursor(c)).transpose()?;
    let page = orders::query::for_account(&state.pool, account_id.as_str(), after, limit).await?;
    let next_cursor = page
        .last_if_more()
        .map(|r| encode_cursor(r.placed_at, &r.order_id));
    Ok(fresh(
        OrderPage {
            orders: page.rows,
            next_cursor,
        },
        caught_up,
    ))
}

//! `Idempotency-Key` on `POST /v1/orders`, attacked: the key names the order's command, so a
//! retry (in this instance or another, at the same time or later) is answered from the command
//! log with the first answer, and the same key with any other body is a 422 that writes nothing.

use crate::support;

use std::sync::Arc;

use api::http::auth::Role;
use serde_json::{json, Value};
use support::Api;

async fn placed_orders(api: &Api) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'order' AND event_type LIKE '%Placed%'",
    )
    .fetch_one(&api.db.pool)
    .await
    .unwrap()
}

async fn place(api: &Api, base: &str, token: &str, body: &Value, key: &str) -> (u16, Value) {
    api.send_to(
        base,
        "POST",
        "/v1/orders",
        Some(token),
        Some(body.to_string()),
        &[("idempotency-key", key)],
    )
    .await
}

#[tokio::test]
async fn one_key_sent_to_two_instances_at_once_places_one_order_with_one_answer() {
    let api = Arc::new(Api::start().await);
    let other = api.serve(None).await;
    let bot = api.token(Role::Bot).await;
    let (status, _) = api
        .post("/v1/accounts", &bot, json!({"account_id": "tg:7001"}))
        .await;
    assert_eq!(status, 201);
    let body = api.order_body("tg:7001", 65_000);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (api, bot, body) = (api.clone(), bot.clone(), body.clone());
        let base = if i % 2 == 0 {
            api.base.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            place(&api, &base, &bot, &body, "twin-key").await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert_eq!(answers[0].0, 201, "{:?}", answers[0]);
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(placed_orders(&api).await, 1);
    // A retry much later still gets the first answer, although the order may have moved on.
    let (status, again) = place(&api, &other, &bot, &body, "twin-key").await;
    assert_eq!((status, &again), (201, &answers[0].1));
}

#[tokio::test]
async fn the_same_key_with_another_body_or_account_is_refused_and_writes_nothing() {
    let api = Arc::new(Api::start().await);
    let bot = api.token(Role::Bot).await;
    for account in ["tg:7101", "tg:7102"] {
        let (status, _) = api
            .post("/v1/accounts", &bot, json!({"account_id": account}))
            .await;
        assert_eq!(status, 201);
    }
    let first = api.order_body("tg:7101", 65_000);
    let (status, answer) = place(&api, &api.base, &bot, &first, "k-1").await;
    assert_eq!(status, 201, "{answer}");
    let events = api.events().await;
    for other in [
        api.order_body("tg:7101", 70_000),
        api.order_body("tg:7102", 65_000),
        json!({"account_id": "tg:7101", "receiver": first["receiver"], "energy": 65_000,
               "duration": "1h"}),
    ] {
        let (status, body) = place(&api, &api.base, &bot, &other, "k-1").await;
        assert_eq!(status, 422, "{other}: {body}");
        assert_eq!(body["error"]["code"], "idempotency_key_reused");
        assert_eq!(body["error"]["field"], "Idempotency-Key");
    }
    assert_eq!(api.events().await, events, "a refused key wrote nothing");
    assert_eq!(placed_orders(&api).await, 1);

    // Different bodies racing on one fresh key: one is placed, every other one is refused.
    let mut tasks = Vec::new();
    for energy in 0..10u64 {
        let (api, bot) = (api.clone(), bot.clone());
        let body = api.order_body("tg:7102", 65_000 + energy * 1_000);
        tasks.push(tokio::spawn(async move {
            place(&api, &api.base, &bot, &body, "k-race").await.0
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [201, 422, 422, 422, 422, 422, 422, 422, 422, 422]);
    assert_eq!(placed_orders(&api).await, 2);
}

#[tokio::test]
async fn a_refused_order_is_refused_again_for_the_same_key_and_body() {
    let api = Api::start().await;
    let bot = api.token(Role::Bot).await;
    let (status, _) = api
        .post("/v1/accounts", &bot, json!({"account_id": "tg:7201"}))
        .await;
    assert_eq!(status, 201);
    let mut body = api.order_body("tg:7201", 65_000);
    body["max_price"] = json!(1);
    let (status, first) = place(&api, &api.base, &bot, &body, "k-cheap").await;
    assert_eq!(status, 422, "{first}");
    assert_eq!(first["error"]["code"], "price_above_limit");
    let (status, again) = place(&api, &api.base, &bot, &body, "k-cheap").await;
    assert_eq!((status, &again), (422, &first));
    // The key is spent on that request: another body with it is refused as a reuse.
    body["max_price"] = json!(1_000_000_000_000u64);
    let (status, other) = place(&api, &api.base, &bot, &body, "k-cheap").await;
    assert_eq!(status, 422, "{other}");
    assert_eq!(other["error"]["code"], "idempotency_key_reused");
    assert_eq!(placed_orders(&api).await, 0);
}

//! The HTTP API over real HTTP: a server spawned on 127.0.0.1:0 against a fresh PostgreSQL
//! database and the chain simulator (the harness is in `support`).

use crate::support;

use std::sync::Arc;

use api::http::auth::{self, Claims, Role};
use api::http::ratelimit::{Limit, Limits, RateLimiter};
use api::http::TokenKeys;
use api::settings::Secret;
use chrono::{TimeDelta, Utc};
use serde_json::{json, Value};
use support::{catch_up_projections, fresh_address, metadata_of, Api};
use tron_adapter::vault::{KeyVault, Keyring, MasterKey};

/// A concrete path of the role matrix as the OpenAPI description names it.
fn templated(path: &str) -> String {
    let path = path.split('?').next().unwrap();
    let parts: Vec<&str> = path.split('/').collect();
    let mut out: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
    match (parts.get(2).copied(), parts.len()) {
        (Some("accounts" | "orders"), n) if n > 3 => out[3] = "{id}".into(),
        (Some("audit"), n) if parts[3] == "aggregates" && n > 5 => {
            out[4] = "{type}".into();
            out[5] = "{id}".into();
        }
        (Some("admin"), n) if n > 4 && parts[3] == "tokens" => out[4] = "{jti}".into(),
        (Some("admin"), n) if n > 4 && parts[3] == "wallets" => out[4] = "{address}".into(),
        (Some("admin"), n) if n > 4 && parts[3] == "accounts" => out[4] = "{id}".into(),
        (Some("admin"), n) if n > 4 && parts[3] == "jobs" => out[4] = "{id}".into(),
        (Some("admin"), n) if n > 5 && parts[3] == "prices" => {
            out[4] = "{asset}".into();
            out[5] = "{tier}".into();
        }
        _ => {}
    }
    out.join("/")
}

#[tokio::test]
async fn open_quote_order_status_cancel_over_http() {
    let api = Api::start().await;
    let bot = api.token(Role::Bot).await;

    let (status, body) = api
        .send(
            "POST",
            "/v1/accounts",
            Some(&bot),
            Some(json!({"account_id": "tg:1001"}).to_string()),
            &[("x-request-id", "req-open-1")],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["account_id"], "tg:1001");
    let rid: String = sqlx::query_scalar(
        "SELECT metadata->>'request_id' FROM events WHERE aggregate_id = 'tg:1001'",
    )
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(rid, "req-open-1");
    let (status, body) = api
        .post("/v1/accounts", &bot, json!({"account_id": "tg:1001"}))
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "account_already_open");

    let (status, body) = api.get("/v1/accounts/tg:1001/balances", &bot).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["balances"][0]["asset"], "TRX");
    assert_eq!(body["balances"][0]["available"], 0);

    let (status, a) = api.get("/v1/accounts/tg:1001/deposit-address", &bot).await;
    assert_eq!(status, 200, "{a}");
    let (_, b) = api.get("/v1/accounts/tg:1001/deposit-address", &bot).await;
    assert_eq!(a["address"], b["address"]);
    assert!(a["address"].as_str().unwrap().starts_with('T'));

    let customer = api.sim.customer().to_base58();
    let (status, q) = api
        .post(
            "/v1/quotes",
            &bot,
            json!({"energy": 65000, "duration": "1d", "receiver": customer}),
        )
        .await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["receiver_activated"], true);
    assert!(q["price"].as_u64().unwrap() > 0);
    let (_, q2) = api
        .post(
            "/v1/quotes",
            &bot,
            json!({"energy": 65000, "duration": "1d", "receiver": fresh_address()}),
        )
        .await;
    assert_eq!(q2["receiver_activated"], false);

    let (status, order) = api
        .send(
            "POST",
            "/v1/orders",
            Some(&bot),
            Some(api.order_body("tg:1001", 65000).to_string()),
            &[("idempotency-key", "order-1")],
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "Placed");
    assert_eq!(order["price"], q["price"]);
    let id = order["order_id"].as_str().unwrap().to_string();

    let (status, got) = api.get(&format!("/v1/orders/{id}"), &bot).await;
    assert_eq!(status, 200);
    assert_eq!(got["status"], "Placed");
    assert_eq!(got["delegation_txid"], Value::Null);

    let (status, cancelled) = api
        .post(&format!("/v1/orders/{id}/cancel"), &bot, json!({}))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "Cancelled");
    let (status, again) = api
        .post(&format!("/v1/orders/{id}/cancel"), &bot, json!({}))
        .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "invalid_transition");

    // The list and the finance pages come from the read models: with the projector running the
    // order appears there, with its final state.
    let projector =
        api::app::workers::start_projector(&api.db.pool, &api::app::Projector::default()).unwrap();
    let finance = api.token(Role::Finance).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, page) = api.get("/v1/accounts/tg:1001/orders?limit=10", &bot).await;
        assert_eq!(status, 200, "{page}");
        if page["orders"][0]["status"] == "Cancelled" {
            assert_eq!(page["orders"][0]["order_id"], id.as_str());
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, page) = api
        .get(
            "/v1/finance/orders?state=Cancelled&account=tg:1001",
            &finance,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["orders"][0]["order_id"], id.as_str());
    let (status, page) = api
        .get("/v1/finance/balances?account=tg:1001&asset=TRX", &finance)
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page["balances"].is_array(), "{page}");
    let metrics = reqwest::get(format!("{}/metrics", api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("trx_orders{state=\"Cancelled\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("trx_reader_lag_positions{reader="),
        "{metrics}"
    );
    projector.shutdown().await.unwrap();
    let (status, _) = api.get("/v1/orders/ord_nope", &bot).await;
    assert_eq!(status, 404);
    let (status, _) = api.get("/v1/accounts/tg:none/balances", &bot).await;
    assert_eq!(status, 404);
    let (status, body) = api.get("/v1/nowhere", &bot).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "route_not_found");
    let (status, body) = api.get("/health/ready", &bot).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["node"], "ok");
    let metrics = reqwest::get(format!("{}/metrics", api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "trx_http_requests_total{route=\"/v1/orders/{id}\",method=\"GET\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("trx_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn one_idempotency_key_sent_twenty_times_at_once_places_one_order() {
    let api = Arc::new(Api::start().await);
    let bot = api.token(Role::Bot).await;
    let (status, _) = api
        .post("/v1/accounts", &bot, json!({"account_id": "tg:2002"}))
        .await;
    assert_eq!(status, 201);
    let body = api.order_body("tg:2002", 65000).to_string();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (api, bot, body) = (api.clone(), bot.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            api.send(
                "POST",
                "/v1/orders",
                Some(&bot),
                Some(body),
                &[("idempotency-key", "same-key")],
            )
            .await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 201, "{:?}", answers[0]);
    let orders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'order' AND event_type LIKE '%Placed%'",
    )
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(orders, 1);

    let (status, body) = api
        .send(
            "POST",
            "/v1/orders",
            Some(&bot),
            Some(api.order_body("tg:2002", 70000).to_string()),
            &[("idempotency-key", "same-key")],
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(body["error"]["field"], "Idempotency-Key");
    // Another subject's key of the same name is its own.
    let other = api.token_for("bot-2", Role::Bot).await;
    let (status, _) = api
        .post("/v1/accounts", &other, json!({"account_id": "tg:2003"}))
        .await;
    assert_eq!(status, 201);
    let (status, body) = api
        .send(
            "POST",
            "/v1/orders",
            Some(&other),
            Some(api.order_body("tg:2003", 70000).to_string()),
            &[("idempotency-key", "same-key")],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_ne!(body["order_id"], answers[0].1["order_id"]);
}

#[tokio::test]
async fn bad_input_gets_a_4xx_naming_the_field_and_writes_nothing() {
    let api = Api::start().await;
    let bot = api.token(Role::Bot).await;
    let (status, _) = api
        .post("/v1/accounts", &bot, json!({"account_id": "tg:3003"}))
        .await;
    assert_eq!(status, 201);
    // One of our pool wallets, registered as an admin does it.
    let admin = api.token(Role::Admin).await;
    let pool_key = tron_adapter::PrivateKey::generate();
    let pool_wallet = pool_key.address().to_base58();
    let (status, answer) = api
        .post(
            "/v1/admin/wallets",
            &admin,
            json!({"private_key": hex::encode(pool_key.to_bytes().as_slice()), "reason": "pool"}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let before = api.events().await;
    let customer = api.sim.customer().to_base58();
    // An account hash behind version byte 0x42 instead of 0x41, in both forms (the base58check
    // one with a valid checksum).
    let wrong_version_base58 = "TeqGgsGaseoPE2RShv115t3UGmSgzqcGSe";
    let wrong_version_hex = "423c9b65b212316904572826240224750eccce29a2";
    let ok = |energy: Value| {
        json!({"account_id": "tg:3003", "receiver": customer, "energy": energy, "duration": "1d"})
            .to_string()
    };
    let cases: Vec<(String, u16, &str, Value)> = vec![
        (
            "{\"account_id\": ".into(),
            400,
            "malformed_json",
            Value::Null,
        ),
        (ok(json!("lots")), 422, "invalid_field", json!("energy")),
        (ok(json!(0)), 422, "zero_quantity", json!("energy")),
        (ok(json!(-5)), 422, "invalid_field", json!("energy")),
        (ok(json!(1e30)), 422, "invalid_field", json!("energy")),
        (
            ok(json!(5)).replace("\"energy\":5", "\"energy\":184467440737095516160"),
            422,
            "invalid_field",
            json!("energy"),
        ),
        (
            ok(json!(65000)).replace(&customer, "TNotAnAddress"),
            422,
            "invalid_address",
            json!("receiver"),
        ),
        (
            ok(json!(65000)).replace(&customer, wrong_version_base58),
            422,
            "invalid_address",
            json!("receiver"),
        ),
        (
            ok(json!(65000)).replace(&customer, wrong_version_hex),
            422,
            "invalid_address",
            json!("receiver"),
        ),
        (
            ok(json!(65000)).replace(&customer, &pool_wallet),
            422,
            "receiver_is_pool_wallet",
            json!("receiver"),
        ),
        (
            ok(json!(65000)).replace('}', ",\"asset\":\"BTC\"}"),
            422,
            "unknown_asset",
            json!("asset"),
        ),
        (
            ok(json!(65000)).replace("\"1d\"", "\"2d\""),
            422,
            "duration_not_offered",
            json!("duration"),
        ),
        (
            ok(json!(65000)).replace('}', ",\"colour\":\"red\"}"),
            422,
            "unknown_field",
            json!("colour"),
        ),
        (
            json!({"account_id": "tg:3003", "energy": 65000, "duration": "1d"}).to_string(),
            422,
            "missing_field",
            json!("receiver"),
        ),
        (
            ok(json!(65000)).replace('}', ",\"max_price\":-1}"),
            422,
            "invalid_field",
            json!("max_price"),
        ),
        (
            ok(json!(65000)).replace('}', ",\"max_price\":0}"),
            422,
            "zero_quantity",
            json!("max_price"),
        ),
        (
            ok(json!(65000)).replace("tg:3003", "tg:missing"),
            404,
            "account_not_found",
            json!("account_id"),
        ),
        (ok(json!(1)), 422, "energy_below_minimum", json!("energy")),
    ];
    for (i, (body, status, code, field)) in cases.into_iter().enumerate() {
        let key = format!("bad-{i}");
        let (got, answer) = api
            .send(
                "POST",
                "/v1/orders",
                Some(&bot),
                Some(body.clone()),
                &[("idempotency-key", key.as_str())],
            )
            .await;
        assert_eq!(got, status, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} → {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} → {answer}");
    }
    // No Idempotency-Key.
    let (status, answer) = api
        .send(
            "POST",
            "/v1/orders",
            Some(&bot),
            Some(ok(json!(65000))),
            &[],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["field"], "Idempotency-Key");
    // 10 MB.
    let big = format!("{{\"account_id\": \"{}\"}}", "a".repeat(10 * 1024 * 1024));
    let (status, answer) = api
        .send("POST", "/v1/accounts", Some(&bot), Some(big), &[])
        .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "payload_too_large");
    let (status, answer) = api
        .post("/v1/accounts", &bot, json!({"account_id": "has space"}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(answer["error"]["field"], "account_id");
    let (status, answer) = api
        .post(
            "/v1/quotes",
            &bot,
            json!({"energy": 65000, "duration": "1d", "receiver": "T123"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(answer["error"]["field"], "receiver");
    assert_eq!(api.events().await, before, "a refused request wrote events");
}

#[tokio::test]
async fn tokens_and_roles() {
    let api = Api::start().await;
    // The read-model routes wait for the projections after the caller's writes.
    let projector =
        api::app::workers::start_projector(&api.db.pool, &api::app::Projector::default()).unwrap();
    let admin = api.token(Role::Admin).await;
    let (status, _) = api
        .post("/v1/accounts", &admin, json!({"account_id": "tg:4004"}))
        .await;
    assert_eq!(status, 201);
    let path = "/v1/accounts/tg:4004/balances";

    let now = Utc::now().timestamp();
    let bot = auth::issue(
        &api.db.pool,
        &api.keys,
        "bot-x",
        Role::Bot,
        TimeDelta::hours(1),
    )
    .await
    .unwrap();
    let expired = api
        .keys
        .sign(&Claims {
            exp: now - 5,
            ..bot.claims.clone()
        })
        .unwrap();
    let wrong_signature = TokenKeys::new(&Secret::new("not our secret"))
        .sign(&bot.claims)
        .unwrap();
    let payload = bot.token.split('.').nth(1).unwrap();
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let unknown_jti = api
        .keys
        .sign(&Claims {
            jti: "never-issued".into(),
            ..bot.claims.clone()
        })
        .unwrap();
    let revoked = auth::issue(
        &api.db.pool,
        &api.keys,
        "bot-r",
        Role::Bot,
        TimeDelta::hours(1),
    )
    .await
    .unwrap();
    assert!(auth::revoke(&api.db.pool, &revoked.claims.jti)
        .await
        .unwrap());

    let (status, body) = api.send("GET", path, None, None, &[]).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    for bad in [
        expired.as_str(),
        wrong_signature.as_str(),
        alg_none.as_str(),
        unknown_jti.as_str(),
        revoked.token.as_str(),
        "garbage",
    ] {
        let (status, body) = api.get(path, bad).await;
        assert_eq!(status, 401, "{bad}: {body}");
    }
    let (status, _) = api
        .send("GET", path, None, None, &[("authorization", "Basic abc")])
        .await;
    assert_eq!(status, 401);
    assert_eq!(api.get(path, &bot.token).await.0, 200);

    // Every route × every role: admitted roles get past auth (never 401/403), others get 403.
    let customer = api.sim.customer().to_base58();
    let routes: Vec<(&str, String, Option<Value>, &[Role])> = vec![
        (
            "POST",
            "/v1/accounts".into(),
            Some(json!({"account_id": "tg:matrix"})),
            &[Role::Bot, Role::Admin],
        ),
        (
            "GET",
            path.into(),
            None,
            &[Role::Bot, Role::Finance, Role::Auditor, Role::Admin],
        ),
        (
            "GET",
            "/v1/accounts/tg:4004/deposit-address".into(),
            None,
            &[Role::Bot, Role::Admin],
        ),
        (
            "GET",
            "/v1/accounts/tg:4004/orders".into(),
            None,
            &[Role::Bot, Role::Finance, Role::Auditor, Role::Admin],
        ),
        (
            "POST",
            "/v1/quotes".into(),
            Some(json!({"energy": 65000, "duration": "1d", "receiver": customer})),
            &[Role::Bot, Role::Admin],
        ),
        (
            "POST",
            "/v1/orders".into(),
            Some(api.order_body("tg:4004", 65000)),
            &[Role::Bot, Role::Admin],
        ),
        (
            "GET",
            "/v1/orders/ord_x".into(),
            None,
            &[Role::Bot, Role::Finance, Role::Auditor, Role::Admin],
        ),
        (
            "POST",
            "/v1/orders/ord_x/cancel".into(),
            None,
            &[Role::Bot, Role::Admin],
        ),
        (
            "GET",
            "/v1/finance/balances?asset=TRX".into(),
            None,
            &[Role::Finance, Role::Auditor, Role::Admin],
        ),
        (
            "GET",
            "/v1/finance/orders?from=2020-01-01T00:00:00Z&state=Placed&asset=TRX&limit=5".into(),
            None,
            &[Role::Finance, Role::Auditor, Role::Admin],
        ),
        (
            "GET",
            "/v1/finance/deposits?account=tg:4004&to=2100-01-01T00:00:00Z".into(),
            None,
            &[Role::Finance, Role::Auditor, Role::Admin],
        ),
        (
            "GET",
            "/v1/finance/wallets".into(),
            None,
            &[Role::Finance, Role::Auditor, Role::Admin],
        ),
        (
            "GET",
            "/v1/audit/log?after=0&limit=10".into(),
            None,
            &[Role::Auditor, Role::Admin],
        ),
        (
            "GET",
            "/v1/audit/head".into(),
            None,
            &[Role::Auditor, Role::Admin],
        ),
        (
            "GET",
            "/v1/audit/heads?after=0&limit=10".into(),
            None,
            &[Role::Auditor, Role::Admin],
        ),
        (
            "GET",
            "/v1/audit/aggregates/account/tg:4004".into(),
            None,
            &[Role::Auditor, Role::Admin],
        ),
        (
            "GET",
            "/v1/finance/daily?from=2026-01-01&to=2026-01-31&asset=TRX".into(),
            None,
            &[Role::Finance, Role::Auditor, Role::Admin],
        ),
        (
            "GET",
            "/v1/audit/aggregates/account/tg:4004/state?position=1000000".into(),
            None,
            &[Role::Auditor, Role::Admin],
        ),
        (
            "POST",
            "/v1/audit/verifications".into(),
            None,
            &[Role::Auditor, Role::Admin],
        ),
        (
            "GET",
            "/v1/audit/verifications/latest".into(),
            None,
            &[Role::Auditor, Role::Admin],
        ),
        (
            "POST",
            "/v1/admin/wallets".into(),
            Some(json!({"private_key": "not a key", "reason": "matrix"})),
            &[Role::Admin],
        ),
        (
            "POST",
            format!("/v1/admin/wallets/{customer}/disable"),
            Some(json!({"reason": "matrix"})),
            &[Role::Admin],
        ),
        (
            "POST",
            format!("/v1/admin/wallets/{customer}/enable"),
            Some(json!({"reason": "matrix"})),
            &[Role::Admin],
        ),
        (
            "POST",
            "/v1/admin/accounts/tg:4004/adjustments".into(),
            Some(json!({"asset": "TRX", "delta": 1, "reason": "matrix"})),
            &[Role::Admin],
        ),
        ("GET", "/v1/admin/tokens".into(), None, &[Role::Admin]),
        (
            "POST",
            "/v1/admin/tokens/nope/revoke".into(),
            None,
            &[Role::Admin],
        ),
        (
            "GET",
            "/v1/prices".into(),
            None,
            &[Role::Bot, Role::Finance, Role::Auditor, Role::Admin],
        ),
        (
            "PUT",
            "/v1/admin/prices/TRX/1d".into(),
            Some(json!({"unit_price": 0, "reason": "matrix"})),
            &[Role::Admin],
        ),
        (
            "POST",
            "/v1/admin/rebuilds".into(),
            Some(json!({"projections": ["no_such_view"], "reason": "matrix"})),
            &[Role::Admin],
        ),
        (
            "GET",
            format!("/v1/admin/jobs/{}", uuid::Uuid::new_v4()),
            None,
            &[Role::Admin],
        ),
        (
            "POST",
            "/v1/admin/keys/rotate".into(),
            Some(json!({"reason": ""})),
            &[Role::Admin],
        ),
    ];
    // Every route of the matrix is in the OpenAPI description, with its method.
    let spec: Value = serde_json::from_str(
        &reqwest::get(format!("{}/openapi.json", api.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    for (method, path, _, _) in &routes {
        let templated = templated(path);
        let op = &spec["paths"][&templated][method.to_lowercase()];
        assert!(
            op.is_object(),
            "{method} {templated} is not in /openapi.json"
        );
        assert!(op["responses"]["401"].is_object(), "{method} {templated}");
    }
    // … and every operation of the description is in the matrix (the feed has its own test).
    for (templated_path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let covered = templated_path == "/v1/feed"
                || !templated_path.starts_with("/v1/")
                || routes.iter().any(|(m, p, _, _)| {
                    m.eq_ignore_ascii_case(method) && templated(p) == *templated_path
                });
            assert!(
                covered,
                "{method} {templated_path} is missing from the role matrix"
            );
        }
    }
    let docs = reqwest::get(format!("{}/docs", api.base)).await.unwrap();
    assert_eq!(docs.status().as_u16(), 200);
    assert!(docs.text().await.unwrap().contains("/openapi.json"));

    for role in Role::ALL {
        let token = api.token(role).await;
        for (method, path, body, admitted) in &routes {
            let (status, answer) = api
                .send(
                    method,
                    path,
                    Some(&token),
                    body.as_ref().map(Value::to_string),
                    &[("idempotency-key", "matrix")],
                )
                .await;
            if admitted.contains(&role) {
                assert!(
                    status != 401 && status != 403 && status < 500,
                    "{role} {method} {path}: {status} {answer}"
                );
            } else {
                assert_eq!(status, 403, "{role} {method} {path}: {answer}");
                assert_eq!(answer["error"]["code"], "forbidden");
            }
        }
    }
    projector.shutdown().await.unwrap();
}

#[tokio::test]
async fn auditors_read_histories_and_admins_revoke_tokens() {
    let api = Api::start().await;
    let admin = api.token(Role::Admin).await;
    let auditor = api.token(Role::Auditor).await;
    let (status, _) = api
        .send(
            "POST",
            "/v1/accounts",
            Some(&admin),
            Some(json!({"account_id": "tg:5005"}).to_string()),
            &[("x-request-id", "req-5005")],
        )
        .await;
    assert_eq!(status, 201);
    let (status, history) = api
        .get("/v1/audit/aggregates/account/tg:5005", &auditor)
        .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["events"][0]["metadata"]["request_id"], "req-5005");
    assert_eq!(history["events"][0]["metadata"]["actor_role"], "admin");
    let (status, _) = api
        .get("/v1/audit/aggregates/account/tg:none", &auditor)
        .await;
    assert_eq!(status, 404);

    let victim = auth::issue(
        &api.db.pool,
        &api.keys,
        "bot-v",
        Role::Bot,
        TimeDelta::hours(1),
    )
    .await
    .unwrap();
    assert_eq!(
        api.get("/v1/accounts/tg:5005/balances", &victim.token)
            .await
            .0,
        200
    );
    let (status, list) = api.get("/v1/admin/tokens", &admin).await;
    assert_eq!(status, 200);
    assert!(
        !list.to_string().contains(&victim.token),
        "tokens are never shown"
    );
    let path = format!("/v1/admin/tokens/{}/revoke", victim.claims.jti);
    let (status, body) = api.post(&path, &admin, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        api.get("/v1/accounts/tg:5005/balances", &victim.token)
            .await
            .0,
        401
    );
}

fn limits(burst: u32) -> Limits {
    let slow = Limit {
        burst,
        per_second: 0.2,
    };
    Limits {
        read: slow,
        write: slow,
    }
}

#[tokio::test]
async fn two_instances_on_one_redis_share_a_subjects_rate_limit() {
    let redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let api = Api::start().await;
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let a = api
        .serve(Some(
            RateLimiter::new(&redis_url, limits(5), &prefix).unwrap(),
        ))
        .await;
    let b = api
        .serve(Some(
            RateLimiter::new(&redis_url, limits(5), &prefix).unwrap(),
        ))
        .await;
    let bot = api.token(Role::Bot).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let base = if i % 2 == 0 { &a } else { &b };
        let r = api
            .http
            .get(format!("{base}/v1/accounts/tg:none/balances"))
            .bearer_auth(&bot)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if status == 429 {
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1);
            let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        vec![404, 404, 404, 404, 404, 429, 429, 429],
        "five requests across both instances use up the shared burst (is Redis at {redis_url}?)"
    );
    // Another subject has its own bucket.
    let other = api.token_for("bot-other", Role::Bot).await;
    let r = api
        .http
        .get(format!("{a}/v1/accounts/tg:none/balances"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn with_redis_unreachable_requests_are_let_through_and_counted() {
    let api = Api::start().await;
    let limiter = RateLimiter::new("redis://127.0.0.1:1", limits(1), "x:").unwrap();
    let base = api.serve(Some(limiter)).await;
    let bot = api.token(Role::Bot).await;
    for _ in 0..3 {
        let r = api
            .http
            .get(format!("{base}/v1/accounts/tg:none/balances"))
            .bearer_auth(&bot)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
    }
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("trx_rate_limit_unavailable_total 3"),
        "{metrics}"
    );
    let ready: Value = serde_json::from_str(
        &reqwest::get(format!("{base}/health/ready"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ready["status"], "ok", "{ready}");
    assert_eq!(ready["checks"]["redis"], "unavailable", "{ready}");
}

#[tokio::test]
async fn admins_register_disable_and_enable_wallets_as_events_with_actor_and_reason() {
    let api = Api::start().await;
    let admin = api.token(Role::Admin).await;
    let key = tron_adapter::PrivateKey::generate();
    let key_hex = hex::encode(key.to_bytes().as_slice());
    let address = key.address().to_base58();

    // Bad input is refused naming the field, and writes nothing.
    let before = api.events().await;
    for (body, field) in [
        (
            json!({"private_key": "abc", "reason": "new pool"}),
            "private_key",
        ),
        (json!({"private_key": key_hex, "reason": "  "}), "reason"),
        (json!({"private_key": key_hex}), "reason"),
        (
            json!({"private_key": key_hex, "reason": "x", "extra": 1}),
            "extra",
        ),
    ] {
        let (status, answer) = api.post("/v1/admin/wallets", &admin, body).await;
        assert!([400, 422].contains(&status), "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
        assert!(!answer.to_string().contains(&key_hex));
    }
    assert_eq!(api.events().await, before);

    let (status, wallet) = api
        .post(
            "/v1/admin/wallets",
            &admin,
            json!({"private_key": key_hex, "reason": "second pool wallet"}),
        )
        .await;
    assert_eq!(status, 201, "{wallet}");
    assert_eq!(wallet["address"], address.as_str());
    assert_eq!(wallet["enabled"], true);
    assert!(
        !wallet.to_string().contains(&key_hex),
        "the key is never returned"
    );
    // The key is in the vault, sealed: the vault gives it back, the table does not show it.
    let vault = KeyVault::new(
        api.db.pool.clone(),
        Keyring::new(MasterKey::from_hex(&api.master).unwrap()),
    );
    let stored = vault.wallet_key(&key.address()).await.unwrap();
    assert_eq!(stored.address(), key.address());
    let everything: String =
        sqlx::query_scalar("SELECT string_agg(payload::text || metadata::text, ' ') FROM events")
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    assert!(!everything.contains(&key_hex), "no key material in events");
    let meta = metadata_of(&api, &address, "WalletRegistered").await;
    assert_eq!(meta[0]["actor_subject"], "admin-1");
    assert_eq!(meta[0]["actor_role"], "admin");
    assert_eq!(meta[0]["reason"], "second pool wallet");

    let (status, again) = api
        .post(
            "/v1/admin/wallets",
            &admin,
            json!({"private_key": key_hex, "reason": "twice"}),
        )
        .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "wallet_already_registered");

    let disable = format!("/v1/admin/wallets/{address}/disable");
    let enable = format!("/v1/admin/wallets/{address}/enable");
    let (status, body) = api
        .post(&disable, &admin, json!({"reason": "key rotation"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enabled"], false);
    let (status, body) = api.post(&disable, &admin, json!({"reason": "again"})).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = api
        .post(&enable, &admin, json!({"reason": "rotation done"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enabled"], true);
    let disabled = metadata_of(&api, &address, "WalletDisabled").await;
    assert_eq!(disabled[0]["reason"], "key rotation");
    assert_eq!(disabled[0]["actor_subject"], "admin-1");
    let enabled = metadata_of(&api, &address, "WalletEnabled").await;
    assert_eq!(enabled[0]["reason"], "rotation done");

    let unknown = fresh_address();
    let (status, body) = api
        .post(
            &format!("/v1/admin/wallets/{unknown}/disable"),
            &admin,
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = api
        .post(
            "/v1/admin/wallets/Tnot-an-address/disable",
            &admin,
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "address");
}

#[tokio::test]
async fn admin_balance_adjustments_need_a_reason_and_never_overdraw() {
    let api = Api::start().await;
    let admin = api.token(Role::Admin).await;
    let (status, _) = api
        .post("/v1/accounts", &admin, json!({"account_id": "tg:7007"}))
        .await;
    assert_eq!(status, 201);
    let path = "/v1/admin/accounts/tg:7007/adjustments";
    let (status, body) = api
        .post(
            path,
            &admin,
            json!({"asset": "TRX", "delta": 5_000_000, "reason": "goodwill credit"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["balances"][0]["asset"], "TRX");
    assert_eq!(body["balances"][0]["available"], 5_000_000);
    assert_eq!(body["balances"][0]["adjusted_in"], 5_000_000);

    let before = api.events().await;
    for (body, field) in [
        (json!({"asset": "TRX", "delta": 0, "reason": "x"}), "delta"),
        (json!({"asset": "BTC", "delta": 1, "reason": "x"}), "asset"),
        (json!({"asset": "TRX", "delta": 1, "reason": ""}), "reason"),
        (
            json!({"asset": "TRX", "delta": "1", "reason": "x"}),
            "delta",
        ),
        (
            json!({"asset": "TRX", "delta": 9_223_372_036_854_775_808u64, "reason": "x"}),
            "delta",
        ),
    ] {
        let (status, answer) = api.post(path, &admin, body).await;
        assert!([400, 422].contains(&status), "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, answer) = api
        .post(
            path,
            &admin,
            json!({"asset": "TRX", "delta": -5_000_001, "reason": "too much"}),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "adjustment_below_zero");
    assert_eq!(api.events().await, before, "nothing written");
    let (status, _) = api
        .post(
            "/v1/admin/accounts/tg:none/adjustments",
            &admin,
            json!({"asset": "TRX", "delta": 1, "reason": "x"}),
        )
        .await;
    assert_eq!(status, 404);

    let meta = metadata_of(&api, "tg:7007", "BalanceAdjusted").await;
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0]["reason"], "goodwill credit");
    assert_eq!(meta[0]["actor_subject"], "admin-1");
}

/// Waits for the latest verification to finish; returns it.
async fn verification_done(api: &Api, auditor: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = api.get("/v1/audit/verifications/latest", auditor).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] != "running" {
            return body;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn auditors_read_state_as_of_a_position_or_time_and_run_chain_verifications() {
    let api = Api::start().await;
    let admin = api.token(Role::Admin).await;
    let auditor = api.token(Role::Auditor).await;
    api.post("/v1/accounts", &admin, json!({"account_id": "tg:8008"}))
        .await;
    let adjust = "/v1/admin/accounts/tg:8008/adjustments";
    for delta in [3_000_000, -1_000_000] {
        let (status, body) = api
            .post(
                adjust,
                &admin,
                json!({"asset": "TRX", "delta": delta, "reason": "audit test"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (_, history) = api
        .get("/v1/audit/aggregates/account/tg:8008", &auditor)
        .await;
    let positions: Vec<i64> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["global_position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions.len(), 3);

    let state = "/v1/audit/aggregates/account/tg:8008/state";
    let mut seen = Vec::new();
    for (i, p) in positions.iter().enumerate() {
        let (status, report) = api.get(&format!("{state}?position={p}"), &auditor).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["version"], i as i64 + 1);
        assert_eq!(report["last_global_position"], *p);
        seen.push(report["state"].clone());
    }
    assert_ne!(seen[1], seen[2], "each event changes the state");
    assert!(seen[1].to_string().contains("3000000"), "{}", seen[1]);
    assert!(seen[2].to_string().contains("2000000"), "{}", seen[2]);
    let (status, now) = api.get(state, &auditor).await;
    assert_eq!(status, 200);
    assert_eq!(now["state"], seen[2]);
    let (status, _) = api
        .get(&format!("{state}?at=2000-01-01T00:00:00Z"), &auditor)
        .await;
    assert_eq!(status, 404, "nothing existed then");
    let (status, report) = api
        .get(&format!("{state}?at=2100-01-01T00:00:00Z"), &auditor)
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["version"], 3);
    for bad in [
        "?position=-1",
        "?position=x",
        "?at=yesterday",
        "?at=2100-01-01T00:00:00Z&position=1",
    ] {
        let (status, body) = api.get(&format!("{state}{bad}"), &auditor).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["field"].is_string(), "{body}");
    }

    // Verifications: none yet; one over the sequenced log is ok; after tampering it fails.
    let latest = "/v1/audit/verifications/latest";
    assert_eq!(api.get(latest, &auditor).await.0, 404);
    catch_up_projections(&api).await;
    let (status, started) = api
        .post("/v1/audit/verifications", &auditor, json!({}))
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["requested_by"], "auditor-1");
    let done = verification_done(&api, &auditor).await;
    assert_eq!(done["id"], started["id"]);
    assert_eq!(done["status"], "ok", "{done}");
    assert_eq!(done["events"], api.events().await);

    let mut tamper = api.db.connect().await;
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut tamper)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE events SET payload = jsonb_set(payload::jsonb, '{BalanceAdjusted,delta}', \
                '9000000')::json \
         WHERE global_position = $1",
    )
    .bind(positions[1])
    .execute(&mut tamper)
    .await
    .unwrap();
    let (status, _) = api
        .post("/v1/audit/verifications", &auditor, json!({}))
        .await;
    assert_eq!(status, 202);
    let done = verification_done(&api, &auditor).await;
    assert_eq!(done["status"], "failed", "{done}");
    let problems = done["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "altered" && p["global_position"] == positions[1]),
        "{done}"
    );
}

#[tokio::test]
async fn the_daily_report_comes_as_json_or_csv_and_readiness_watches_projection_lag() {
    let api = Api::start().await;
    let admin = api.token(Role::Admin).await;
    let finance = api.token(Role::Finance).await;
    api.post("/v1/accounts", &admin, json!({"account_id": "tg:9009"}))
        .await;
    api.post(
        "/v1/admin/accounts/tg:9009/adjustments",
        &admin,
        json!({"asset": "TRX", "delta": 7_000_000, "reason": "report test"}),
    )
    .await;

    // Nothing has projected these events: with a 1 s bound, readiness fails once they are older.
    let strict = api
        .serve_with(None, |s| {
            s.with_ready_max_lag(std::time::Duration::from_secs(1))
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1_300)).await;
    let ready = reqwest::get(format!("{strict}/health/ready"))
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let body: Value = serde_json::from_str(&ready.text().await.unwrap()).unwrap();
    assert_eq!(
        body["checks"]["projections"]["status"], "unavailable",
        "{body}"
    );
    assert!(
        body["checks"]["projections"]["lag_seconds"]
            .as_f64()
            .unwrap()
            >= 1.0
    );

    catch_up_projections(&api).await;
    let ready = reqwest::get(format!("{strict}/health/ready"))
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&ready.text().await.unwrap()).unwrap();
    assert_eq!(body["checks"]["projections"]["status"], "ok", "{body}");
    assert_eq!(body["checks"]["projections"]["lag_seconds"], 0.0);

    let today = Utc::now().date_naive().to_string();
    let path = format!("/v1/finance/daily?from={today}&to={today}");
    let (status, report) = api.get(&path, &finance).await;
    assert_eq!(status, 200, "{report}");
    let days = report["days"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{report}");
    assert_eq!(days[0]["day"], today.as_str());
    assert_eq!(days[0]["asset"], "TRX");
    assert_eq!(days[0]["adjustments_in"], 7_000_000);
    let (status, usdt) = api.get(&format!("{path}&asset=USDT"), &finance).await;
    assert_eq!(status, 200);
    assert_eq!(usdt["days"], json!([]));

    let csv = api
        .http
        .get(format!("{}{path}", api.base))
        .bearer_auth(&finance)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let row: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(header.len(), row.len());
    let cell = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(cell("day"), today);
    assert_eq!(cell("asset"), "TRX");
    assert_eq!(cell("adjustments_in"), "7000000");

    for (query, field) in [
        ("to=2026-01-01".to_string(), "from"),
        ("from=2026-01-02&to=2026-01-01".to_string(), "to"),
        ("from=2026-13-01&to=2026-01-01".to_string(), "from"),
        ("from=2020-01-01&to=2026-01-01".to_string(), "to"),
        (format!("from={today}&to={today}&asset=BTC"), "asset"),
    ] {
        let (status, body) = api
            .get(&format!("/v1/finance/daily?{query}"), &finance)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}

#[tokio::test]
async fn a_role_with_an_ip_allowlist_is_refused_from_elsewhere() {
    use api::http::allowlist::{parse_list, Allowlist};
    let api = Api::start().await;
    let admin = api.token(Role::Admin).await;
    let bot = api.token(Role::Bot).await;
    // Admins only from 10.0.0.0/8; the test calls from 127.0.0.1. Bots have no list.
    let elsewhere = api
        .serve_with(None, |s| {
            s.with_allowlist(
                Allowlist::default().with(Role::Admin, parse_list("10.0.0.0/8").unwrap()),
            )
        })
        .await;
    let here = api
        .serve_with(None, |s| {
            s.with_allowlist(
                Allowlist::default().with(Role::Admin, parse_list("127.0.0.0/8, ::1").unwrap()),
            )
        })
        .await;
    let call = |base: String, token: String| {
        let http = api.http.clone();
        async move {
            let r = http
                .get(format!("{base}/v1/admin/tokens"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            (status, body)
        }
    };
    let (status, body) = call(elsewhere.clone(), admin.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "ip_not_allowed");
    let (status, body) = call(elsewhere.clone(), bot.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["code"], "forbidden",
        "a bot is refused by role, not address"
    );
    let (status, body) = call(here, admin.clone()).await;
    assert_eq!(status, 200, "{body}");
    // Only the admin role is fenced: a bot reads balances from anywhere.
    let (status, _) = api
        .post("/v1/accounts", &admin, json!({"account_id": "tg:1212"}))
        .await;
    assert_eq!(status, 201);
    let r = api
        .http
        .get(format!("{elsewhere}/v1/accounts/tg:1212/balances"))
        .bearer_auth(&bot)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn a_bot_uses_its_own_accounts_and_never_another_bots() {
    let api = Api::start().await;
    let alice = api.token_for("bot-alice", Role::Bot).await;
    let mallory = api.token_for("bot-mallory", Role::Bot).await;
    let admin = api.token(Role::Admin).await;
    let (status, _) = api
        .post("/v1/accounts", &alice, json!({"account_id": "tg:alice-1"}))
        .await;
    assert_eq!(status, 201);
    let (status, order) = api
        .send(
            "POST",
            "/v1/orders",
            Some(&alice),
            Some(api.order_body("tg:alice-1", 65_000).to_string()),
            &[("idempotency-key", "alice-order-1")],
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let order_id = order["order_id"].as_str().unwrap().to_string();

    let before = api.events().await;
    for path in [
        "/v1/accounts/tg:alice-1/balances".to_string(),
        "/v1/accounts/tg:alice-1/deposit-address".to_string(),
        "/v1/accounts/tg:alice-1/orders".to_string(),
        format!("/v1/orders/{order_id}"),
    ] {
        let (status, body) = api.get(&path, &mallory).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(api.get(&path, &alice).await.0, 200, "{path}");
        assert_eq!(api.get(&path, &admin).await.0, 200, "{path}");
    }
    let (status, body) = api
        .post(
            &format!("/v1/orders/{order_id}/cancel"),
            &mallory,
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = api
        .send(
            "POST",
            "/v1/orders",
            Some(&mallory),
            Some(api.order_body("tg:alice-1", 65_000).to_string()),
            &[("idempotency-key", "mallory-order-1")],
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["field"], "account_id");
    assert_eq!(
        api.events().await,
        before,
        "nothing written for the other bot"
    );

    // A house account an admin opened is open to every bot.
    api.post("/v1/accounts", &admin, json!({"account_id": "tg:house"}))
        .await;
    assert_eq!(
        api.get("/v1/accounts/tg:house/balances", &mallory).await.0,
        200
    );
    assert_eq!(
        api.get("/v1/accounts/tg:house/balances", &alice).await.0,
        200
    );
}

/// Reads the live feed from `after` until `want` events arrived (or `wait` passed); returns each
/// event's id, type and data.
async fn read_feed(
    api: &Api,
    token: &str,
    after: &str,
    want: usize,
    wait: std::time::Duration,
) -> Vec<(i64, String, Value)> {
    let mut response = api
        .http
        .get(format!("{}/v1/feed", api.base))
        .bearer_auth(token)
        .header("last-event-id", after)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let deadline = tokio::time::Instant::now() + wait;
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < want {
        let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(c))) => c,
            _ => break,
        };
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (None, String::new(), Value::Null);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().parse::<i64>().unwrap());
                } else if let Some(v) = line.strip_prefix("event:") {
                    kind = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str(v.trim()).unwrap();
                }
            }
            if let Some(id) = id {
                events.push((id, kind, data));
            }
        }
    }
    events
}

#[tokio::test]
async fn the_live_feed_streams_order_deposit_and_wallet_events_filtered_by_the_token() {
    let api = Api::start().await;
    let projector =
        api::app::workers::start_projector(&api.db.pool, &api::app::Projector::default()).unwrap();
    let alice = api.token_for("bot-alice", Role::Bot).await;
    let mallory = api.token_for("bot-mallory", Role::Bot).await;
    let finance = api.token(Role::Finance).await;
    let admin = api.token(Role::Admin).await;
    for (token, account) in [(&alice, "tg:a"), (&mallory, "tg:m")] {
        let (status, _) = api
            .post("/v1/accounts", token, json!({"account_id": account}))
            .await;
        assert_eq!(status, 201);
        let (status, body) = api
            .send(
                "POST",
                "/v1/orders",
                Some(token),
                Some(api.order_body(account, 65_000).to_string()),
                &[("idempotency-key", account)],
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let key = hex::encode(tron_adapter::PrivateKey::generate().to_bytes().as_slice());
    let (status, _) = api
        .post(
            "/v1/admin/wallets",
            &admin,
            json!({"private_key": key, "reason": "feed test"}),
        )
        .await;
    assert_eq!(status, 201);

    // Finance sees both orders and the wallet, in audit order, and no account events.
    let long = std::time::Duration::from_secs(20);
    let seen = read_feed(&api, &finance, "0", 3, long).await;
    let kinds: Vec<&str> = seen.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(
        kinds,
        ["OrderPlaced", "OrderPlaced", "WalletRegistered"],
        "{seen:?}"
    );
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(seen[0].2["audit_seq"], seen[0].0);
    // Alice sees her own order only (the next thing she could see would be hers too).
    let hers = read_feed(&api, &alice, "0", 1, long).await;
    assert_eq!(hers.len(), 1);
    assert_eq!(hers[0].2["account_id"], "tg:a");
    assert_eq!(hers[0].1, "OrderPlaced");
    let more = read_feed(
        &api,
        &alice,
        &hers[0].0.to_string(),
        1,
        std::time::Duration::from_millis(800),
    )
    .await;
    assert!(more.iter().all(|e| e.2["account_id"] == "tg:a"), "{more:?}");
    let his = read_feed(&api, &mallory, "0", 1, long).await;
    assert_eq!(his[0].2["account_id"], "tg:m");
    // Reconnecting after the first event resumes right after it.
    let resumed = read_feed(&api, &finance, &seen[0].0.to_string(), 2, long).await;
    assert_eq!(resumed, seen[1..].to_vec());
    // A bad cursor names its field.
    let r = api
        .http
        .get(format!("{}/v1/feed?after=x", api.base))
        .bearer_auth(&finance)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    projector.shutdown().await.unwrap();

    // A shutdown ends open feeds, so the server stops at once instead of waiting on them.
    let (base, stop, handle) = api.serve_stoppable(None, |s| s).await;
    let mut open = api
        .http
        .get(format!("{base}/v1/feed"))
        .bearer_auth(&finance)
        .send()
        .await
        .unwrap();
    stop.send(()).unwrap();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Ok(Some(_)) = open.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the feed ended on shutdown");
    tokio::time::timeout(std::time::Duration::from_secs(5), handle)
        .await
        .expect("the server stopped")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_read_of_the_read_models_right_after_a_command_shows_its_effect() {
    let api = Api::start().await;
    let projector =
        api::app::workers::start_projector(&api.db.pool, &api::app::Projector::default()).unwrap();
    let bot = api.token_for("bot-ryw", Role::Bot).await;
    let (status, _) = api
        .post("/v1/accounts", &bot, json!({"account_id": "tg:ryw"}))
        .await;
    assert_eq!(status, 201);
    let place = |key: String| {
        let (api, bot) = (&api, &bot);
        async move {
            let r = api
                .http
                .post(format!("{}/v1/orders", api.base))
                .bearer_auth(bot)
                .header("idempotency-key", key)
                .header("content-type", "application/json")
                .body(api.order_body("tg:ryw", 65_000).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 201);
            let position = r.headers()["x-log-position"].to_str().unwrap().to_string();
            let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            (body["order_id"].as_str().unwrap().to_string(), position)
        }
    };
    // Each list right after a placement (no retry, no sleep) already has the new order.
    for i in 0..10 {
        let (order_id, _) = place(format!("ryw-{i}")).await;
        let (status, page) = api.get("/v1/accounts/tg:ryw/orders?limit=100", &bot).await;
        assert_eq!(status, 200);
        let ids: Vec<&str> = page["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["order_id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&order_id.as_str()),
            "order {i} missing: {page}"
        );
    }
    // Another instance has no memory of the write; the client's header carries it there.
    let other = api.serve(None).await;
    let (order_id, position) = place("ryw-other".into()).await;
    let r = api
        .http
        .get(format!("{other}/v1/accounts/tg:ryw/orders?limit=100"))
        .bearer_auth(&bot)
        .header("x-log-position", &position)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("x-read-model-behind").is_none());
    assert!(r.text().await.unwrap().contains(&order_id));
    let r = api
        .http
        .get(format!("{other}/v1/accounts/tg:ryw/orders"))
        .bearer_auth(&bot)
        .header("x-log-position", "not-a-position")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["error"]["field"], "X-Log-Position");

    // With the projector stopped the read waits its bounded time, then answers, marked.
    projector.shutdown().await.unwrap();
    place("ryw-stopped".into()).await;
    let started = std::time::Instant::now();
    let r = api
        .http
        .get(format!("{}/v1/accounts/tg:ryw/orders", api.base))
        .bearer_auth(&bot)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-read-model-behind"], "true");
    assert!(started.elapsed() >= api::http::consistency::MAX_WAIT);
}

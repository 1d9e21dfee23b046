//! Admin actions that are not about one account or wallet, over real HTTP: prices per duration
//! tier, projection rebuilds and master-key rotation. Each is an event with its actor and
//! reason; bad input is refused naming the field and writes nothing.

use crate::support;

use std::time::Duration;

use api::http::auth::Role;
use serde_json::{json, Value};
use support::{metadata_of, Api};
use tron_adapter::vault::{KeyVault, Keyring, MasterKey};

/// The unit price the prices list gives for `asset` and `tier`.
fn unit_price(prices: &Value, asset: &str, tier: &str) -> Option<u64> {
    prices["prices"]
        .as_array()?
        .iter()
        .find(|p| p["asset"] == asset && p["tier"] == tier)?["unit_price"]
        .as_u64()
}

/// The payloads of the events of one type, in log order.
async fn payloads(api: &Api, event_type: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT payload::jsonb -> $1 FROM events WHERE event_type = $1 ORDER BY global_position",
    )
    .bind(event_type)
    .fetch_all(&api.db.pool)
    .await
    .unwrap()
}

async fn quote_unit_price(api: &Api, base: &str, token: &str) -> u64 {
    let (status, quote) = api
        .send_to(
            base,
            "POST",
            "/v1/quotes",
            Some(token),
            Some(
                json!({"energy": 100000, "duration": "1d", "receiver": api.sim.customer().to_base58()})
                    .to_string(),
            ),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{quote}");
    quote["unit_price"].as_u64().unwrap()
}

#[tokio::test]
async fn an_admin_sets_a_tier_price_as_an_event_and_every_api_instance_sells_at_it() {
    let api = Api::start().await;
    let admin = api.token(Role::Admin).await;
    let bot = api.token(Role::Bot).await;
    let (status, before) = api.get("/v1/prices", &bot).await;
    assert_eq!(status, 200, "{before}");
    let configured = unit_price(&before, "TRX", "1d").expect("the sample prices sell 1d in TRX");
    assert!(before["min_energy"].as_u64().unwrap() > 0);

    // Bad input names the field and writes nothing.
    let events = api.events().await;
    for (path, body, field) in [
        (
            "/v1/admin/prices/TRX/1d",
            json!({"unit_price": 0, "reason": "free"}),
            "unit_price",
        ),
        (
            "/v1/admin/prices/TRX/1d",
            json!({"unit_price": -5, "reason": "negative"}),
            "unit_price",
        ),
        (
            "/v1/admin/prices/TRX/1d",
            json!({"unit_price": "80", "reason": "a string"}),
            "unit_price",
        ),
        (
            "/v1/admin/prices/TRX/1d",
            json!({"unit_price": engine::domain::MAX_AMOUNT + 1, "reason": "above the largest amount"}),
            "unit_price",
        ),
        (
            "/v1/admin/prices/TRX/2d",
            json!({"unit_price": 80, "reason": "no such tier"}),
            "tier",
        ),
        (
            "/v1/admin/prices/BTC/1d",
            json!({"unit_price": 80, "reason": "no such asset"}),
            "asset",
        ),
        (
            "/v1/admin/prices/TRX/1d",
            json!({"unit_price": 80}),
            "reason",
        ),
        (
            "/v1/admin/prices/TRX/1d",
            json!({"unit_price": 80, "reason": " "}),
            "reason",
        ),
        (
            "/v1/admin/prices/TRX/1d",
            json!({"unit_price": 80, "reason": "x", "currency": "TRX"}),
            "currency",
        ),
    ] {
        let (status, answer) = api
            .send("PUT", path, Some(&admin), Some(body.to_string()), &[])
            .await;
        assert!(
            [400, 422].contains(&status),
            "{path} {body}: {status} {answer}"
        );
        assert_eq!(answer["error"]["field"], field, "{path} {body}: {answer}");
    }
    assert_eq!(
        api.events().await,
        events,
        "a refused price change writes nothing"
    );

    // A second instance on the same database, started before the change.
    let other = api.serve(None).await;
    let new_price = configured - 20;
    let (status, after) = api
        .send(
            "PUT",
            "/v1/admin/prices/TRX/1d",
            Some(&admin),
            Some(json!({"unit_price": new_price, "reason": "weekend promotion"}).to_string()),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(unit_price(&after, "TRX", "1d"), Some(new_price));
    assert_eq!(
        unit_price(&after, "TRX", "1h"),
        unit_price(&before, "TRX", "1h"),
        "other tiers keep their prices"
    );
    // The event says what changed, who did it and why.
    let set = payloads(&api, "TierPriceSet").await;
    assert_eq!(set.len(), 1);
    assert_eq!(set[0]["asset"], "TRX");
    assert_eq!(set[0]["tier"], "1d");
    assert_eq!(set[0]["unit_price"], new_price);
    assert_eq!(set[0]["previous"], Value::Null);
    assert_eq!(set[0]["actor"], "admin-1");
    assert_eq!(set[0]["reason"], "weekend promotion");
    let meta = metadata_of(&api, "default", "TierPriceSet").await;
    assert_eq!(meta[0]["actor_role"], "admin");

    // This instance quotes and sells at the new price at once…
    assert_eq!(quote_unit_price(&api, &api.base, &bot).await, new_price);
    let (status, _) = api
        .post("/v1/accounts", &bot, json!({"account_id": "tg:7001"}))
        .await;
    assert_eq!(status, 201);
    let (status, order) = api
        .send(
            "POST",
            "/v1/orders",
            Some(&bot),
            Some(api.order_body("tg:7001", 100_000).to_string()),
            &[("idempotency-key", "price-1")],
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["unit_price"], new_price);
    assert_eq!(order["price"], 100_000 * new_price);
    // … and the other instance within its refresh interval.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = quote_unit_price(&api, &other, &bot).await;
        if seen == new_price {
            break;
        }
        assert_eq!(seen, configured);
        assert!(
            std::time::Instant::now() < deadline,
            "the other instance never saw the new price"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A bot reads prices but does not set them.
    let (status, _) = api
        .send(
            "PUT",
            "/v1/admin/prices/TRX/1d",
            Some(&bot),
            Some(json!({"unit_price": 1, "reason": "cheap"}).to_string()),
            &[],
        )
        .await;
    assert_eq!(status, 403);
    // A second change records the price it replaced.
    let (status, _) = api
        .send(
            "PUT",
            "/v1/admin/prices/TRX/1d",
            Some(&admin),
            Some(json!({"unit_price": configured, "reason": "promotion over"}).to_string()),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let set = payloads(&api, "TierPriceSet").await;
    assert_eq!(set[1]["previous"], new_price);
}

/// Polls a job until it is no longer running.
async fn finished_job(api: &Api, admin: &str, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, job) = api.get(&format!("/v1/admin/jobs/{id}"), admin).await;
        assert_eq!(status, 200, "{job}");
        if job["status"] != "running" {
            return job;
        }
        assert!(std::time::Instant::now() < deadline, "{job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_admin_rebuilds_a_projection_as_a_job_recorded_with_its_actor_and_reason() {
    let api = Api::start().await;
    let admin = api.token(Role::Admin).await;
    for n in 0..3 {
        let (status, _) = api
            .post(
                "/v1/accounts",
                &admin,
                json!({"account_id": format!("tg:80{n}")}),
            )
            .await;
        assert_eq!(status, 201);
    }
    // The balance view was never projected here (no projector runs): the rebuild fills it.
    let rows = |api: &Api| {
        let pool = api.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM account_balances")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(rows(&api).await, 0);

    let events = api.events().await;
    for (body, field) in [
        (
            json!({"projections": ["no_such_view"], "reason": "x"}),
            "projections",
        ),
        (json!({"projections": [], "reason": "x"}), "projections"),
        (
            json!({"projections": "orders", "reason": "x"}),
            "projections",
        ),
        (json!({"projections": ["orders"]}), "reason"),
    ] {
        let (status, answer) = api.post("/v1/admin/rebuilds", &admin, body.clone()).await;
        assert!([400, 422].contains(&status), "{body}: {status} {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    assert_eq!(
        api.events().await,
        events,
        "a refused rebuild writes nothing"
    );

    let (status, job) = api
        .post(
            "/v1/admin/rebuilds",
            &admin,
            json!({"projections": ["account_balances"], "reason": "balances view changed"}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["kind"], "rebuild");
    assert_eq!(job["actor"], "admin-1");
    let id = job["id"].as_str().unwrap().to_string();
    let job = finished_job(&api, &admin, &id).await;
    assert_eq!(job["status"], "finished", "{job}");
    assert_eq!(job["projections"], json!(["account_balances"]));
    assert!(job["events"].as_u64().unwrap() >= 3, "{job}");
    assert!(rows(&api).await >= 3, "the rebuilt view holds the accounts");
    let started = metadata_of(&api, &id, "RebuildStarted").await;
    assert_eq!(started[0]["actor_subject"], "admin-1");
    let history: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'maintenance' \
         AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&id)
    .fetch_all(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(history, ["RebuildStarted", "RebuildFinished"]);
    let (status, history) = api
        .get(&format!("/v1/audit/aggregates/maintenance/{id}"), &admin)
        .await;
    assert_eq!(status, 200, "auditors read a job's history: {history}");

    // While another rebuild of the same projection holds its lock, a new one is refused.
    let mut holder = api.db.pool.acquire().await.unwrap();
    let held: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_lock(hashtext('trx-energy'), hashtext('rebuild:' || 'orders'))",
    )
    .fetch_one(&mut *holder)
    .await
    .unwrap();
    assert!(held);
    let events = api.events().await;
    let (status, answer) = api
        .post(
            "/v1/admin/rebuilds",
            &admin,
            json!({"projections": ["orders"], "reason": "twice"}),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "rebuild_running");
    assert_eq!(api.events().await, events);
    drop(holder);

    let (status, answer) = api.get("/v1/admin/jobs/not-a-job", &admin).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"]["code"], "job_not_found");
}

#[tokio::test]
async fn an_admin_rotates_the_master_key_through_the_api_and_the_old_key_no_longer_opens_anything()
{
    let api = Api::start().await;
    let admin = api.token(Role::Admin).await;
    let key = tron_adapter::PrivateKey::generate();
    let key_hex = hex::encode(key.to_bytes().as_slice());
    let (status, wallet) = api
        .post(
            "/v1/admin/wallets",
            &admin,
            json!({"private_key": key_hex, "reason": "pool wallet"}),
        )
        .await;
    assert_eq!(status, 201, "{wallet}");
    let old = MasterKey::from_hex(&api.master).unwrap();
    let new_hex = MasterKey::generate_hex().to_string();
    let new = MasterKey::from_hex(&new_hex).unwrap();
    let new_fingerprint = new.fingerprint().to_string();

    // A process that holds neither key of the stored ones cannot rotate: nothing changes.
    let stranger_hex = MasterKey::generate_hex().to_string();
    let stranger_vault = KeyVault::new(
        api.db.pool.clone(),
        Keyring::new(MasterKey::from_hex(&stranger_hex).unwrap()),
    );
    let stranger = api
        .serve_with(None, move |mut s| {
            s.vault = std::sync::Arc::new(stranger_vault);
            s
        })
        .await;
    let events = api.events().await;
    let (status, answer) = api
        .send_to(
            &stranger,
            "POST",
            "/v1/admin/keys/rotate",
            Some(&admin),
            Some(json!({"reason": "rotation"}).to_string()),
            &[],
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "previous_master_key_missing");
    assert_eq!(api.events().await, events);

    // Started with the new key as current and the old one as previous, it re-seals everything.
    let rotating_vault = KeyVault::new(
        api.db.pool.clone(),
        Keyring::new(MasterKey::from_hex(&new_hex).unwrap()).with_previous(old),
    );
    let rotating = api
        .serve_with(None, move |mut s| {
            s.vault = std::sync::Arc::new(rotating_vault);
            s
        })
        .await;
    let rotate_path = "/v1/admin/keys/rotate";
    let (status, answer) = api
        .send_to(
            &rotating,
            "POST",
            rotate_path,
            Some(&admin),
            Some("{}".into()),
            &[],
        )
        .await;
    assert_eq!(status, 422, "a rotation needs a reason: {answer}");
    assert_eq!(answer["error"]["field"], "reason");
    let (status, job) = api
        .send_to(
            &rotating,
            "POST",
            rotate_path,
            Some(&admin),
            Some(json!({"reason": "yearly rotation"}).to_string()),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["kind"], "key_rotation");
    assert_eq!(job["status"], "finished");
    assert_eq!(job["master_key_fingerprint"], new_fingerprint.as_str());
    // The wallet's key, the deposit seed and the audit key.
    assert_eq!(job["resealed"], 3, "{job}");
    assert_eq!(job["unchanged"], 0, "{job}");
    let rotated = payloads(&api, "MasterKeyRotated").await;
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0]["actor"], "admin-1");
    assert_eq!(rotated[0]["reason"], "yearly rotation");

    // The new key alone opens the wallet key; the old one alone no longer does.
    let with_new = KeyVault::new(
        api.db.pool.clone(),
        Keyring::new(MasterKey::from_hex(&new_hex).unwrap()),
    );
    assert_eq!(
        with_new.wallet_key(&key.address()).await.unwrap().address(),
        key.address()
    );
    let with_old = KeyVault::new(
        api.db.pool.clone(),
        Keyring::new(MasterKey::from_hex(&api.master).unwrap()),
    );
    assert!(with_old.wallet_key(&key.address()).await.is_err());
    // No key material anywhere in the log or the answers.
    let everything: String =
        sqlx::query_scalar("SELECT string_agg(payload::text || metadata::text, ' ') FROM events")
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    for secret in [&key_hex, &api.master, &new_hex] {
        assert!(!everything.contains(secret.as_str()));
        assert!(!job.to_string().contains(secret.as_str()));
    }
    // Rotating again re-seals nothing.
    let (status, again) = api
        .send_to(
            &rotating,
            "POST",
            rotate_path,
            Some(&admin),
            Some(json!({"reason": "check"}).to_string()),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["resealed"], 0);
    assert_eq!(again["unchanged"], 3);
}

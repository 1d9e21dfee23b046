//! Token revocation with tokens remembered per process: a token an instance has checked and
//! remembered is refused there once it is revoked through another instance, through the
//! command line's code, or while that instance's revocation listener was cut off.

use crate::support;

use std::time::{Duration, Instant};

use api::http::auth::{self, Role};
use chrono::TimeDelta;
use serde_json::json;
use support::Api;

/// Waits until `n` sessions on the test database listen for revocations.
async fn wait_for_listeners(api: &Api, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%api_token_revoked%'",
        )
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
        if listening >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{listening} of {n} listeners");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The status of a read with `token` on `base`, until it is 401 (bounded).
async fn refused_within(api: &Api, base: &str, token: &str, bound: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, _) = api
            .send_to(
                base,
                "GET",
                "/v1/accounts/tg:rev/balances",
                Some(token),
                None,
                &[],
            )
            .await;
        if status == 401 {
            return started.elapsed();
        }
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < bound,
            "a revoked token was still accepted after {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_revoked_token_is_refused_by_every_instance_that_remembered_it() {
    let api = Api::start().await;
    let other = api.serve(None).await;
    wait_for_listeners(&api, 2).await;
    let admin = api.token(Role::Admin).await;
    let (status, body) = api
        .post("/v1/accounts", &admin, json!({"account_id": "tg:rev"}))
        .await;
    assert_eq!(status, 201, "{body}");

    for how in ["another instance", "the command line", "a cut-off listener"] {
        let victim = auth::issue(
            &api.db.pool,
            &api.keys,
            "bot-rev",
            Role::Admin,
            TimeDelta::hours(1),
        )
        .await
        .unwrap();
        // Checked once, then remembered by this instance.
        for _ in 0..3 {
            let (status, _) = api.get("/v1/accounts/tg:rev/balances", &victim.token).await;
            assert_eq!(status, 200, "{how}");
        }
        match how {
            "another instance" => {
                let path = format!("/v1/admin/tokens/{}/revoke", victim.claims.jti);
                let (status, body) = api
                    .send_to(&other, "POST", &path, Some(&admin), Some("{}".into()), &[])
                    .await;
                assert_eq!(status, 200, "{body}");
                // The instance that revoked refuses at once.
                let (status, _) = api
                    .send_to(
                        &other,
                        "GET",
                        "/v1/accounts/tg:rev/balances",
                        Some(&victim.token),
                        None,
                        &[],
                    )
                    .await;
                assert_eq!(status, 401);
            }
            "the command line" => {
                assert!(auth::revoke(&api.db.pool, &victim.claims.jti)
                    .await
                    .unwrap());
            }
            _ => {
                // Cut the listeners off, then revoke while they may not hear it.
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND query ILIKE 'LISTEN%api_token_revoked%'",
                )
                .execute(&api.db.pool)
                .await
                .unwrap();
                assert!(auth::revoke(&api.db.pool, &victim.claims.jti)
                    .await
                    .unwrap());
            }
        }
        let took = refused_within(&api, &api.base, &victim.token, Duration::from_secs(3)).await;
        eprintln!("revoked through {how}: refused after {took:?}");
        // Nothing brings it back: it stays refused after the listeners are back.
        wait_for_listeners(&api, 2).await;
        for _ in 0..3 {
            let (status, _) = api.get("/v1/accounts/tg:rev/balances", &victim.token).await;
            assert_eq!(status, 401, "{how}");
        }
    }
}

//! The harness of the HTTP API tests: a server spawned on 127.0.0.1:0 against a fresh
//! PostgreSQL database and the chain simulator, and a client for it.
#![allow(dead_code)] // each test module uses a part of it

use api::http::auth::{self, Role};
use api::http::ratelimit::RateLimiter;
use api::http::{AppState, Application, TokenKeys};
use api::settings::Secret;
use chrono::TimeDelta;
use engine::domain::{OrderPolicy, PriceTable};
use engine::process::Buses;
use engine::testing::TestDb;
use serde_json::{json, Value};
use std::sync::Arc;
use tron_adapter::node::{NodeClient, NodeConfig};
use tron_adapter::simulator::{SimConfig, SimHandle, Simulator};
use tron_adapter::vault::{KeyVault, Keyring, MasterKey};

pub struct Api {
    pub base: String,
    pub master: String,
    pub db: TestDb,
    pub keys: TokenKeys,
    pub sim: SimHandle,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn start() -> Self {
        let db = TestDb::new().await;
        let sim = Simulator::start(SimConfig {
            port: 0,
            block_interval: None,
            dev: true,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let keys = TokenKeys::new(&Secret::new("test secret for the http api"));
        let master = MasterKey::generate_hex().to_string();
        KeyVault::new(
            db.pool.clone(),
            Keyring::new(MasterKey::from_hex(&master).unwrap()),
        )
        .init_deposit_seed(&tron_adapter::bip32::DepositSeed::generate())
        .await
        .unwrap();
        let mut api = Self {
            base: String::new(),
            master,
            db,
            keys,
            sim,
            http: reqwest::Client::new(),
        };
        api.base = api.serve(None).await;
        api
    }

    /// Another API instance on the same database (and the same Redis, given a limiter).
    pub async fn serve(&self, limiter: Option<RateLimiter>) -> String {
        self.serve_with(limiter, |s| s).await
    }

    /// Another instance, its state changed by `configure` first.
    pub async fn serve_with(
        &self,
        limiter: Option<RateLimiter>,
        configure: impl FnOnce(AppState) -> AppState,
    ) -> String {
        let (base, stop, _) = self.serve_stoppable(limiter, configure).await;
        std::mem::forget(stop); // serves until the test ends
        base
    }

    /// An instance that stops when the sender is used; the handle ends when it has stopped.
    pub async fn serve_stoppable(
        &self,
        limiter: Option<RateLimiter>,
        configure: impl FnOnce(AppState) -> AppState,
    ) -> (
        String,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let vault = Arc::new(KeyVault::new(
            self.db.pool.clone(),
            Keyring::new(MasterKey::from_hex(&self.master).unwrap()),
        ));
        let (audit_seed, _) = vault.audit_key().await.unwrap();
        let audit_signer = Arc::new(projections::audit::AuditSigner::from_seed(&audit_seed));
        let node = NodeClient::new(NodeConfig::new(self.sim.base_url())).unwrap();
        let policy = OrderPolicy {
            prices: PriceTable::sample(),
            ..OrderPolicy::default()
        };
        let mut state = AppState::new(
            self.db.pool.clone(),
            Buses::new(self.db.pool.clone(), policy),
            vault,
            Some(node),
            PriceTable::sample(),
            self.keys.clone(),
        )
        .with_audit_signer(audit_signer);
        if let Some(l) = limiter {
            state = state.with_rate_limiter(l);
        }
        state = configure(state);
        let app = Application::build("127.0.0.1:0", state).await.unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        (base, stop, handle)
    }

    pub async fn token(&self, role: Role) -> String {
        self.token_for(&format!("{role}-1"), role).await
    }

    pub async fn token_for(&self, subject: &str, role: Role) -> String {
        auth::issue(
            &self.db.pool,
            &self.keys,
            subject,
            role,
            TimeDelta::hours(1),
        )
        .await
        .unwrap()
        .token
    }

    /// Sends a request; returns the status and the JSON body (`null` if none).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        self.send_to(&self.base, method, path, token, body, headers)
            .await
    }

    /// [`Api::send`] to another instance.
    pub async fn send_to(
        &self,
        base: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = req.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, Some(token), Some(body.to_string()), &[])
            .await
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send("GET", path, Some(token), None, &[]).await
    }

    pub async fn events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    pub fn order_body(&self, account: &str, energy: u64) -> Value {
        json!({"account_id": account, "receiver": self.sim.customer().to_base58(),
               "energy": energy, "duration": "1d"})
    }
}

pub fn fresh_address() -> String {
    tron_adapter::PrivateKey::generate().address().to_base58()
}

pub async fn catch_up_projections(api: &Api) {
    let projector =
        api::app::workers::start_projector(&api.db.pool, &api::app::Projector::default()).unwrap();
    projections::testing::wait_caught_up(
        &api.db.pool,
        &projections::testing::all_readers(),
        std::time::Duration::from_secs(30),
    )
    .await
    .unwrap();
    projector.shutdown().await.unwrap();
}

/// The metadata of an aggregate's events of one type, in order.
pub async fn metadata_of(api: &Api, aggregate_id: &str, event_type: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT metadata::jsonb FROM events WHERE aggregate_id = $1 AND event_type = $2 \
         ORDER BY sequence",
    )
    .bind(aggregate_id)
    .bind(event_type)
    .fetch_all(&api.db.pool)
    .await
    .unwrap()
}

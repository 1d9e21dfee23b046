//! The HTTP API under `/v1` (docs/api.md): the router, its shared state, the request-id
//! middleware and [`Application`], which binds a port and serves until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use engine::domain::PriceTable;
use engine::process::Buses;
use projections::audit::AuditSigner;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tracing::Instrument;
use tron_adapter::node::NodeClient;
use tron_adapter::vault::KeyVault;
use tron_adapter::worker::WalletGauges;

pub mod allowlist;
pub mod auth;
pub mod consistency;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod known_tokens;
pub mod metrics;
pub mod openapi;
pub mod owners;
pub mod ratelimit;
pub mod routes;
#[cfg(test)]
mod sql_free;

pub use auth::{Caller, Role, TokenKeys};
pub use error::ApiError;

/// The largest request body accepted (413 above it).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Readiness's default bound on projection lag.
pub const DEFAULT_READY_MAX_LAG: std::time::Duration = std::time::Duration::from_secs(30);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub buses: Arc<Buses>,
    pub vault: Arc<KeyVault>,
    /// The TRON node, to tell whether a receiver is activated; `None`: not known.
    pub node: Option<NodeClient>,
    /// The configured prices (prices file or sample prices); the admin's price list goes over
    /// them, and the order policy holds the result (`buses.order.services().prices`).
    pub configured_prices: Arc<PriceTable>,
    pub keys: Arc<TokenKeys>,
    pub metrics: Arc<metrics::Metrics>,
    /// The pool wallets' gauges, when this process runs the wallet sync.
    pub wallet_gauges: Option<Arc<WalletGauges>>,
    /// Rate limits in Redis; `None`: none.
    pub limiter: Option<Arc<ratelimit::RateLimiter>>,
    /// Readiness fails when a projection's oldest unapplied event is older than this.
    pub ready_max_lag: std::time::Duration,
    /// The networks each role may call from.
    pub allowlist: Arc<allowlist::Allowlist>,
    /// Set when the server shuts down, so that open feeds end (graceful shutdown waits for
    /// every open response).
    pub closing: Arc<tokio::sync::watch::Sender<bool>>,
    /// Each subject's last write through this process (read your writes).
    pub writes: Arc<consistency::Writes>,
    /// Who opened each account (bot ownership), as read so far.
    pub owners: Arc<owners::Owners>,
    /// Tokens checked against `api_tokens` and not revoked, while revocations are heard.
    pub known_tokens: Arc<known_tokens::KnownTokens>,
    /// The audit key, to sign heads of the chain (`GET /v1/audit/head`); `None`: not held here.
    pub audit_signer: Option<Arc<AuditSigner>>,
}

impl AppState {
    pub fn new(
        pool: PgPool,
        buses: Arc<Buses>,
        vault: Arc<KeyVault>,
        node: Option<NodeClient>,
        prices: PriceTable,
        keys: TokenKeys,
    ) -> Self {
        Self {
            pool,
            buses,
            vault,
            node,
            configured_prices: Arc::new(prices),
            keys: Arc::new(keys),
            metrics: Arc::default(),
            wallet_gauges: None,
            limiter: None,
            ready_max_lag: DEFAULT_READY_MAX_LAG,
            allowlist: Arc::default(),
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
            writes: Arc::default(),
            owners: Arc::default(),
            known_tokens: Arc::default(),
            audit_signer: None,
        }
    }

    pub fn with_audit_signer(mut self, signer: Arc<AuditSigner>) -> Self {
        self.audit_signer = Some(signer);
        self
    }

    pub fn with_rate_limiter(mut self, limiter: ratelimit::RateLimiter) -> Self {
        self.limiter = Some(Arc::new(limiter));
        self
    }

    pub fn with_allowlist(mut self, allowlist: allowlist::Allowlist) -> Self {
        self.allowlist = Arc::new(allowlist);
        self
    }

    pub fn with_ready_max_lag(mut self, lag: std::time::Duration) -> Self {
        self.ready_max_lag = lag;
        self
    }

    pub fn with_wallet_gauges(mut self, gauges: Arc<WalletGauges>) -> Self {
        self.wallet_gauges = Some(gauges);
        self
    }
}

/// The router with every route and middleware.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/accounts", post(routes::accounts::open))
        .route("/accounts/{id}/balances", get(routes::accounts::balances))
        .route(
            "/accounts/{id}/deposit-address",
            get(routes::accounts::deposit_address),
        )
        .route("/accounts/{id}/orders", get(routes::orders::list))
        .route("/quotes", post(routes::quotes::quote))
        .route("/prices", get(routes::prices::list))
        .route("/orders", post(routes::orders::place))
        .route("/orders/{id}", get(routes::orders::get))
        .route("/orders/{id}/cancel", post(routes::orders::cancel))
        .route("/finance/balances", get(routes::finance::balances))
        .route("/finance/orders", get(routes::finance::orders))
        .route("/finance/deposits", get(routes::finance::deposits))
        .route("/finance/wallets", get(routes::finance::wallets))
        .route("/finance/daily", get(routes::daily::report))
        .route("/feed", get(routes::feed::feed))
        .route("/audit/log", get(routes::audit::log))
        .route("/audit/head", get(routes::audit::head))
        .route("/audit/heads", get(routes::audit::heads_page))
        .route("/audit/aggregates/{type}/{id}", get(routes::audit::history))
        .route(
            "/audit/aggregates/{type}/{id}/state",
            get(routes::audit::state_at),
        )
        .route("/audit/verifications", post(routes::verifications::start))
        .route(
            "/audit/verifications/latest",
            get(routes::verifications::latest),
        )
        .route("/admin/tokens", get(routes::admin::tokens))
        .route("/admin/tokens/{jti}/revoke", post(routes::admin::revoke))
        .route("/admin/wallets", post(routes::wallets::register))
        .route("/admin/prices/{asset}/{tier}", put(routes::prices::set))
        .route("/admin/rebuilds", post(routes::maintenance::rebuild))
        .route("/admin/jobs/{id}", get(routes::maintenance::get))
        .route("/admin/keys/rotate", post(routes::maintenance::rotate_keys))
        .route(
            "/admin/wallets/{address}/disable",
            post(routes::wallets::disable),
        )
        .route(
            "/admin/wallets/{address}/enable",
            post(routes::wallets::enable),
        )
        .route(
            "/admin/accounts/{id}/adjustments",
            post(routes::adjustments::adjust),
        );
    Router::new()
        .nest("/v1", v1)
        .route("/health/live", get(routes::health::live))
        .route("/health/ready", get(routes::health::ready))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::spec))
        .route("/docs", get(openapi::docs))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(consistency::stamp))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

/// The id of one request: the caller's `X-Request-Id` when it is short printable ASCII, else a
/// new one. It is on the response, on every log line of the request, and in the metadata of the
/// events its commands write.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("http", request_id = %id, method = %request.method(),
        path = %request.uri().path());
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    response
}

/// The API bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    /// Binds `addr` (port 0 picks a free one) and builds the router.
    pub async fn build(addr: &str, state: AppState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self {
            listener,
            router: router(state.clone()),
            state,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn port(&self) -> u16 {
        self.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight. Meanwhile keeps
    /// the prices orders are decided with up to date with the admin's price list.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // The peer's address reaches the handlers (the IP allowlist checks it).
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let closing = self.state.closing.clone();
        let revocations = tokio::spawn(
            self.state
                .known_tokens
                .clone()
                .listen(self.state.pool.clone()),
        );
        let prices = tokio::spawn(keep_prices_fresh(self.state));
        let shutdown = async move {
            shutdown.await;
            closing.send_replace(true);
            prices.abort();
            revocations.abort();
        };
        axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// How often an API process looks for price changes made through another process.
pub const PRICE_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Applies the admin's price list over the configured prices now and every [`PRICE_REFRESH`].
async fn keep_prices_fresh(state: AppState) {
    let mut tick = tokio::time::interval(PRICE_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) =
            engine::process::prices::refresh_prices(&state.buses, &state.configured_prices).await
        {
            tracing::warn!(error = %e, "cannot read the price list; orders keep the prices they had");
        }
    }
}

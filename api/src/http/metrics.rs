//! `/metrics` in the Prometheus text format: HTTP requests by route, method and status with a
//! latency histogram, orders by state (from the `orders` read model), each log reader's lag, and the pool wallets'
//! gauges when the process runs the wallet sync.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The API's own counters.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
}

impl Metrics {
    pub fn observe(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let key = (route.to_string(), method.to_string());
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((key.0.clone(), key.1.clone(), status))
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = latency.entry(key).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP trx_http_requests_total HTTP requests answered."
        );
        let _ = writeln!(out, "# TYPE trx_http_requests_total counter");
        for ((route, method, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "trx_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP trx_http_request_duration_seconds Time to answer HTTP requests."
        );
        let _ = writeln!(out, "# TYPE trx_http_request_duration_seconds histogram");
        for ((route, method), h) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let labels = format!("route=\"{route}\",method=\"{method}\"");
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "trx_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "trx_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "trx_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "trx_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
    }
}

/// Counts every request under its route template (`/v1/orders/{id}`), never the raw path.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state.metrics.observe(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    state.metrics.render(&mut out);
    match projections::views::orders::query::count_by_status(&state.pool).await {
        Ok(rows) => {
            let _ = writeln!(out, "# HELP trx_orders Orders by state (read model).");
            let _ = writeln!(out, "# TYPE trx_orders gauge");
            for (status, n) in rows {
                let _ = writeln!(out, "trx_orders{{state=\"{status}\"}} {n}");
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: orders by state unavailable"),
    }
    match projections::progress::positions_behind(&state.pool).await {
        Ok(rows) => {
            let _ = writeln!(
                out,
                "# HELP trx_reader_lag_positions Log positions between the newest event and each reader's checkpoint (projections, process managers)."
            );
            let _ = writeln!(out, "# TYPE trx_reader_lag_positions gauge");
            for (reader, behind) in rows {
                let _ = writeln!(
                    out,
                    "trx_reader_lag_positions{{reader=\"{reader}\"}} {behind}"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: reader lag unavailable"),
    }
    if let Some(limiter) = &state.limiter {
        let _ = writeln!(
            out,
            "# HELP trx_rate_limit_unavailable_total Requests let through because Redis was unreachable."
        );
        let _ = writeln!(out, "# TYPE trx_rate_limit_unavailable_total counter");
        let _ = writeln!(
            out,
            "trx_rate_limit_unavailable_total {}",
            limiter
                .unavailable
                .load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    if let Some(gauges) = &state.wallet_gauges {
        out.push_str(&gauges.render_prometheus());
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}

//! `trx-energy bench-http`: the HTTP API's benchmark, printed as a report (docs/api.md).
//!
//! 1. `trx-energy serve` (this same binary, as a child process, on a fresh database of
//!    `DATABASE_URL`'s server, rate limits lifted): place-order commands per second over HTTP at
//!    each client count, with p50/p99 latency, and the child's peak resident memory;
//! 2. in the same run, the raw PostgreSQL ceiling measured the same way: `pgbench`, one
//!    single-row insert per transaction, the same client counts; the report gives the ratio;
//! 3. `trx-energy run` (the whole system, the simulator's blocks every 3 s): the time from
//!    `POST /v1/orders` to the delegation being signed and broadcast (`DelegationSigned`, written
//!    right before the broadcast), p50/p99, at a steady order rate.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::http::auth::{self, Role, TokenKeys};
use crate::settings::{Secret, Settings};

#[derive(Clone, clap::Args)]
pub struct BenchHttpArgs {
    /// Seconds of load per client count.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Client counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub clients: Vec<usize>,
    /// Rounds per client count, each the API's load then pgbench's; the report gives medians
    /// (the machine's speed drifts from minute to minute, so the two are measured in turn).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Orders per second for the order → broadcast latency (0 skips that part).
    #[arg(long, default_value_t = 10)]
    pub latency_rate: u64,
    /// Seconds of orders for the order → broadcast latency.
    #[arg(long, default_value_t = 20)]
    pub latency_seconds: u64,
}

const JWT_SECRET: &str = "bench-http secret: only for this benchmark run";
const RECEIVER: &str = "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8";

/// A `trx-energy` child process on its own database, killed (and the database dropped) on drop.
struct Process {
    child: Child,
    base: String,
    admin: PgPool,
    database: String,
    pool: PgPool,
    data: PathBuf,
    sim_port: u16,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

impl Process {
    async fn start(server: &str, command: &str, extra: &[(&str, String)]) -> anyhow::Result<Self> {
        let database = format!("trx_bench_http_{}_{command}", std::process::id());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&format!("{server}/postgres"))
            .await
            .context("connect to DATABASE_URL's server")?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            .execute(&admin)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&admin)
            .await?;
        let url = format!("{server}/{database}");
        let port = free_port()?;
        let sim_port = free_port()?;
        let data = std::env::temp_dir().join(&database);
        std::fs::create_dir_all(&data)?;
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg(command)
            .env("DATABASE_URL", &url)
            .env("TRX_DATA_DIR", &data)
            .env("TRX_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("TRX_JWT_SECRET", JWT_SECRET)
            .env("TRX_RATE_LIMIT_READ", "1000000/1000000")
            .env("TRX_RATE_LIMIT_WRITE", "1000000/1000000")
            .env("TRX_SIM_PORT", sim_port.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().context("start the child process")?;
        let base = format!("http://127.0.0.1:{port}");
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await?;
        let me = Self {
            child,
            base,
            admin,
            database,
            pool,
            data,
            sim_port,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = http.get(format!("{}/health/live", me.base)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("trx-energy {command} did not answer within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(me)
    }

    async fn token(&self, subject: &str, role: Role) -> anyhow::Result<String> {
        let keys = TokenKeys::new(&Secret::new(JWT_SECRET));
        Ok(auth::issue(
            &self.pool,
            &keys,
            subject,
            role,
            chrono::TimeDelta::hours(2),
        )
        .await
        .map_err(|e| anyhow::anyhow!("issue a token: {e:?}"))?
        .token)
    }

    /// Peak and current resident memory of the child, in MB.
    fn memory_mb(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let kb = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (kb("VmHWM:") / 1024.0, kb("VmRSS:") / 1024.0)
    }

    async fn drop_database(self) {
        let (admin, database) = (self.admin.clone(), self.database.clone());
        drop(self);
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            .execute(&admin)
            .await;
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
    key: Option<String>,
) -> anyhow::Result<(u16, Value)> {
    let mut req = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Load {
    orders: usize,
    failed: usize,
    rate: f64,
    p50: f64,
    p99: f64,
}

/// `clients` bots placing orders back to back for `seconds`.
async fn place_orders(
    child: &Process,
    clients: usize,
    seconds: u64,
    round: usize,
) -> anyhow::Result<Load> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let mut tasks = Vec::new();
    let stop_at = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    for c in 0..clients {
        let subject = format!("bench-bot-{clients}-{round}-{c}");
        let token = child.token(&subject, Role::Bot).await?;
        let account = format!("tg:bench-{clients}-{round}-{c}");
        let (status, body) = post(
            &http,
            format!("{}/v1/accounts", child.base),
            &token,
            json!({"account_id": account}),
            None,
        )
        .await?;
        if status != 201 {
            bail!("open {account}: {status} {body}");
        }
        // Like pgbench's, the load's own cost is kept small: the body, URL and headers are
        // made once per client, and answers are read but not parsed (the status says placed).
        let http = http.clone();
        let url = format!("{}/v1/orders", child.base);
        let auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
        let body = json!({"account_id": account, "receiver": RECEIVER,
                          "energy": 65_000, "duration": "1h"})
        .to_string();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0usize;
            let mut n = 0u64;
            while Instant::now() < stop_at {
                n += 1;
                let t = Instant::now();
                let sent = http
                    .post(&url)
                    .header(reqwest::header::AUTHORIZATION, auth.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("idempotency-key", format!("k{n}"))
                    .body(body.clone())
                    .send()
                    .await;
                let placed = match sent {
                    Ok(r) => r.status().as_u16() == 201 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if placed {
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                } else {
                    failed += 1;
                }
            }
            (latencies, failed)
        }));
    }
    let mut all = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await?;
        all.extend(l);
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    Ok(Load {
        orders: all.len(),
        failed,
        rate: all.len() as f64 / elapsed,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
    })
}

/// pgbench: `clients` connections each inserting one row per transaction for `seconds`.
fn pgbench(url: &str, clients: usize, seconds: u64) -> anyhow::Result<(f64, f64)> {
    let script = std::env::temp_dir().join(format!("bench-http-{}.sql", std::process::id()));
    std::fs::write(&script, "INSERT INTO bench_insert (body) VALUES ('x');\n")?;
    let out = Command::new("pgbench")
        .args(["-n", "-c", &clients.to_string(), "-j"])
        .arg(clients.min(2).to_string())
        .args(["-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg(url)
        .output()
        .context("run pgbench (Debian: postgresql-client / postgresql-contrib)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("pgbench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let number_after = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let tps = number_after("tps = ").context("pgbench printed no tps")?;
    let latency = number_after("latency average = ").unwrap_or(f64::NAN);
    Ok((tps, latency))
}

/// An order id and when its `POST /v1/orders` was sent.
type Sent = (String, DateTime<Utc>);

/// Orders placed at `rate` per second through the whole system; the time from sending each
/// `POST /v1/orders` to its `DelegationSigned` event.
async fn order_to_broadcast(server: &str, rate: u64, seconds: u64) -> anyhow::Result<Vec<f64>> {
    let child = Process::start(
        server,
        "run",
        &[
            ("TRX_SIM_BLOCK_TIME_MS", "3000".to_string()),
            ("TRX_SIM_CONFIRMATIONS", "19".to_string()),
        ],
    )
    .await?;
    let http = reqwest::Client::new();
    let admin = child.token("bench-admin", Role::Admin).await?;
    let bot = child.token("bench-bot", Role::Bot).await?;
    let receiver = activated_receiver(&child).await?;
    let account = "tg:bench-latency";
    post(
        &http,
        format!("{}/v1/accounts", child.base),
        &bot,
        json!({"account_id": account}),
        None,
    )
    .await?;
    let (status, body) = post(
        &http,
        format!("{}/v1/admin/accounts/{account}/adjustments", child.base),
        &admin,
        json!({"asset": "TRX", "delta": 1_000_000_000_000i64, "reason": "benchmark funds"}),
        None,
    )
    .await?;
    if status != 201 {
        bail!("fund the account: {status} {body}");
    }
    let total = (rate * seconds) as usize;
    let sent: Arc<std::sync::Mutex<Vec<Sent>>> = Arc::default();
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut tasks = Vec::new();
    for i in 0..total {
        interval.tick().await;
        let (http, base, bot, receiver, sent) = (
            http.clone(),
            child.base.clone(),
            bot.clone(),
            receiver.clone(),
            sent.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let at = Utc::now();
            let body = json!({"account_id": account, "receiver": receiver,
                              "energy": 65_000, "duration": "1h"});
            if let Ok((201, order)) = post(
                &http,
                format!("{base}/v1/orders"),
                &bot,
                body,
                Some(format!("l{i}")),
            )
            .await
            {
                if let Some(id) = order["order_id"].as_str() {
                    sent.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((id.to_string(), at));
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let sent = sent.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let signed: Vec<(String, DateTime<Utc>)> = loop {
        let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT aggregate_id, recorded_at FROM events \
             WHERE aggregate_type = 'order' AND event_type = 'DelegationSigned'",
        )
        .fetch_all(&child.pool)
        .await?;
        if rows.len() >= sent.len() || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let signed: std::collections::HashMap<String, DateTime<Utc>> = signed.into_iter().collect();
    let mut latencies: Vec<f64> = sent
        .iter()
        .filter_map(|(id, at)| {
            signed
                .get(id)
                .map(|s| (*s - *at).num_microseconds().unwrap_or(0) as f64 / 1e3)
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let (peak, _) = child.memory_mb();
    eprintln!(
        "  order → broadcast: {} of {} orders signed; `trx-energy run` (API, engine, projector, simulator) peak RSS {peak:.1} MB",
        latencies.len(),
        sent.len()
    );
    child.drop_database().await;
    Ok(latencies)
}

/// A new receiver, activated on the child's simulator (its `/sim/activate` admin endpoint).
async fn activated_receiver(child: &Process) -> anyhow::Result<String> {
    let receiver = tron_adapter::PrivateKey::generate().address().to_base58();
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/sim/activate", child.sim_port))
        .body(json!({"address": receiver, "balance": 1_000_000}).to_string())
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("activate the receiver on the simulator: {}", r.status());
    }
    Ok(receiver)
}

pub async fn run(settings: &Settings, args: &BenchHttpArgs) -> anyhow::Result<()> {
    let url = settings.database.url.as_ref().context(
        "bench-http needs DATABASE_URL (a PostgreSQL server it may create databases on)",
    )?;
    let server = url
        .expose()
        .rsplit_once('/')
        .map(|(s, _)| s.to_string())
        .context("DATABASE_URL has no database part")?;

    println!(
        "# trx-energy HTTP benchmark ({} s per client count)\n",
        args.seconds
    );
    let serve = Process::start(&server, "serve", &[]).await?;
    sqlx::query("CREATE TABLE bench_insert (id bigserial PRIMARY KEY, body text NOT NULL)")
        .execute(&serve.pool)
        .await?;
    let db_url = format!("{server}/{}", serve.database);
    let rounds = args.rounds.max(1);
    let mut rows = Vec::new();
    for &c in &args.clients {
        let mut api = Vec::new();
        let mut raw = Vec::new();
        for round in 0..rounds {
            let load = place_orders(&serve, c, args.seconds, round).await?;
            let (tps, latency) = pgbench(&db_url, c, args.seconds)?;
            eprintln!(
                "  {c} clients, round {}: API {} orders ({} failed), {:.0}/s; pgbench {tps:.0}/s ({:.0}%)",
                round + 1,
                load.orders,
                load.failed,
                load.rate,
                100.0 * load.rate / tps
            );
            api.push(load);
            raw.push((tps, latency));
        }
        rows.push((c, api, raw));
    }
    let (peak, now) = serve.memory_mb();
    println!("Medians of {rounds} round(s); the last column is the median API rate over the median pgbench rate, with each round's ratio in brackets.\n");
    println!("| clients | API orders/s | p50 ms | p99 ms | pgbench inserts/s | pgbench latency ms | API / pgbench |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (c, mut api, mut raw) in rows {
        let ratios: Vec<String> = api
            .iter()
            .zip(&raw)
            .map(|(a, r)| format!("{:.0}", 100.0 * a.rate / r.0))
            .collect();
        api.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        raw.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (load, (tps, latency)) = (&api[api.len() / 2], raw[raw.len() / 2]);
        println!(
            "| {c} | {:.0} | {:.2} | {:.2} | {tps:.0} | {latency:.2} | {:.0}% [{}] |",
            load.rate,
            load.p50,
            load.p99,
            100.0 * load.rate / tps,
            ratios.join(", ")
        );
    }
    println!("\n`trx-energy serve` resident memory: peak {peak:.1} MB, after the load {now:.1} MB");
    serve.drop_database().await;

    if args.latency_rate > 0 {
        let l = order_to_broadcast(&server, args.latency_rate, args.latency_seconds).await?;
        println!(
            "\nPOST /v1/orders → delegation signed and broadcast, {} orders/s, blocks every 3 s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} orders)",
            args.latency_rate,
            percentile(&l, 0.5),
            percentile(&l, 0.99),
            l.last().copied().unwrap_or(f64::NAN),
            l.len()
        );
    }
    Ok(())
}

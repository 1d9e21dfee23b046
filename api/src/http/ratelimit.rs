//! Rate limits per token subject and route class (`read` for GET, `write` for the rest), kept in
//! Redis so that every API instance shares them: a token bucket updated atomically by one Lua
//! script, timed by Redis's own clock. Over the limit: 429 `rate_limited` with `Retry-After`.
//!
//! When Redis is unreachable (or slower than [`REDIS_TIMEOUT`]) requests are let through — the
//! limits protect capacity, and refusing every customer because Redis is down would be worse —
//! with a warning in the log and `trx_rate_limit_unavailable_total` counting them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::Mutex;

use super::error::ApiError;
use super::Caller;

const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

const SCRIPT: &str = r#"
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = cap
  ts = now
end
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate / 1000)
local allowed = 0
local retry_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry_ms = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(cap * 1000 / rate) + 1000)
return {allowed, retry_ms}
"#;

/// A bucket: at most `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub burst: u32,
    pub per_second: f64,
}

impl Limit {
    /// Parses `BURST/PER_SECOND`, e.g. `100/50` or `5/0.2`.
    pub fn parse(text: &str) -> Result<Limit, String> {
        let bad = || format!("{text:?} is not BURST/PER_SECOND (e.g. 100/50 or 5/0.2)");
        let (burst, rate) = text.trim().split_once('/').ok_or_else(bad)?;
        let burst: u32 = burst
            .trim()
            .parse()
            .ok()
            .filter(|b| *b > 0)
            .ok_or_else(bad)?;
        let per_second: f64 = rate
            .trim()
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r > 0.0)
            .ok_or_else(bad)?;
        Ok(Limit { burst, per_second })
    }
}

/// The limits of the two route classes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub read: Limit,
    pub write: Limit,
}

impl Limits {
    /// The limits the settings give (`TRX_RATE_LIMIT_READ`, `TRX_RATE_LIMIT_WRITE`); an error
    /// names the variable.
    pub fn from_settings(
        settings: &crate::settings::RateLimitSettings,
    ) -> Result<Limits, crate::settings::SettingsError> {
        let parse = |key: &str, text: &str| {
            Limit::parse(text).map_err(|message| crate::settings::SettingsError::Env {
                name: crate::settings::Settings::name_of(key),
                message,
            })
        };
        Ok(Limits {
            read: parse("http.rate_limit.read", &settings.read)?,
            write: parse("http.rate_limit.write", &settings.write)?,
        })
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            read: Limit {
                burst: 100,
                per_second: 50.0,
            },
            write: Limit {
                burst: 40,
                per_second: 20.0,
            },
        }
    }
}

pub struct RateLimiter {
    client: redis::Client,
    connection: Mutex<Option<ConnectionManager>>,
    script: redis::Script,
    limits: Limits,
    /// Namespaces the keys (tests use their own).
    prefix: String,
    pub unavailable: AtomicU64,
}

impl RateLimiter {
    /// A limiter on `redis_url`; connects on first use, and again after failures.
    pub fn new(redis_url: &str, limits: Limits, prefix: &str) -> Result<Self, ApiError> {
        Ok(Self {
            client: redis::Client::open(redis_url).map_err(ApiError::internal)?,
            connection: Mutex::new(None),
            script: redis::Script::new(SCRIPT),
            limits,
            prefix: prefix.to_string(),
            unavailable: AtomicU64::new(0),
        })
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        let mut held = self.connection.lock().await;
        if held.is_none() {
            match tokio::time::timeout(REDIS_TIMEOUT, ConnectionManager::new(self.client.clone()))
                .await
            {
                Ok(Ok(c)) => *held = Some(c),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "rate limits: Redis unreachable; letting requests through")
                }
                Err(_) => {
                    tracing::warn!("rate limits: Redis connect timed out; letting requests through")
                }
            }
        }
        held.clone()
    }

    /// Whether Redis answers a PING.
    pub async fn ping(&self) -> bool {
        let Some(mut conn) = self.connection().await else {
            return false;
        };
        let answer: Result<String, _> =
            tokio::time::timeout(REDIS_TIMEOUT, redis::cmd("PING").query_async(&mut conn))
                .await
                .unwrap_or_else(|_| {
                    Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out")))
                });
        answer.is_ok()
    }

    /// Takes one token from the caller's bucket for the class, or refuses with 429.
    pub async fn check(&self, caller: &Caller, write: bool) -> Result<(), ApiError> {
        let (class, limit) = if write {
            ("write", self.limits.write)
        } else {
            ("read", self.limits.read)
        };
        let Some(mut conn) = self.connection().await else {
            self.unavailable.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        let key = format!("{}rl:{}:{}", self.prefix, caller.subject, class);
        let mut invocation = self.script.key(&key);
        invocation.arg(limit.burst).arg(limit.per_second);
        let call = invocation.invoke_async::<(i64, i64)>(&mut conn);
        match tokio::time::timeout(REDIS_TIMEOUT, call).await {
            Ok(Ok((1, _))) => Ok(()),
            Ok(Ok((_, retry_ms))) => Err(ApiError::RateLimited {
                retry_after_secs: u64::try_from(retry_ms.max(1)).unwrap_or(1).div_ceil(1000),
            }),
            Ok(Err(e)) => {
                self.unavailable.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "rate limits: Redis failed; letting the request through");
                Ok(())
            }
            Err(_) => {
                self.unavailable.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("rate limits: Redis timed out; letting the request through");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::RateLimitSettings;

    #[test]
    fn the_settings_limits_parse_and_a_bad_one_names_its_variable() {
        let limits = Limits::from_settings(&RateLimitSettings {
            read: "7/0.5".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(limits.read.burst, 7);
        assert_eq!(limits.read.per_second, 0.5);
        assert_eq!(limits.write.burst, 40, "the default");
        for (read, write, name) in [
            ("100", "40/20", "TRX_RATE_LIMIT_READ"),
            ("100/50", "0/5", "TRX_RATE_LIMIT_WRITE"),
            ("100/50", "5/-1", "TRX_RATE_LIMIT_WRITE"),
        ] {
            let err = Limits::from_settings(&RateLimitSettings {
                read: read.into(),
                write: write.into(),
            })
            .unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}

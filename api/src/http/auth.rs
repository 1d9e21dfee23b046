//! Bearer tokens: HS256 JWTs (the algorithm is pinned: `none` and every other algorithm are
//! refused) carrying `sub`, `role`, `iat`, `exp` and `jti`. A token is valid only while its
//! `jti` is in `api_tokens` (migration 0050) and not revoked, so tokens come from
//! `trx-energy token issue` and `trx-energy token revoke` ends one at once.

use std::fmt;
use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::{TimeDelta, Utc};
use engine::store::Actor;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::error::ApiError;
use super::known_tokens::KnownToken;
use super::AppState;
use crate::secret::Secret;
use crate::store::tokens;
pub use crate::store::tokens::TokenRecord;

/// What a token may do; every route names the roles it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Bot,
    Finance,
    Auditor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Bot, Role::Finance, Role::Auditor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Bot => "bot",
            Role::Finance => "finance",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}; expected bot, finance, auditor or admin"))
    }
}

/// The claims of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// The HS256 keys made from the secret (the secret itself is not kept).
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(***)")
    }
}

impl TokenKeys {
    pub fn new(secret: &Secret) -> Self {
        let bytes = secret.expose().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
        }
    }

    /// Signs claims (no database: see [`issue`] for a token the API accepts).
    pub fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// Checks signature, algorithm and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::ExpiredSignature => ApiError::unauthorized("the token has expired"),
                    _ => ApiError::unauthorized("the token is not valid"),
                }
            })
    }
}

/// A token recorded in `api_tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedToken {
    pub token: String,
    pub claims: Claims,
}

/// Makes a token for `subject` in `role` valid for `ttl`, and records it.
pub async fn issue(
    pool: &PgPool,
    keys: &TokenKeys,
    subject: &str,
    role: Role,
    ttl: TimeDelta,
) -> Result<IssuedToken, ApiError> {
    if subject.is_empty() || subject.len() > 128 || !subject.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::unprocessable(
            "invalid_subject",
            "a subject is 1 to 128 printable ASCII characters",
        )
        .field("subject"));
    }
    if ttl <= TimeDelta::zero() {
        return Err(
            ApiError::unprocessable("invalid_ttl", "the ttl must be positive").field("ttl"),
        );
    }
    let now = Utc::now();
    let expires = now.checked_add_signed(ttl).ok_or_else(|| {
        ApiError::unprocessable("invalid_ttl", "the ttl is too long").field("ttl")
    })?;
    let claims = Claims {
        sub: subject.to_string(),
        role,
        iat: now.timestamp(),
        exp: expires.timestamp(),
        jti: uuid::Uuid::new_v4().simple().to_string(),
    };
    let token = keys.sign(&claims)?;
    tokens::record(pool, &claims.jti, subject, role.as_str(), now, expires).await?;
    Ok(IssuedToken { token, claims })
}

/// Revokes a token by its id; false if there is no such token. The revocation is announced on
/// [`crate::store::tokens::CHANNEL`] when it commits, so every API process forgets the token.
pub async fn revoke(pool: &PgPool, jti: &str) -> Result<bool, ApiError> {
    Ok(tokens::revoke(pool, jti).await?)
}

/// Every recorded token, newest first.
pub async fn list(pool: &PgPool) -> Result<Vec<TokenRecord>, ApiError> {
    Ok(tokens::list(pool).await?)
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub subject: String,
    pub role: Role,
    pub jti: String,
}

impl Caller {
    /// Refuses (403) a caller whose role the route does not admit.
    pub fn require(&self, admitted: &[Role]) -> Result<(), ApiError> {
        if admitted.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role may not use this route",
                self.role
            )))
        }
    }

    pub fn actor(&self) -> Actor {
        Actor::new(&self.subject, self.role.as_str())
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        let claims = state.keys.verify(token)?;
        let row = match state.known_tokens.get(&claims.jti) {
            Ok(known) => Some((known.subject, known.role, None)),
            Err(ticket) => {
                let row = tokens::find(&state.pool, &claims.jti).await?;
                if let Some((subject, role, None)) = &row {
                    let known = KnownToken {
                        subject: subject.clone(),
                        role: role.clone(),
                    };
                    state.known_tokens.remember(ticket, &claims.jti, known);
                }
                row
            }
        };
        match row {
            Some((subject, role, None))
                if subject == claims.sub && role == claims.role.as_str() =>
            {
                let caller = Caller {
                    subject: claims.sub,
                    role: claims.role,
                    jti: claims.jti,
                };
                let peer = parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0.ip());
                if !state.allowlist.admits(caller.role, peer) {
                    tracing::warn!(subject = %caller.subject, role = %caller.role, ?peer, "refused: address not allowed for the role");
                    return Err(ApiError::new(
                        axum::http::StatusCode::FORBIDDEN,
                        "ip_not_allowed",
                        format!("the {} role may not call from this address", caller.role),
                    ));
                }
                // Rate limits per subject, so that a bad token costs no bucket.
                if let Some(limiter) = &state.limiter {
                    limiter
                        .check(&caller, parts.method != axum::http::Method::GET)
                        .await?;
                }
                Ok(caller)
            }
            Some((_, _, Some(_))) => Err(ApiError::unauthorized("the token was revoked")),
            _ => Err(ApiError::unauthorized("the token is not known")),
        }
    }
}

/// Parses a duration such as `30d`, `12h`, `15m` or `3600s`.
pub fn parse_ttl(text: &str) -> Result<TimeDelta, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit, e.g. 30d, 12h, 15m or 3600s"))?;
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    let delta = match unit {
        "s" => TimeDelta::try_seconds(n),
        "m" => TimeDelta::try_minutes(n),
        "h" => TimeDelta::try_hours(n),
        "d" => TimeDelta::try_days(n),
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    delta
        .filter(|d| *d > TimeDelta::zero() && *d <= TimeDelta::days(3_650))
        .ok_or_else(|| format!("{text:?} must be positive and at most 3650d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&Secret::new("a test secret of some length"))
    }

    fn claims(exp_in: i64) -> Claims {
        let now = Utc::now().timestamp();
        Claims {
            sub: "bot-1".into(),
            role: Role::Bot,
            iat: now,
            exp: now + exp_in,
            jti: "j1".into(),
        }
    }

    #[test]
    fn a_signed_token_verifies_and_an_expired_one_does_not() {
        let k = keys();
        let t = k.sign(&claims(60)).unwrap();
        assert_eq!(k.verify(&t).unwrap(), claims(60));
        let old = k.sign(&claims(-10)).unwrap();
        assert!(k.verify(&old).is_err());
    }

    #[test]
    fn other_algorithms_and_none_are_refused() {
        let k = keys();
        let secret = b"a test secret of some length";
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(60),
            &EncodingKey::from_secret(secret),
        )
        .unwrap();
        assert!(k.verify(&hs512).is_err());
        let t = k.sign(&claims(60)).unwrap();
        let payload = t.split('.').nth(1).unwrap();
        // {"alg":"none","typ":"JWT"}
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(k.verify(&none).is_err());
        let other = TokenKeys::new(&Secret::new("another secret"));
        assert!(other.verify(&t).is_err());
    }

    #[test]
    fn ttls_parse_with_units() {
        assert_eq!(parse_ttl("30d").unwrap(), TimeDelta::days(30));
        assert_eq!(parse_ttl("15m").unwrap(), TimeDelta::minutes(15));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("10").is_err());
        assert!(parse_ttl("10y").is_err());
    }
}

//! Reading `wallet_utilisation`: every pool wallet's capacity.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

/// One pool wallet's stake, reserved, delegated and free capacity, as the finance team reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = WalletRow)]
pub struct Utilisation {
    pub wallet: String,
    pub enabled: bool,
    pub staked_sun: i64,
    pub delegatable_sun: i64,
    pub reserved_sun: i64,
    pub free_sun: i64,
    pub delegated_sun: i64,
    pub active_delegations: i32,
    pub delegations_total: i64,
    pub alerts: Vec<String>,
    pub observed_at: Option<DateTime<Utc>>,
}

/// Every pool wallet, by address.
pub async fn all(pool: &PgPool) -> Result<Vec<Utilisation>, sqlx::Error> {
    sqlx::query_as(
        "SELECT wallet, enabled, staked_sun, delegatable_sun, reserved_sun, free_sun, \
                delegated_sun, active_delegations, delegations_total, alerts, observed_at \
         FROM wallet_utilisation ORDER BY wallet",
    )
    .fetch_all(pool)
    .await
}

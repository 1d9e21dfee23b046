//! Who opened an account: the actor in the metadata of the account's first event (found through
//! the index on first events), so bot ownership needs no table of its own.

use sqlx::PgPool;

/// The `(role, subject)` of the actor that opened `account_id`; `None` when there is no such
/// account.
pub async fn opener(
    pool: &PgPool,
    account_id: &str,
) -> Result<Option<(Option<String>, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT metadata->>'actor_role', metadata->>'actor_subject' FROM events \
         WHERE aggregate_type = 'account' AND aggregate_id = $1 AND sequence = 1",
    )
    .bind(account_id)
    .fetch_optional(pool)
    .await
}

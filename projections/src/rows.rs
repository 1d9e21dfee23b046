//! Loading and storing view rows. A batch collects the keys it touches, loads those rows in one
//! statement, folds its events into them in memory, and writes them back in one multi-row
//! upsert. Rows travel as JSON (`to_jsonb` out, `jsonb_populate_recordset` in) so that one
//! generic statement per table serves every view; the tables themselves are typed columns.

use std::collections::HashMap;
use std::hash::Hash;

use chrono::{DateTime, SubsecRound, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::PgConnection;

use crate::error::Error;

/// A row of a view table: its column names are its serde field names.
pub(crate) trait ViewRow:
    Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static
{
    type Key: Eq + Hash + Clone + Serialize + Send + Sync;
    /// The key columns, in primary-key order.
    const KEY: &'static [&'static str];
    /// Every column written (generated columns excluded).
    const COLUMNS: &'static [&'static str];
    fn key(&self) -> Self::Key;
}

/// The rows with these keys that exist in `table`.
pub(crate) async fn load<R: ViewRow>(
    conn: &mut PgConnection,
    table: &str,
    keys: &[R::Key],
) -> Result<HashMap<R::Key, R>, Error> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let key_cols = R::KEY.join(", ");
    let sql = if R::KEY.len() == 1 {
        format!(
            "SELECT to_jsonb(t) FROM {table} t WHERE {key_cols} = ANY(SELECT jsonb_array_elements_text($1::jsonb))"
        )
    } else {
        format!(
            "SELECT to_jsonb(t) FROM {table} t WHERE ({key_cols}) IN \
             (SELECT {key_cols} FROM jsonb_populate_recordset(NULL::{table}, $1::jsonb))"
        )
    };
    let param = if R::KEY.len() == 1 {
        serde_json::to_value(keys)
    } else {
        // Composite keys serialise as objects named by their columns.
        let objects: Vec<serde_json::Map<String, serde_json::Value>> = keys
            .iter()
            .map(|k| {
                let values = serde_json::to_value(k).unwrap_or_default();
                let values = values.as_array().cloned().unwrap_or_default();
                R::KEY.iter().map(|c| c.to_string()).zip(values).collect()
            })
            .collect();
        serde_json::to_value(objects)
    }
    .map_err(|e| Error::corrupt(format!("keys of {table}"), e))?;
    let rows: Vec<Json<R>> = sqlx::query_scalar(&sql).bind(param).fetch_all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|Json(r)| (r.key(), r))
        .collect::<HashMap<_, _>>())
}

/// Inserts or replaces `rows` in `table`, in one statement.
pub(crate) async fn store<R: ViewRow>(
    conn: &mut PgConnection,
    table: &str,
    rows: impl IntoIterator<Item = &R>,
) -> Result<(), Error> {
    let rows: Vec<&R> = rows.into_iter().collect();
    if rows.is_empty() {
        return Ok(());
    }
    let cols = R::COLUMNS.join(", ");
    let keys = R::KEY.join(", ");
    let updates = R::COLUMNS
        .iter()
        .filter(|c| !R::KEY.contains(c))
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO {table} ({cols}) \
         SELECT {cols} FROM jsonb_populate_recordset(NULL::{table}, $1::jsonb) \
         ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    );
    sqlx::query(&sql).bind(Json(&rows)).execute(conn).await?;
    Ok(())
}

/// A time as the database keeps it (microseconds), so a row folded in memory and a row read
/// back compute the same figures.
pub(crate) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// A stored figure: amounts fit `bigint` by construction (`MAX_AMOUNT`); sun and energy are
/// clamped rather than wrapped if a chain ever reports more.
pub(crate) fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

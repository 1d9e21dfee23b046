//! Loading and storing view rows. A batch collects the keys it touches, loads those rows in one
//! statement, folds its events into them in memory, and writes them back in one multi-row
//! upsert. Rows travel as JSON (`to_jsonb` out, `jsonb_populate_recordset` in) so that one
//! generic statement per table serves every view; the tables themselves are typed columns.

use std::any::Any;
use std::collections::{HashMap, HashSet};
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
    type Key: Eq + Ord + Hash + Clone + Serialize + Send + Sync + 'static;
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
            "SELECT to_jsonb(t) FROM {table} t \
             WHERE {key_cols} = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))"
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

/// The upsert of rows given as a JSON array in `$1`.
fn store_sql<R: ViewRow>(table: &str) -> String {
    let cols = R::COLUMNS.join(", ");
    let keys = R::KEY.join(", ");
    let updates = R::COLUMNS
        .iter()
        .filter(|c| !R::KEY.contains(c))
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO {table} ({cols}) \
         SELECT {cols} FROM json_populate_recordset(NULL::{table}, $1::text::json) \
         ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    )
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
    let json =
        serde_json::to_string(&rows).map_err(|e| Error::corrupt(format!("rows of {table}"), e))?;
    sqlx::query(&store_sql::<R>(table))
        .bind(json)
        .execute(conn)
        .await?;
    Ok(())
}

/// Rows kept in memory between batches.
///
/// Live batches use [`RowCache::none`]: each batch loads the rows it touches, writes them back
/// and keeps nothing. A rebuild uses [`RowCache::for_rebuild`]: its shadow tables start empty and
/// it is their only writer, so every row lives in memory, batches touch only memory, and
/// [`RowCache::flush`] writes the rows changed since the last flush (each once, however many
/// events changed it) in the transaction that saves the shadows' checkpoints. Past `limit` rows
/// in all, a flush forgets them and the cache works like `none` from then on.
pub struct RowCache {
    mode: Mode,
    tables: HashMap<String, Box<dyn CachedTable>>,
    limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Load and store every batch's rows.
    Load,
    /// Every row of the tables is in memory.
    Authoritative,
}

/// One table's rows in memory, the keys changed since the last flush, and the keys already
/// written by an earlier flush.
struct Rows<R: ViewRow> {
    rows: HashMap<R::Key, R>,
    dirty: HashSet<R::Key>,
    written: HashSet<R::Key>,
}

/// A flush of one table: rows never written before (copied in) and rows written before
/// (upserted).
struct Changes {
    copy_sql: String,
    copy_data: Vec<u8>,
    upsert: Option<(String, String)>,
}

trait CachedTable: Send + Sync {
    fn len(&self) -> usize;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// The changed rows, ready to write; clears the changes.
    fn take_changes(&mut self, table: &str) -> Result<Option<Changes>, Error>;
}

impl<R: ViewRow> CachedTable for Rows<R> {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn take_changes(&mut self, table: &str) -> Result<Option<Changes>, Error> {
        if self.dirty.is_empty() {
            return Ok(None);
        }
        let mut copy_data = Vec::new();
        let mut again: Vec<&R> = Vec::new();
        for key in &self.dirty {
            let Some(row) = self.rows.get(key) else {
                continue;
            };
            if self.written.contains(key) {
                again.push(row);
            } else {
                copy_line(row, &mut copy_data)
                    .map_err(|e| Error::corrupt(format!("row of {table}"), e))?;
            }
        }
        let upsert = if again.is_empty() {
            None
        } else {
            let json = serde_json::to_string(&again)
                .map_err(|e| Error::corrupt(format!("rows of {table}"), e))?;
            Some((store_sql::<R>(table), json))
        };
        self.written.extend(self.dirty.drain());
        Ok(Some(Changes {
            copy_sql: format!("COPY {table} ({}) FROM STDIN", R::COLUMNS.join(", ")),
            copy_data,
            upsert,
        }))
    }
}

/// One row in `COPY … FROM STDIN` text format, columns in `R::COLUMNS` order.
fn copy_line<R: ViewRow>(row: &R, out: &mut Vec<u8>) -> Result<(), String> {
    let value = serde_json::to_value(row).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(map) = value else {
        return Err("a row serialises as an object".into());
    };
    for (i, column) in R::COLUMNS.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        copy_value(map.get(*column).unwrap_or(&serde_json::Value::Null), out)?;
    }
    out.push(b'\n');
    Ok(())
}

fn copy_escaped(s: &str, out: &mut Vec<u8>) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

fn copy_value(v: &serde_json::Value, out: &mut Vec<u8>) -> Result<(), String> {
    use serde_json::Value;
    match v {
        Value::Null => out.extend_from_slice(b"\\N"),
        Value::Bool(b) => out.push(if *b { b't' } else { b'f' }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => copy_escaped(s, out),
        Value::Array(items) => {
            // A text[] literal: {"a","b"} with \ and " escaped inside the quotes.
            let mut literal = String::from("{");
            for (i, item) in items.iter().enumerate() {
                let Value::String(s) = item else {
                    return Err(format!("array element {item} is not text"));
                };
                if i > 0 {
                    literal.push(',');
                }
                literal.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        literal.push('\\');
                    }
                    literal.push(c);
                }
                literal.push('"');
            }
            literal.push('}');
            copy_escaped(&literal, out);
        }
        Value::Object(_) => return Err("a column holds an object".into()),
    }
    Ok(())
}

impl RowCache {
    /// No caching (live batches).
    pub fn none() -> Self {
        RowCache {
            mode: Mode::Load,
            tables: HashMap::new(),
            limit: 0,
        }
    }

    /// For tables that start empty and have one writer, up to `limit` rows.
    pub fn for_rebuild(limit: usize) -> Self {
        RowCache {
            mode: Mode::Authoritative,
            tables: HashMap::new(),
            limit,
        }
    }

    /// True while batches only touch memory (then call [`flush`](Self::flush) to write).
    pub fn in_memory(&self) -> bool {
        self.mode == Mode::Authoritative
    }

    /// Writes every row changed since the last flush, in the caller's transaction. If the cache
    /// has grown past its limit, it then forgets the rows (they are all in the tables).
    pub async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), Error> {
        let mut names: Vec<String> = self.tables.keys().cloned().collect();
        names.sort();
        for name in names {
            let changes = match self.tables.get_mut(&name) {
                Some(t) => t.take_changes(&name)?,
                None => None,
            };
            let Some(changes) = changes else {
                continue;
            };
            if !changes.copy_data.is_empty() {
                let mut copy = conn.copy_in_raw(&changes.copy_sql).await?;
                copy.send(changes.copy_data).await?;
                copy.finish().await?;
            }
            if let Some((sql, json)) = changes.upsert {
                sqlx::query(&sql).bind(json).execute(&mut *conn).await?;
            }
        }
        let rows: usize = self.tables.values().map(|t| t.len()).sum();
        if self.mode == Mode::Authoritative && rows > self.limit {
            tracing::debug!(
                rows,
                "row cache full; loading rows from the tables from now on"
            );
            self.tables.clear();
            self.mode = Mode::Load;
        }
        Ok(())
    }
}

/// The rows with these keys that exist in `table` (when the cache holds the table, all its
/// rows, with the others).
pub(crate) async fn fetch<R: ViewRow>(
    conn: &mut PgConnection,
    table: &str,
    keys: &[R::Key],
    cache: &mut RowCache,
) -> Result<HashMap<R::Key, R>, Error> {
    match cache.mode {
        Mode::Load => load(conn, table, keys).await,
        Mode::Authoritative => {
            let entry = cache.tables.entry(table.to_string()).or_insert_with(|| {
                Box::new(Rows::<R> {
                    rows: HashMap::new(),
                    dirty: HashSet::new(),
                    written: HashSet::new(),
                })
            });
            let rows = entry
                .as_any_mut()
                .downcast_mut::<Rows<R>>()
                .map(|r| std::mem::take(&mut r.rows))
                .ok_or_else(|| Error::corrupt(table, "cached under another row type"))?;
            Ok(rows)
        }
    }
}

/// Writes the rows of `dirty` from `rows` now, or (cache holding the table) marks them changed
/// and keeps `rows` in memory until the next flush.
pub(crate) async fn keep<R: ViewRow>(
    conn: &mut PgConnection,
    table: &str,
    rows: HashMap<R::Key, R>,
    dirty: &[R::Key],
    cache: &mut RowCache,
) -> Result<(), Error> {
    match cache.mode {
        Mode::Load => store(conn, table, dirty.iter().filter_map(|k| rows.get(k))).await,
        Mode::Authoritative => {
            let cached = cache
                .tables
                .get_mut(table)
                .and_then(|t| t.as_any_mut().downcast_mut::<Rows<R>>())
                .ok_or_else(|| Error::corrupt(table, "not fetched before it is kept"))?;
            cached.rows = rows;
            cached.dirty.extend(dirty.iter().cloned());
            Ok(())
        }
    }
}

/// Sorted, without repeats.
pub(crate) fn unique<K: Ord>(mut keys: Vec<K>) -> Vec<K> {
    keys.sort();
    keys.dedup();
    keys
}

/// A time as the database keeps it (microseconds), so a row folded in memory and a row read
/// back compute the same figures.
pub(crate) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// The base58 form of an address, remembered (base58 with its double SHA-256 checksum costs
/// more than the rest of applying an event, and a few wallets and receivers recur).
pub(crate) fn base58(address: &engine::domain::TronAddress) -> String {
    thread_local! {
        static SEEN: std::cell::RefCell<HashMap<engine::domain::TronAddress, String>> =
            std::cell::RefCell::new(HashMap::new());
    }
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some(s) = seen.get(address) {
            return s.clone();
        }
        if seen.len() >= 100_000 {
            seen.clear();
        }
        let s = address.to_base58();
        seen.insert(*address, s.clone());
        s
    })
}

/// A stored figure: amounts fit `bigint` by construction (`MAX_AMOUNT`); sun and energy are
/// clamped rather than wrapped if a chain ever reports more.
pub(crate) fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

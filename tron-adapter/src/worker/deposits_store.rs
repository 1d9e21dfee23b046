//! The deposit watcher's tables (migration 0040): its two cursors, the deposits detected but
//! not yet settled, and the look-up of our deposit addresses (`deposit_addresses`, migration
//! 0010, read directly: the watcher needs to know whose an address is, never its key).

use std::collections::HashMap;

use engine::domain::DepositId;
use sqlx::PgPool;

use crate::error::Error;
use crate::tx::TxId;
use crate::TronAddress;

/// Where a cursor stands: the next block to read, and the id of the block before it when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub next_block: u64,
    pub last_block_id: Option<[u8; 32]>,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn block_id(text: Option<String>) -> Option<[u8; 32]> {
    text.and_then(|t| crate::hexstr::decode_array::<32>("block id", &t).ok())
}

/// Creates the cursor at `start` unless it exists; returns where it stands.
pub async fn init_cursor(pool: &PgPool, name: &str, start: u64) -> Result<Cursor, Error> {
    sqlx::query(
        "INSERT INTO chain_cursors (name, next_block) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(to_i64(start))
    .execute(pool)
    .await?;
    load_cursor(pool, name)
        .await?
        .ok_or_else(|| Error::Database(sqlx::Error::RowNotFound))
}

pub async fn load_cursor(pool: &PgPool, name: &str) -> Result<Option<Cursor>, Error> {
    let row: Option<(i64, Option<String>)> =
        sqlx::query_as("SELECT next_block, last_block_id FROM chain_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(next, id)| Cursor {
        next_block: u64::try_from(next).unwrap_or(0),
        last_block_id: block_id(id),
    }))
}

/// Moves (or creates) a cursor.
pub async fn save_cursor(pool: &PgPool, name: &str, cursor: &Cursor) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO chain_cursors (name, next_block, last_block_id) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE \
           SET next_block = EXCLUDED.next_block, last_block_id = EXCLUDED.last_block_id, \
               updated_at = now()",
    )
    .bind(name)
    .bind(to_i64(cursor.next_block))
    .bind(cursor.last_block_id.map(hex::encode))
    .execute(pool)
    .await?;
    Ok(())
}

/// The accounts of those of `addresses` that are our deposit addresses.
pub async fn deposit_accounts(
    pool: &PgPool,
    addresses: &[TronAddress],
) -> Result<HashMap<TronAddress, String>, Error> {
    if addresses.is_empty() {
        return Ok(HashMap::new());
    }
    let hexes: Vec<String> = addresses.iter().map(TronAddress::to_hex).collect();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT address, account_id FROM deposit_addresses WHERE address = ANY($1)")
            .bind(&hexes)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(address, account)| Some((TronAddress::from_hex(&address).ok()?, account)))
        .collect())
}

/// A deposit detected on the head and not settled yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub deposit_id: DepositId,
    pub txid: TxId,
    pub block_number: u64,
    pub expiration_ms: i64,
}

/// Records (or moves to `block_number`) a pending deposit.
pub async fn upsert_pending(pool: &PgPool, p: &Pending) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO pending_deposits (deposit_id, txid, block_number, expiration_ms) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (deposit_id) DO UPDATE \
           SET block_number = EXCLUDED.block_number, expiration_ms = EXCLUDED.expiration_ms",
    )
    .bind(p.deposit_id.to_string())
    .bind(p.txid.to_hex())
    .bind(to_i64(p.block_number))
    .bind(p.expiration_ms)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn move_pending(
    pool: &PgPool,
    deposit_id: &DepositId,
    block_number: u64,
) -> Result<(), Error> {
    sqlx::query("UPDATE pending_deposits SET block_number = $2 WHERE deposit_id = $1")
        .bind(deposit_id.to_string())
        .bind(to_i64(block_number))
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn remove_pending(pool: &PgPool, deposit_id: &DepositId) -> Result<(), Error> {
    sqlx::query("DELETE FROM pending_deposits WHERE deposit_id = $1")
        .bind(deposit_id.to_string())
        .execute(pool)
        .await?;
    Ok(())
}

/// Pending deposits last seen in a block below `below` (oldest first, at most `limit`).
pub async fn pending_below(pool: &PgPool, below: u64, limit: i64) -> Result<Vec<Pending>, Error> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT deposit_id, txid, block_number, expiration_ms FROM pending_deposits \
         WHERE block_number < $1 ORDER BY block_number, deposit_id LIMIT $2",
    )
    .bind(to_i64(below))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(deposit_id, txid, block, expiration_ms)| {
            let corrupt = |reason: String| {
                Error::Engine(engine::Error::Corrupt {
                    what: format!("pending_deposits row {deposit_id}"),
                    reason,
                })
            };
            Ok(Pending {
                deposit_id: DepositId::parse(&deposit_id).map_err(|e| corrupt(e.to_string()))?,
                txid: crate::hexstr::decode_array::<32>("txid", &txid)
                    .map(TxId)
                    .map_err(|e| corrupt(e.to_string()))?,
                block_number: u64::try_from(block).unwrap_or(0),
                expiration_ms,
            })
        })
        .collect()
}

//! The pool wallets as the event store knows them (every `wallet` aggregate).

use engine::domain::{TronAddress, Wallet};
use engine::process::Buses;

use crate::error::Error;

/// Every registered pool wallet with its current state.
pub async fn pool_wallets(buses: &Buses) -> Result<Vec<(TronAddress, Wallet)>, Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'wallet' ORDER BY 1",
    )
    .fetch_all(buses.pool())
    .await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let (wallet, _) = buses.wallet.load(&id).await?;
        if let Some(address) = wallet.address() {
            out.push((address, wallet));
        }
    }
    Ok(out)
}

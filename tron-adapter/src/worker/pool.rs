//! The pool wallets as the event store knows them (every `wallet` aggregate), found through the
//! partial index on each stream's first event; each wallet's state comes from its command bus.

use engine::domain::{TronAddress, Wallet};
use engine::process::Buses;

use crate::error::Error;

/// The aggregate ids of every registered pool wallet.
pub async fn pool_wallet_ids(buses: &Buses) -> Result<Vec<String>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE aggregate_type = 'wallet' AND sequence = 1 ORDER BY 1",
    )
    .fetch_all(buses.pool())
    .await?)
}

/// Every registered pool wallet with its current state.
pub async fn pool_wallets(buses: &Buses) -> Result<Vec<(TronAddress, Wallet)>, Error> {
    let ids = pool_wallet_ids(buses).await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        // Possibly a little old: the reservation that follows is decided on the current state.
        let (wallet, _) = buses.wallet.peek(&id).await?;
        if let Some(address) = wallet.address() {
            out.push((address, wallet));
        }
    }
    Ok(out)
}

/// Adds every registered pool wallet that the order policy does not know yet (a wallet an admin
/// registered through the API, maybe in another process) to the policy orders decide with.
/// Returns the wallets added. Wallets are never removed here: a disabled wallet stays a pool
/// wallet (its active orders still reclaim from it).
pub async fn refresh_pool_policy(buses: &Buses) -> Result<Vec<TronAddress>, Error> {
    let registered: Vec<TronAddress> = pool_wallets(buses)
        .await?
        .into_iter()
        .map(|(address, _)| address)
        .collect();
    let mut added = Vec::new();
    buses.order.update_services(|known| {
        added = registered
            .iter()
            .filter(|a| !known.pool_wallets.contains(a))
            .copied()
            .collect();
        if added.is_empty() {
            return None;
        }
        let mut policy = known.clone();
        policy.pool_wallets.extend(added.iter().copied());
        Some(policy)
    });
    for address in &added {
        tracing::info!(wallet = %address, "a newly registered pool wallet joins the order policy");
    }
    Ok(added)
}

//! The prices orders are decided with: the configured table (prices file or sample prices) with
//! the admin's price list over it. Each process that places orders calls [`refresh_prices`]
//! after a price change it made itself and every second or so for changes made elsewhere.

use crate::domain::{PriceTable, PRICE_LIST_ID};
use crate::error::Error;
use crate::process::Buses;

/// Brings the order policy's prices up to date with the price list. Returns the table now in
/// force and whether it changed.
pub async fn refresh_prices(
    buses: &Buses,
    configured: &PriceTable,
) -> Result<(PriceTable, bool), Error> {
    let (list, _) = buses.price_list.load(PRICE_LIST_ID).await?;
    let table = list.over(configured);
    let changed = buses.order.update_services(|policy| {
        (policy.prices != table).then(|| {
            let mut policy = policy.clone();
            policy.prices = table.clone();
            policy
        })
    });
    if changed {
        tracing::info!("the order policy now decides with the admin's prices");
    }
    Ok((table, changed))
}

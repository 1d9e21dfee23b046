//! The command buses of the aggregates, shared by everything in one process so that each
//! aggregate has one in-memory writer.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::Notify;

use crate::domain::{Account, Deposit, Maintenance, Order, OrderPolicy, PriceList, Wallet};
use crate::store::CommandBus;

pub struct Buses {
    pub account: CommandBus<Account>,
    pub order: CommandBus<Order>,
    pub deposit: CommandBus<Deposit>,
    pub wallet: CommandBus<Wallet>,
    pub price_list: CommandBus<PriceList>,
    pub maintenance: CommandBus<Maintenance>,
    /// Signalled after every append through these buses (see [`Buses::appended`]).
    appended: Arc<Notify>,
}

impl Buses {
    pub fn new(pool: PgPool, policy: OrderPolicy) -> Arc<Self> {
        let appended = Arc::new(Notify::new());
        Arc::new(Self {
            account: CommandBus::new(pool.clone(), ()).with_append_signal(appended.clone()),
            order: CommandBus::new(pool.clone(), policy).with_append_signal(appended.clone()),
            deposit: CommandBus::new(pool.clone(), ()).with_append_signal(appended.clone()),
            wallet: CommandBus::new(pool.clone(), ()).with_append_signal(appended.clone()),
            price_list: CommandBus::new(pool.clone(), ()).with_append_signal(appended.clone()),
            maintenance: CommandBus::new(pool, ()).with_append_signal(appended.clone()),
            appended,
        })
    }

    /// Notified (`notify_waiters`) after every append through these buses: process managers in
    /// this process wake on it instead of waiting for their next poll. Appends by other
    /// processes are still found by polling.
    pub fn appended(&self) -> Arc<Notify> {
        self.appended.clone()
    }

    pub fn pool(&self) -> &PgPool {
        self.account.pool()
    }
}

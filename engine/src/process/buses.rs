//! The command buses of the aggregates, shared by everything in one process so that each
//! aggregate has one in-memory writer.

use std::sync::Arc;

use sqlx::PgPool;

use crate::domain::{Account, Deposit, Maintenance, Order, OrderPolicy, PriceList, Wallet};
use crate::store::CommandBus;

pub struct Buses {
    pub account: CommandBus<Account>,
    pub order: CommandBus<Order>,
    pub deposit: CommandBus<Deposit>,
    pub wallet: CommandBus<Wallet>,
    pub price_list: CommandBus<PriceList>,
    pub maintenance: CommandBus<Maintenance>,
}

impl Buses {
    pub fn new(pool: PgPool, policy: OrderPolicy) -> Arc<Self> {
        Arc::new(Self {
            account: CommandBus::new(pool.clone(), ()),
            order: CommandBus::new(pool.clone(), policy),
            deposit: CommandBus::new(pool.clone(), ()),
            wallet: CommandBus::new(pool.clone(), ()),
            price_list: CommandBus::new(pool.clone(), ()),
            maintenance: CommandBus::new(pool, ()),
        })
    }

    pub fn pool(&self) -> &PgPool {
        self.account.pool()
    }
}

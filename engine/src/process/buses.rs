//! The command buses of the four aggregates, shared by everything in one process so that each
//! aggregate has one in-memory writer.

use std::sync::Arc;

use sqlx::PgPool;

use crate::domain::{Account, Deposit, Order, OrderPolicy, Wallet};
use crate::store::CommandBus;

pub struct Buses {
    pub account: CommandBus<Account>,
    pub order: CommandBus<Order>,
    pub deposit: CommandBus<Deposit>,
    pub wallet: CommandBus<Wallet>,
}

impl Buses {
    pub fn new(pool: PgPool, policy: OrderPolicy) -> Arc<Self> {
        Arc::new(Self {
            account: CommandBus::new(pool.clone(), ()),
            order: CommandBus::new(pool.clone(), policy),
            deposit: CommandBus::new(pool.clone(), ()),
            wallet: CommandBus::new(pool, ()),
        })
    }

    pub fn pool(&self) -> &PgPool {
        self.account.pool()
    }
}

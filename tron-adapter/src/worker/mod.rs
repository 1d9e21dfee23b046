//! The TRON adapter's workers: the wallet allocator (which pool wallet serves a paid order), the
//! chain workers (the write-ahead delegation and reclaim protocol, one owner per pool wallet),
//! the deposit watcher and the wallet sync.

pub mod allocator;
pub mod chain_params;
pub mod delegation;
pub mod deposits;
pub mod deposits_scan;
pub mod deposits_store;
pub mod pool;
pub mod wallet_sync;

pub use allocator::Allocator;
pub use chain_params::ChainParams;
pub use delegation::{ChainWake, ChainWorker, ChainWorkerConfig};
pub use deposits::{DepositWatcher, DepositWatcherConfig, ScanReport};
pub use wallet_sync::{WalletGauges, WalletSync, WalletSyncConfig};

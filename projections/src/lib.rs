//! `projections`: the projector runtime and the read models built from the global event log,
//! rebuilds into shadow tables, and the audit sequencer with its hash chain.
//!
//! - [`runtime`]: one task per projection, one owner per projection across processes (advisory
//!   lock), batches that write view rows and the checkpoint in one transaction.
//! - [`views`]: `account_balances`, `orders`, `deposits`, `wallet_utilisation`, `daily_finance`.
//! - [`rebuild`]: shadow tables from position zero while live continues, then an atomic swap,
//!   or a comparison with the live tables.
//! - [`audit`]: the sequencer, `verify`, history, state as of a moment, exports.
//!
//! docs/projections.md and docs/audit.md describe them for operators and auditors.

pub mod audit;
pub mod error;
pub mod log;
pub mod metrics;
pub mod progress;
pub mod projection;
pub mod rebuild;
pub mod rows;
pub mod runtime;
#[cfg(feature = "testing")]
pub mod testing;
pub mod views;

pub use error::Error;
pub use log::Event;
pub use metrics::{Metrics, MetricsSnapshot, WorkerState, WorkerStatus};
pub use projection::{Projection, Target};
pub use rows::RowCache;
pub use runtime::{Runtime, RuntimeConfig, RuntimeHandle};

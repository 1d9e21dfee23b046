//! Process managers: readers of the global log that carry a flow across aggregates by sending
//! commands (an order's payment, refund and capture; a deposit's credit; the time-based steps).
//!
//! Every command a process manager sends has an id derived from the event that caused it and
//! the step (`derived_command_id`), so handling an event twice — after a crash between sending
//! and checkpointing — sends the same command twice, which the bus answers from its command log.
//! The checkpoint moves only after every command of a batch has been decided.

pub mod buses;
pub mod cause;
pub mod deposit_flow;
pub mod order_flow;
pub mod prices;
pub mod runner;
pub mod scheduler;

pub use buses::Buses;
pub use cause::Cause;
pub use deposit_flow::DepositFlow;
pub use order_flow::OrderFlow;
pub use runner::{drain, run_reactor, ChainTaskChange, Effects, Reactor, RunnerConfig};

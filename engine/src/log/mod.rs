//! Reading the global log in a never-skipping order: `(transaction_id, global_position)` below
//! the transaction horizon, with checkpoints written by the caller in its own transaction.

pub mod position;
pub mod reader;
pub mod typed;

pub use position::LogPosition;
pub use reader::{load_checkpoint, save_checkpoint, GlobalLogReader, RecordedEvent};
pub use typed::{AnyEvent, TypedEvent};

//! A position in the global log: the writer's transaction id (xid8) and the row's identity
//! position. Ordered as a pair; readers checkpoint it (docs/event-store.md explains why a bare
//! `global_position` loses events).

use std::fmt;

use serde::{Deserialize, Serialize};

/// `(transaction_id, global_position)`; the start of the log is `(0, 0)`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogPosition {
    pub transaction_id: u64,
    pub global_position: i64,
}

impl LogPosition {
    pub const START: LogPosition = LogPosition {
        transaction_id: 0,
        global_position: 0,
    };

    pub fn new(transaction_id: u64, global_position: i64) -> Self {
        Self {
            transaction_id,
            global_position,
        }
    }
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transaction_id, self.global_position)
    }
}

/// Parses the text form of an `xid8` (PostgreSQL prints it as a decimal number).
pub(crate) fn parse_xid8(text: &str) -> Result<u64, crate::Error> {
    text.parse::<u64>()
        .map_err(|e| crate::Error::corrupt("transaction_id", e))
}

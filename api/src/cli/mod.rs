//! Operator commands of the `trx-energy` binary that are not the engine's processes:
//! `tron …` (check addresses and transactions by hand) and `keys …` (the key vault). Each module
//! exposes a clap subcommand enum and a `run` that writes to the given streams and returns the
//! exit code (0 done, 1 refused with a reason on the error stream), so tests call it directly.

pub mod keys;
pub mod simulate;
pub mod tron;

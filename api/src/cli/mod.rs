//! Operator commands of the `trx-energy` binary that are not the engine's processes:
//! `tron …` (check addresses and transactions by hand), `keys …` (the key vault), `project` (the
//! projector runtime alone), `rebuild …` (projections) and `audit …` (the hash chain), `token …`
//! (the API's bearer tokens), `serve` (the API) and `bench-http` (the API's benchmark). Each module
//! exposes a clap subcommand enum and a `run` that writes to the given streams and returns the
//! exit code (0 done, 1 refused with a reason on the error stream), so tests call it directly.

pub mod audit;
pub mod bench_http;
pub mod keys;
pub mod project;
pub mod rebuild;
pub mod run;
pub mod serve;
pub mod simulate;
pub mod token;
pub mod tron;

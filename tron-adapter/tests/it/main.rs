//! The tron-adapter's integration tests, one module per subject, in one test binary (a binary
//! links the whole stack; one per crate keeps the cold test build short). `common` holds what
//! the chain tests share: a simulator with a client, funded accounts, transaction builders.
//! Each test starts its own simulator on a free port and makes its own database.

mod common;

mod address_vectors;
mod chain_wake;
mod deposit_watcher;
mod lifecycle;
mod many_orders;
mod node_vectors;
mod simulator_bad_input;
mod simulator_faults;
mod simulator_finality;
mod simulator_stake;
mod simulator_validation;
mod tx_properties;
mod tx_vectors;
mod vault_db;
mod vault_logs;
mod wallet_sync;

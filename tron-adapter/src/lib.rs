//! `tron-adapter`: TRON protocol, node client, key vault, chain workers and the chain simulator.
//!
//! What is here (docs/tron-protocol.md, docs/key-vault.md, docs/lifecycle.md):
//! - [`keys`]: private keys (zeroized, never printed), public keys and `41…` addresses;
//! - [`signing`]: RFC6979 secp256k1 signatures over a txID and signer recovery;
//! - [`tx`]: the transaction protobuf (decode, encode, txID), local building from a reference
//!   block, and the full node's JSON form (`visible=false`);
//! - [`trc20`]: `transfer`/`balanceOf` calldata and `Transfer` event logs;
//! - [`bip32`]: deposit-address keys derived from a seed (m/44'/195'/0'/0/i);
//! - [`vault`]: keys encrypted at rest under a master-key keyring, stored in Postgres;
//! - [`node`]: the full-node HTTP client (typed, retrying, classifying by result code;
//!   docs/node-client.md);
//! - [`worker`]: the chain workers: the wallet allocator, delegation and reclaim, the deposit
//!   watcher and the wallet sync (docs/lifecycle.md, docs/deposits.md);
//! - [`simulator`]: a chain simulator that answers like a full node (docs/simulator.md).

pub mod bip32;
pub mod error;
pub mod fuzzing;
pub mod hexstr;
pub mod keys;
pub mod node;
pub mod signing;
pub mod simulator;
pub mod trc20;
pub mod tx;
pub mod vault;
pub mod worker;

pub use engine::domain::TronAddress;
pub use error::Error;
pub use keys::{PrivateKey, PublicKey};
pub use signing::Signature;

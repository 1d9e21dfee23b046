//! The crate's one error type. Each module has its own enum of reasons (hex input, keys,
//! signatures, transactions, TRC20, BIP32, vault); they all convert into [`Error`]. None of them
//! ever carries key material: a bad private key is described by its length or range, never shown.

use engine::domain::AddressError;

pub use crate::bip32::Bip32Error;
pub use crate::hexstr::HexError;
pub use crate::keys::KeyError;
pub use crate::node::NodeError;
pub use crate::signing::SignatureError;
pub use crate::simulator::SimError;
pub use crate::trc20::Trc20Error;
pub use crate::tx::TxError;
pub use crate::vault::VaultError;

/// Everything that can go wrong in `tron-adapter`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Hex(#[from] HexError),
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Tx(#[from] TxError),
    #[error(transparent)]
    Trc20(#[from] Trc20Error),
    #[error(transparent)]
    Bip32(#[from] Bip32Error),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Simulator(#[from] SimError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The event store or a command bus could not reach a decision.
    #[error(transparent)]
    Engine(#[from] engine::Error),
}

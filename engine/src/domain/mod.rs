//! The domain: aggregates, their commands, events and errors, pricing, and the value types they
//! share. Pure code with no IO; everything here is testable with given/when/then.

pub mod address;
pub mod money;

pub use address::{AddressError, TronAddress};
pub use money::{Amount, AmountError, Asset, UnknownAsset, MAX_AMOUNT};

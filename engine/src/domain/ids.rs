//! Identifiers the aggregates are addressed by and refer to each other with: `AccountId` (the
//! bot's customer id), `OrderId`, `TxId` (a TRON transaction id) and `DepositId` (a txid, plus
//! the log index for TRC20 transfers). Each parses once, at the edge, and serialises as a string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The longest account or order id we accept.
pub const MAX_ID_LEN: usize = 128;

/// Which kind of identifier failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    Account,
    Order,
    Txid,
    Deposit,
}

/// Why a text is not an identifier of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind:?} id: {problem}")]
pub struct IdError {
    pub kind: IdKind,
    pub problem: String,
}

impl IdError {
    /// The stable machine-readable code the API answers with.
    pub fn code(&self) -> &'static str {
        "invalid_id"
    }

    fn new(kind: IdKind, problem: impl Into<String>) -> Self {
        IdError {
            kind,
            problem: problem.into(),
        }
    }
}

fn check_name(kind: IdKind, s: &str) -> Result<(), IdError> {
    let problem = if s.is_empty() {
        "is empty".to_string()
    } else if s.chars().count() > MAX_ID_LEN {
        format!("is longer than {MAX_ID_LEN} characters")
    } else if !s.bytes().all(|b| b.is_ascii_graphic()) {
        "must be printable ASCII without whitespace".to_string()
    } else {
        return Ok(());
    };
    Err(IdError::new(kind, problem))
}

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an id: 1 to 128 printable ASCII characters, no whitespace.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check_name($kind, &s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_id!(
    /// A customer account: the bot's customer id, e.g. `tg:123456`.
    AccountId,
    IdKind::Account
);

name_id!(
    /// An order, server-assigned or derived from the customer's own order id
    /// ([`OrderId::for_client_order`]) so that a retried request finds the same order.
    OrderId,
    IdKind::Order
);

impl OrderId {
    /// The order id for a customer's own (client) order id: `ord_` and the first 32 hex digits
    /// of SHA-256 over the account id, a NUL byte and the client id. The same pair always
    /// gives the same order, so a retried request cannot place a second one.
    pub fn for_client_order(account: &AccountId, client_order_id: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(account.as_str().as_bytes());
        hasher.update([0u8]);
        hasher.update(client_order_id.as_bytes());
        let digest = hex::encode(hasher.finalize());
        Self(format!("ord_{}", &digest[..32]))
    }
}

/// A TRON transaction id: 64 hex digits (the SHA-256 of the raw transaction), kept lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TxId(String);

impl TxId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(IdError::new(
                IdKind::Txid,
                format!("must be 64 hex digits, got {} characters", s.len()),
            ));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TxId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<TxId> for String {
    fn from(id: TxId) -> String {
        id.0
    }
}

impl FromStr for TxId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A deposit: the transaction id, and for a TRC20 transfer the index of its `Transfer` log
/// (one transaction may carry several transfers). Written `<txid>` or `<txid>:<log_index>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DepositId {
    txid: TxId,
    log_index: Option<u32>,
}

impl DepositId {
    pub fn new(txid: TxId, log_index: Option<u32>) -> Self {
        Self { txid, log_index }
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let (tx, index) = match s.split_once(':') {
            Some((tx, index)) => (tx, Some(index)),
            None => (s, None),
        };
        let log_index = match index {
            None => None,
            Some(i) if !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) => Some(
                i.parse::<u32>()
                    .map_err(|_| IdError::new(IdKind::Deposit, "log index is too large"))?,
            ),
            Some(_) => {
                return Err(IdError::new(
                    IdKind::Deposit,
                    "log index must be a decimal number",
                ))
            }
        };
        Ok(Self::new(TxId::parse(tx)?, log_index))
    }

    pub fn txid(&self) -> &TxId {
        &self.txid
    }

    pub fn log_index(&self) -> Option<u32> {
        self.log_index
    }
}

impl TryFrom<String> for DepositId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<DepositId> for String {
    fn from(id: DepositId) -> String {
        id.to_string()
    }
}

impl FromStr for DepositId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DepositId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.log_index {
            Some(i) => write!(f, "{}:{i}", self.txid),
            None => write!(f, "{}", self.txid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_printable_short_and_without_whitespace() {
        assert_eq!(AccountId::parse("tg:123456").unwrap().as_str(), "tg:123456");
        for bad in ["", "tg 1", "tg:\n1", "tg:\u{7f}", "тг:1"] {
            let err = AccountId::parse(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_id", "{bad:?}");
        }
        assert!(AccountId::parse("a".repeat(128)).is_ok());
        assert!(AccountId::parse("a".repeat(129)).is_err());
    }

    #[test]
    fn ids_are_validated_when_deserialised() {
        let id: OrderId = serde_json::from_str("\"o-1\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"o-1\"");
        assert!(serde_json::from_str::<OrderId>("\"\"").is_err());
        assert!(serde_json::from_str::<AccountId>("\"a b\"").is_err());
    }

    #[test]
    fn a_client_order_id_always_maps_to_the_same_order() {
        let a = AccountId::parse("tg:1").unwrap();
        let b = AccountId::parse("tg:2").unwrap();
        let first = OrderId::for_client_order(&a, "x");
        assert_eq!(first, OrderId::for_client_order(&a, "x"));
        assert_ne!(first, OrderId::for_client_order(&b, "x"));
        assert_ne!(first, OrderId::for_client_order(&a, "y"));
        assert_eq!(first.as_str().len(), 36);
        assert!(OrderId::parse(first.as_str()).is_ok());
    }

    #[test]
    fn txids_are_64_hex_digits_kept_lower_case() {
        let upper = "AB".repeat(32);
        assert_eq!(TxId::parse(&upper).unwrap().as_str(), "ab".repeat(32));
        for bad in ["", "ab", &"g".repeat(64), &"a".repeat(65)] {
            let err = TxId::parse(bad).unwrap_err();
            assert_eq!(err.kind, IdKind::Txid, "{bad:?}");
            assert!(err
                .to_string()
                .starts_with("invalid Txid id: must be 64 hex digits"));
        }
    }

    #[test]
    fn deposit_ids_carry_the_log_index_of_trc20_transfers() {
        let tx = "0f".repeat(32);
        let trx = DepositId::parse(&tx).unwrap();
        assert_eq!(trx.log_index(), None);
        assert_eq!(trx.to_string(), tx);
        let usdt = DepositId::parse(&format!("{tx}:3")).unwrap();
        assert_eq!(usdt.log_index(), Some(3));
        assert_eq!(usdt.to_string(), format!("{tx}:3"));
        assert_eq!(serde_json::to_string(&usdt).unwrap(), format!("\"{tx}:3\""));
        for bad in [
            format!("{tx}:"),
            format!("{tx}:-1"),
            format!("{tx}:99999999999"),
        ] {
            assert!(DepositId::parse(&bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<DepositId>("\"zz:1\"").is_err());
    }
}

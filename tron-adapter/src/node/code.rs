//! `Return.response_code` (api.proto) and what each one means for us. Broadcast replies are
//! classified by this code, never by the message text, which differs between node versions and
//! documentation (docs/tron.md §2.2).

use std::fmt;

/// The node's answer code on broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResponseCode {
    Success,
    SigError,
    ContractValidateError,
    ContractExeError,
    /// The node's spelling: `BANDWITH_ERROR`.
    BandwithError,
    DupTransactionError,
    TaposError,
    TooBigTransactionError,
    TransactionExpirationError,
    ServerBusy,
    NoConnection,
    NotEnoughEffectiveConnection,
    BlockUnsolidified,
    OtherError,
    /// A code this client does not know (a newer node); treated as a rejection.
    Unknown(String),
}

const TABLE: &[(ResponseCode, &str, i32)] = &[
    (ResponseCode::Success, "SUCCESS", 0),
    (ResponseCode::SigError, "SIGERROR", 1),
    (
        ResponseCode::ContractValidateError,
        "CONTRACT_VALIDATE_ERROR",
        2,
    ),
    (ResponseCode::ContractExeError, "CONTRACT_EXE_ERROR", 3),
    (ResponseCode::BandwithError, "BANDWITH_ERROR", 4),
    (
        ResponseCode::DupTransactionError,
        "DUP_TRANSACTION_ERROR",
        5,
    ),
    (ResponseCode::TaposError, "TAPOS_ERROR", 6),
    (
        ResponseCode::TooBigTransactionError,
        "TOO_BIG_TRANSACTION_ERROR",
        7,
    ),
    (
        ResponseCode::TransactionExpirationError,
        "TRANSACTION_EXPIRATION_ERROR",
        8,
    ),
    (ResponseCode::ServerBusy, "SERVER_BUSY", 9),
    (ResponseCode::NoConnection, "NO_CONNECTION", 10),
    (
        ResponseCode::NotEnoughEffectiveConnection,
        "NOT_ENOUGH_EFFECTIVE_CONNECTION",
        11,
    ),
    (ResponseCode::BlockUnsolidified, "BLOCK_UNSOLIDIFIED", 12),
    (ResponseCode::OtherError, "OTHER_ERROR", 20),
];

impl ResponseCode {
    /// From the name in a JSON reply (or its number, which some proxies print).
    pub fn parse(text: &str) -> Self {
        TABLE
            .iter()
            .find(|(_, name, number)| *name == text || number.to_string() == text)
            .map(|(code, _, _)| code.clone())
            .unwrap_or_else(|| Self::Unknown(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Unknown(text) => text,
            known => TABLE
                .iter()
                .find(|(code, _, _)| code == known)
                .map(|(_, name, _)| *name)
                .unwrap_or("OTHER_ERROR"),
        }
    }

    /// What the engine should do about a broadcast that got this code.
    pub fn class(&self) -> BroadcastClass {
        match self {
            Self::Success => BroadcastClass::Accepted,
            Self::DupTransactionError => BroadcastClass::AlreadyKnown,
            Self::TaposError | Self::TransactionExpirationError => BroadcastClass::Rebuild,
            Self::ServerBusy
            | Self::NoConnection
            | Self::NotEnoughEffectiveConnection
            | Self::BlockUnsolidified
            | Self::OtherError => BroadcastClass::Transient,
            Self::SigError
            | Self::ContractValidateError
            | Self::ContractExeError
            | Self::BandwithError
            | Self::TooBigTransactionError
            | Self::Unknown(_) => BroadcastClass::Rejected,
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The consequence of a broadcast reply (docs/node-client.md has the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcastClass {
    /// Pooled; confirm it with `gettransactioninfobyid`.
    Accepted,
    /// `DUP_TRANSACTION_ERROR`: the node already has this txID — it was sent; poll it.
    AlreadyKnown,
    /// TAPOS or expiration: these bytes can never land; build a new transaction.
    Rebuild,
    /// The node is busy or badly connected: send the same bytes again later.
    Transient,
    /// The transaction is wrong (signature, validation, resources, size): do not resend it.
    Rejected,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_name_and_number() {
        for (code, name, number) in TABLE {
            assert_eq!(&ResponseCode::parse(name), code);
            assert_eq!(&ResponseCode::parse(&number.to_string()), code);
            assert_eq!(code.as_str(), *name);
        }
        assert_eq!(
            ResponseCode::parse("SOMETHING_NEW"),
            ResponseCode::Unknown("SOMETHING_NEW".into())
        );
        assert_eq!(
            ResponseCode::parse("SOMETHING_NEW").class(),
            BroadcastClass::Rejected
        );
    }
}

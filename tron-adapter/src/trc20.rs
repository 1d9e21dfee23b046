//! TRC20 (USDT) on the wire: `transfer(address,uint256)` and `balanceOf(address)` calldata, and
//! the `Transfer(address,address,uint256)` event log a `gettransactioninfobyid` receipt carries.
//! Addresses in ABI words are the low 20 bytes (real transfers sometimes carry 0x41 in byte 11).
//! Amounts are integers in the token's base units (u128; larger values are refused).

use serde::Deserialize;

use crate::hexstr::{self, HexError};
use crate::TronAddress;

/// keccak256("Transfer(address,address,uint256)").
pub const TRANSFER_TOPIC: [u8; 32] = [
    0xdd, 0xf2, 0x52, 0xad, 0x1b, 0xe2, 0xc8, 0x9b, 0x69, 0xc2, 0xb0, 0x68, 0xfc, 0x37, 0x8d, 0xaa,
    0x95, 0x2b, 0xa7, 0xf1, 0x63, 0xc4, 0xa1, 0x16, 0x28, 0xf5, 0x5a, 0x4d, 0xf5, 0x23, 0xb3, 0xef,
];
/// keccak256("transfer(address,uint256)")[..4].
pub const TRANSFER_SELECTOR: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// keccak256("balanceOf(address)")[..4].
pub const BALANCE_OF_SELECTOR: [u8; 4] = [0x70, 0xa0, 0x82, 0x31];

/// Why calldata or a log is not a TRC20 transfer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Trc20Error {
    #[error(transparent)]
    Hex(#[from] HexError),
    #[error("calldata is {0} bytes; transfer(address,uint256) takes 68")]
    CalldataLength(usize),
    #[error("calldata selector is {0}; transfer(address,uint256) is a9059cbb")]
    WrongSelector(String),
    #[error("{0} word is not an address (its high bytes are not zero)")]
    NotAnAddress(&'static str),
    #[error("amount does not fit in 128 bits")]
    AmountTooLarge,
    #[error("Transfer log has {0} topics; expected 3")]
    TopicCount(usize),
    #[error("Transfer log data is {0} bytes; expected 32")]
    DataLength(usize),
    #[error("log address is {0} bytes; expected 20 (or 21 with 0x41)")]
    LogAddressLength(usize),
}

/// A TRC20 transfer asked for in calldata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferCall {
    pub to: TronAddress,
    pub amount: u128,
}

/// A `Transfer` event: `amount` base units of the token at `contract` moved `from` → `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferLog {
    pub contract: TronAddress,
    pub from: TronAddress,
    pub to: TronAddress,
    pub amount: u128,
}

/// One `log` entry of `gettransactioninfobyid` with `visible=false` (hex strings; `address` is
/// 20 bytes without 0x41).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LogEntry {
    pub address: String,
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub data: String,
}

fn address_word(address: &TronAddress) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[12..].copy_from_slice(&address.evm_bytes());
    word
}

fn amount_word(amount: u128) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[16..].copy_from_slice(&amount.to_be_bytes());
    word
}

/// `transfer(to, amount)` calldata.
pub fn transfer_calldata(to: &TronAddress, amount: u128) -> Vec<u8> {
    let mut data = TRANSFER_SELECTOR.to_vec();
    data.extend_from_slice(&address_word(to));
    data.extend_from_slice(&amount_word(amount));
    data
}

/// `balanceOf(owner)` calldata.
pub fn balance_of_calldata(owner: &TronAddress) -> Vec<u8> {
    let mut data = BALANCE_OF_SELECTOR.to_vec();
    data.extend_from_slice(&address_word(owner));
    data
}

/// The address in an ABI word: bytes 0..11 zero, byte 11 zero or 0x41, low 20 bytes the account.
fn word_address(what: &'static str, word: &[u8]) -> Result<TronAddress, Trc20Error> {
    if word.len() != 32 || word[..11].iter().any(|b| *b != 0) || !matches!(word[11], 0 | 0x41) {
        return Err(Trc20Error::NotAnAddress(what));
    }
    let mut evm = [0u8; 20];
    evm.copy_from_slice(&word[12..]);
    Ok(TronAddress::from_evm_bytes(evm))
}

fn word_amount(word: &[u8]) -> Result<u128, Trc20Error> {
    if word[..16].iter().any(|b| *b != 0) {
        return Err(Trc20Error::AmountTooLarge);
    }
    let mut low = [0u8; 16];
    low.copy_from_slice(&word[16..32]);
    Ok(u128::from_be_bytes(low))
}

/// Reads `transfer(address,uint256)` calldata.
pub fn parse_transfer_calldata(data: &[u8]) -> Result<TransferCall, Trc20Error> {
    if data.len() < 4 || data[..4] != TRANSFER_SELECTOR {
        return Err(Trc20Error::WrongSelector(hex::encode(
            &data[..data.len().min(4)],
        )));
    }
    if data.len() != 68 {
        return Err(Trc20Error::CalldataLength(data.len()));
    }
    Ok(TransferCall {
        to: word_address("recipient", &data[4..36])?,
        amount: word_amount(&data[36..68])?,
    })
}

/// Reads a `Transfer` event; `Ok(None)` when the log is some other event.
pub fn parse_transfer_log(log: &LogEntry) -> Result<Option<TransferLog>, Trc20Error> {
    let Some(topic0) = log.topics.first() else {
        return Ok(None);
    };
    if hexstr::decode("log topic", topic0)? != TRANSFER_TOPIC {
        return Ok(None);
    }
    if log.topics.len() != 3 {
        return Err(Trc20Error::TopicCount(log.topics.len()));
    }
    let contract_bytes = hexstr::decode("log address", &log.address)?;
    let contract = match contract_bytes.len() {
        20 => {
            let mut evm = [0u8; 20];
            evm.copy_from_slice(&contract_bytes);
            TronAddress::from_evm_bytes(evm)
        }
        21 => TronAddress::from_slice(&contract_bytes)
            .map_err(|_| Trc20Error::LogAddressLength(21))?,
        n => return Err(Trc20Error::LogAddressLength(n)),
    };
    let from = word_address("from", &hexstr::decode("log topic", &log.topics[1])?)?;
    let to = word_address("to", &hexstr::decode("log topic", &log.topics[2])?)?;
    let data = hexstr::decode("log data", &log.data)?;
    if data.len() != 32 {
        return Err(Trc20Error::DataLength(data.len()));
    }
    Ok(Some(TransferLog {
        contract,
        from,
        to,
        amount: word_amount(&data)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::keccak256;
    use serde_json::Value;

    fn tx_info() -> Value {
        serde_json::from_str(include_str!("../../vectors/tron/tx_info.json")).unwrap()
    }

    #[test]
    fn the_topic_and_selectors_are_keccak_of_their_signatures() {
        assert_eq!(
            keccak256(b"Transfer(address,address,uint256)"),
            TRANSFER_TOPIC
        );
        assert_eq!(
            keccak256(b"transfer(address,uint256)")[..4],
            TRANSFER_SELECTOR
        );
        assert_eq!(keccak256(b"balanceOf(address)")[..4], BALANCE_OF_SELECTOR);
        let file = tx_info();
        assert_eq!(
            file["transfer_event_topic0"]["value"],
            hex::encode(TRANSFER_TOPIC)
        );
    }

    #[test]
    fn the_published_usdt_transfer_log_decodes_to_its_sender_recipient_and_amount() {
        let file = tx_info();
        let case = &file["success_usdt_transfer"];
        let logs: Vec<LogEntry> = serde_json::from_value(case["response"]["log"].clone()).unwrap();
        let decoded = parse_transfer_log(&logs[0]).unwrap().unwrap();
        let expected = &case["derived_decoded_transfer_log"];
        assert_eq!(decoded.contract.to_base58(), expected["contract"]);
        assert_eq!(decoded.from.to_base58(), expected["from"]);
        assert_eq!(decoded.to.to_base58(), expected["to"]);
        assert_eq!(
            Some(decoded.amount),
            expected["value_base_units"].as_u64().map(u128::from)
        );
        assert_eq!(
            decoded.contract.to_hex(),
            case["response"]["contract_address"]
        );
    }

    #[test]
    fn the_failed_transfer_has_no_transfer_log_and_other_events_are_skipped() {
        let file = tx_info();
        assert!(file["failed_usdt_transfer_out_of_energy"]["response"]
            .get("log")
            .is_none());
        let other = LogEntry {
            address: "a614f803b6fd780986a42c78ec9c7f77e6ded13c".into(),
            topics: vec![hex::encode(keccak256(b"Approval(address,address,uint256)"))],
            data: String::new(),
        };
        assert_eq!(parse_transfer_log(&other), Ok(None));
    }

    #[test]
    fn transfer_calldata_round_trips_and_accepts_a_0x41_in_the_address_word() {
        let to = TronAddress::parse("TXVj38D1XR3TPgSHTCZGC8wkLDAGqF1oqx").unwrap();
        let data = transfer_calldata(&to, 41_677_389);
        assert_eq!(data.len(), 68);
        assert_eq!(
            parse_transfer_calldata(&data),
            Ok(TransferCall {
                to,
                amount: 41_677_389
            })
        );
        let mut with_41 = data.clone();
        with_41[4 + 11] = 0x41;
        assert_eq!(parse_transfer_calldata(&with_41).unwrap().to, to);
        let mut bad = data.clone();
        bad[4 + 11] = 0x42;
        assert_eq!(
            parse_transfer_calldata(&bad),
            Err(Trc20Error::NotAnAddress("recipient"))
        );
        assert_eq!(
            parse_transfer_calldata(&data[..67]),
            Err(Trc20Error::CalldataLength(67))
        );
        assert!(parse_transfer_calldata(&balance_of_calldata(&to)).is_err());
    }

    #[test]
    fn balance_of_calldata_is_the_selector_and_the_address_without_0x41() {
        let owner = TronAddress::parse("41a614f803b6fd780986a42c78ec9c7f77e6ded13c").unwrap();
        assert_eq!(
            hex::encode(balance_of_calldata(&owner)),
            format!(
                "70a08231{}a614f803b6fd780986a42c78ec9c7f77e6ded13c",
                "0".repeat(24)
            )
        );
    }

    #[test]
    fn malformed_logs_are_errors_not_panics() {
        let topic = hex::encode(TRANSFER_TOPIC);
        let log = |topics: Vec<String>, data: &str| LogEntry {
            address: "a614f803b6fd780986a42c78ec9c7f77e6ded13c".into(),
            topics,
            data: data.into(),
        };
        assert_eq!(
            parse_transfer_log(&log(vec![topic.clone()], "")),
            Err(Trc20Error::TopicCount(1))
        );
        let word = "00".repeat(32);
        assert_eq!(
            parse_transfer_log(&log(vec![topic.clone(), word.clone(), word.clone()], "00")),
            Err(Trc20Error::DataLength(1))
        );
        let huge = "ff".repeat(32);
        assert_eq!(
            parse_transfer_log(&log(vec![topic.clone(), word.clone(), word.clone()], &huge)),
            Err(Trc20Error::AmountTooLarge)
        );
        assert!(parse_transfer_log(&log(vec![topic, "zz".into(), word], &huge)).is_err());
    }
}

//! `Transaction.Contract.ContractType`: the number on the wire and the name the node's JSON uses.
//! The table is `core/Tron.proto`'s enum; a number outside it still decodes (as its number).

const NAMES: &[(i32, &str)] = &[
    (0, "AccountCreateContract"),
    (1, "TransferContract"),
    (2, "TransferAssetContract"),
    (3, "VoteAssetContract"),
    (4, "VoteWitnessContract"),
    (5, "WitnessCreateContract"),
    (6, "AssetIssueContract"),
    (8, "WitnessUpdateContract"),
    (9, "ParticipateAssetIssueContract"),
    (10, "AccountUpdateContract"),
    (11, "FreezeBalanceContract"),
    (12, "UnfreezeBalanceContract"),
    (13, "WithdrawBalanceContract"),
    (14, "UnfreezeAssetContract"),
    (15, "UpdateAssetContract"),
    (16, "ProposalCreateContract"),
    (17, "ProposalApproveContract"),
    (18, "ProposalDeleteContract"),
    (19, "SetAccountIdContract"),
    (20, "CustomContract"),
    (30, "CreateSmartContract"),
    (31, "TriggerSmartContract"),
    (32, "GetContract"),
    (33, "UpdateSettingContract"),
    (41, "ExchangeCreateContract"),
    (42, "ExchangeInjectContract"),
    (43, "ExchangeWithdrawContract"),
    (44, "ExchangeTransactionContract"),
    (45, "UpdateEnergyLimitContract"),
    (46, "AccountPermissionUpdateContract"),
    (48, "ClearABIContract"),
    (49, "UpdateBrokerageContract"),
    (51, "ShieldedTransferContract"),
    (52, "MarketSellAssetContract"),
    (53, "MarketCancelOrderContract"),
    (54, "FreezeBalanceV2Contract"),
    (55, "UnfreezeBalanceV2Contract"),
    (56, "WithdrawExpireUnfreezeContract"),
    (57, "DelegateResourceContract"),
    (58, "UnDelegateResourceContract"),
    (59, "CancelAllUnfreezeV2Contract"),
];

pub const TRANSFER: i32 = 1;
pub const TRIGGER_SMART: i32 = 31;
pub const DELEGATE_RESOURCE: i32 = 57;
pub const UNDELEGATE_RESOURCE: i32 = 58;

/// The enum name of a contract type number, if the protocol defines one.
pub fn name(number: i32) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, name)| *name)
}

/// The number of a contract type name.
pub fn number(name: &str) -> Option<i32> {
    NAMES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(number, _)| *number)
}

/// `type.googleapis.com/protocol.<Name>`, the `Any.type_url` the node writes.
pub fn type_url(number: i32) -> Option<String> {
    name(number).map(|name| format!("type.googleapis.com/protocol.{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_map_both_ways_for_the_types_the_engine_uses() {
        for (n, text) in [
            (TRANSFER, "TransferContract"),
            (TRIGGER_SMART, "TriggerSmartContract"),
            (DELEGATE_RESOURCE, "DelegateResourceContract"),
            (UNDELEGATE_RESOURCE, "UnDelegateResourceContract"),
        ] {
            assert_eq!(name(n), Some(text));
            assert_eq!(number(text), Some(n));
        }
        assert_eq!(name(7), None);
        assert_eq!(
            type_url(57).as_deref(),
            Some("type.googleapis.com/protocol.DelegateResourceContract")
        );
    }
}

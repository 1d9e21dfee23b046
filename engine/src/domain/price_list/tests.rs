//! Given/when/then for the price list, and how it overrides the configured table.

use crate::domain::{FieldError, PriceListError};
use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::domain::money::MAX_AMOUNT;
use crate::domain::DomainAggregate;

type PriceListTest = TestFramework<PriceList>;

fn t() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap()
}

fn set(asset: Asset, tier: DurationTier, unit_price: u64) -> PriceListCommand {
    PriceListCommand::SetTierPrice {
        asset,
        tier,
        unit_price,
        actor: "admin:alice".into(),
        reason: "match the market".into(),
        at: t(),
    }
}

fn was_set(
    asset: Asset,
    tier: DurationTier,
    unit_price: u64,
    previous: Option<u64>,
) -> PriceListEvent {
    PriceListEvent::TierPriceSet {
        asset,
        tier,
        unit_price,
        previous,
        actor: "admin:alice".into(),
        reason: "match the market".into(),
        at: t(),
    }
}

#[test]
fn a_first_price_for_a_tier_records_that_none_was_set_before() {
    PriceListTest::with(())
        .given_no_previous_events()
        .when(set(Asset::Trx, DurationTier::OneDay, 95))
        .then_expect_events(vec![was_set(Asset::Trx, DurationTier::OneDay, 95, None)]);
}

#[test]
fn a_new_price_records_the_one_it_replaces() {
    PriceListTest::with(())
        .given(vec![was_set(Asset::Trx, DurationTier::OneDay, 95, None)])
        .when(set(Asset::Trx, DurationTier::OneDay, 90))
        .then_expect_events(vec![was_set(
            Asset::Trx,
            DurationTier::OneDay,
            90,
            Some(95),
        )]);
}

#[test]
fn a_zero_or_oversized_unit_price_is_refused() {
    for bad in [0, MAX_AMOUNT + 1] {
        let err = PriceList::default()
            .decide(set(Asset::Usdt, DurationTier::OneHour, bad), &())
            .unwrap_err();
        assert_eq!(err.code(), "invalid_price_table", "unit price {bad}");
    }
}

#[test]
fn a_price_change_without_a_reason_or_an_actor_is_refused() {
    let mut no_reason = set(Asset::Trx, DurationTier::OneDay, 95);
    let PriceListCommand::SetTierPrice { reason, .. } = &mut no_reason;
    *reason = "  ".into();
    assert_eq!(
        PriceList::default().decide(no_reason, &()).unwrap_err(),
        PriceListError::from(FieldError::TextRequired {
            field: "reason".into()
        })
    );
    let mut no_actor = set(Asset::Trx, DurationTier::OneDay, 95);
    let PriceListCommand::SetTierPrice { actor, .. } = &mut no_actor;
    *actor = String::new();
    assert_eq!(
        PriceList::default().decide(no_actor, &()).unwrap_err(),
        PriceListError::from(FieldError::TextRequired {
            field: "actor".into()
        })
    );
}

#[test]
fn the_list_overrides_the_configured_table_tier_by_tier_and_adds_tiers_it_lacked() {
    let base = PriceTable::sample();
    let list = crate::domain::replay::<PriceList>([
        was_set(Asset::Trx, DurationTier::OneDay, 80, None),
        was_set(Asset::Trx, DurationTier::OneDay, 85, Some(80)),
    ]);
    let table = list.over(&base);
    assert_eq!(table.unit_price(Asset::Trx, DurationTier::OneDay), Some(85));
    for tier in DurationTier::ALL {
        if tier != DurationTier::OneDay {
            assert_eq!(
                table.unit_price(Asset::Trx, tier),
                base.unit_price(Asset::Trx, tier)
            );
        }
        assert_eq!(
            table.unit_price(Asset::Usdt, tier),
            base.unit_price(Asset::Usdt, tier)
        );
    }
    // A table with no prices at all starts selling what the list names, and only that.
    let empty = PriceTable::default();
    let table = list.over(&empty);
    assert_eq!(table.unit_price(Asset::Trx, DurationTier::OneDay), Some(85));
    assert_eq!(table.unit_price(Asset::Trx, DurationTier::OneHour), None);
    assert_eq!(table.min_energy(), empty.min_energy());
    let quote = table
        .quote(Asset::Trx, DurationTier::OneDay, 100_000)
        .unwrap();
    assert_eq!(quote.price.units(), 8_500_000);
}

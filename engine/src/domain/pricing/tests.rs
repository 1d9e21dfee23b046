//! Pricing: worked examples computed by hand, the refusals, and the rounding property.

use proptest::prelude::*;

use super::*;
use crate::domain::field::FieldError;
use chrono::TimeDelta;

fn units(amount: Amount) -> u64 {
    amount.units()
}

fn table() -> PriceTable {
    PriceTable::new(32_000, 5_000_000)
        .unwrap()
        .with_price(Asset::Trx, DurationTier::OneHour, 1_000)
        .unwrap()
        .with_price(Asset::Trx, DurationTier::ThreeDays, 75)
        .unwrap()
        .with_price(Asset::Usdt, DurationTier::OneDay, 30)
        .unwrap()
}

#[test]
fn one_hour_of_65_000_energy_at_1_000_sun_per_day_costs_2_708_334_sun() {
    // 65,000 × 1,000 × 1 / 24 = 65,000,000 / 24 = 2,708,333.33…, rounded up.
    assert_eq!(
        units(price_for(65_000, 1_000, DurationTier::OneHour).unwrap()),
        2_708_334
    );
}

#[test]
fn worked_examples_match_the_hand_computed_prices() {
    use DurationTier::*;
    // 65,000 × 100 × 24 / 24 = 6,500,000 exactly.
    assert_eq!(units(price_for(65_000, 100, OneDay).unwrap()), 6_500_000);
    // 32,000 × 75 × 72 / 24 = 32,000 × 75 × 3 = 7,200,000.
    assert_eq!(units(price_for(32_000, 75, ThreeDays).unwrap()), 7_200_000);
    // 100,001 × 7 × 1 = 700,007; 24 × 29,166 = 699,984 leaves 23, so 29,167.
    assert_eq!(units(price_for(100_001, 7, OneHour).unwrap()), 29_167);
    // 24,000 × 1 × 1 / 24 = 1,000 exactly: no rounding when nothing is left over.
    assert_eq!(units(price_for(24_000, 1, OneHour).unwrap()), 1_000);
    // 1 × 1 × 1 / 24 rounds up to 1: a quote is never free.
    assert_eq!(units(price_for(1, 1, OneHour).unwrap()), 1);
    // 131,000 × 55 × 720 / 24 = 131,000 × 55 × 30 = 216,150,000.
    assert_eq!(
        units(price_for(131_000, 55, ThirtyDays).unwrap()),
        216_150_000
    );
    // 65,000 × 60 × 336 / 24 = 65,000 × 60 × 14 = 54,600,000.
    assert_eq!(
        units(price_for(65_000, 60, FourteenDays).unwrap()),
        54_600_000
    );
    // 65,000 × 65 × 168 / 24 = 65,000 × 65 × 7 = 29,575,000.
    assert_eq!(units(price_for(65_000, 65, SevenDays).unwrap()), 29_575_000);
}

#[test]
fn a_price_beyond_the_largest_amount_is_an_overflow_not_a_wrap() {
    // 10^12 × 10^7 × 24 / 24 = 10^19 > i64::MAX ≈ 9.22 × 10^18.
    let err = price_for(1_000_000_000_000, 10_000_000, DurationTier::OneDay).unwrap_err();
    assert_eq!(err.code(), "price_overflow");
    // u64::MAX² × 720 does not even fit u128.
    let err = price_for(u64::MAX, u64::MAX, DurationTier::ThirtyDays).unwrap_err();
    assert_eq!(
        err,
        QuoteError::PriceOverflow {
            energy: u64::MAX,
            unit_price: u64::MAX,
            duration: DurationTier::ThirtyDays
        }
    );
}

#[test]
fn a_quote_records_the_unit_price_it_was_made_at() {
    let quote = table()
        .quote(Asset::Trx, DurationTier::OneHour, 65_000)
        .unwrap();
    assert_eq!(
        quote,
        Quote {
            energy: 65_000,
            duration: DurationTier::OneHour,
            asset: Asset::Trx,
            unit_price: 1_000,
            price: Amount::new(2_708_334).unwrap(),
        }
    );
}

#[test]
fn zero_too_little_and_too_much_energy_are_refused() {
    let t = table();
    let q = |e| t.quote(Asset::Trx, DurationTier::OneHour, e).unwrap_err();
    assert_eq!(
        q(0),
        QuoteError::Field(FieldError::ZeroQuantity {
            field: "energy".into()
        })
    );
    assert_eq!(
        q(31_999),
        QuoteError::EnergyBelowMinimum {
            energy: 31_999,
            min: 32_000
        }
    );
    assert_eq!(
        q(5_000_001),
        QuoteError::EnergyAboveMaximum {
            energy: 5_000_001,
            max: 5_000_000
        }
    );
    assert!(t.quote(Asset::Trx, DurationTier::OneHour, 32_000).is_ok());
    assert!(t
        .quote(Asset::Trx, DurationTier::OneHour, 5_000_000)
        .is_ok());
}

#[test]
fn a_tier_without_a_price_is_not_offered_and_an_asset_without_prices_is_not_accepted() {
    let t = table();
    assert_eq!(
        t.quote(Asset::Trx, DurationTier::SevenDays, 65_000)
            .unwrap_err(),
        QuoteError::Duration(DurationError::DurationNotOffered {
            duration: "7d".into()
        })
    );
    let trx_only = PriceTable::new(1, 10)
        .unwrap()
        .with_price(Asset::Trx, DurationTier::OneDay, 1)
        .unwrap();
    assert_eq!(
        trx_only
            .quote(Asset::Usdt, DurationTier::OneDay, 5)
            .unwrap_err(),
        QuoteError::AssetNotAccepted { asset: Asset::Usdt }
    );
}

#[test]
fn durations_parse_from_tier_names_or_hours_and_nothing_else() {
    assert_eq!("1h".parse::<DurationTier>().unwrap(), DurationTier::OneHour);
    assert_eq!(
        "14d".parse::<DurationTier>().unwrap(),
        DurationTier::FourteenDays
    );
    assert_eq!(
        "72".parse::<DurationTier>().unwrap(),
        DurationTier::ThreeDays
    );
    assert_eq!(
        DurationTier::from_hours(720).unwrap(),
        DurationTier::ThirtyDays
    );
    for bad in [
        "2h",
        "2d",
        "",
        "1H",
        "0",
        "-24",
        "1.5",
        "99999999999999999999999",
    ] {
        let err = bad.parse::<DurationTier>().unwrap_err();
        assert_eq!(err.code(), "duration_not_offered", "{bad:?}");
    }
    assert_eq!(
        DurationTier::from_hours(48).unwrap_err(),
        DurationError::DurationNotOffered {
            duration: "48h".into()
        }
    );
}

#[test]
fn durations_serialise_as_names_and_deserialise_from_names_or_hours() {
    for tier in DurationTier::ALL {
        let json = serde_json::to_string(&tier).unwrap();
        assert_eq!(json, format!("\"{tier}\""));
        assert_eq!(serde_json::from_str::<DurationTier>(&json).unwrap(), tier);
        let hours = tier.hours().to_string();
        assert_eq!(serde_json::from_str::<DurationTier>(&hours).unwrap(), tier);
    }
    for bad in ["\"2h\"", "2", "-1", "1.5", "null"] {
        assert!(serde_json::from_str::<DurationTier>(bad).is_err(), "{bad}");
    }
    assert_eq!(DurationTier::SevenDays.period(), TimeDelta::days(7));
}

#[test]
fn a_price_table_reads_from_configuration_and_refuses_nonsense() {
    let json = r#"{"min_energy":32000,"max_energy":5000000,
                   "prices":{"TRX":{"1h":1000,"72":75},"USDT":{"1d":30}}}"#;
    let parsed: PriceTable = serde_json::from_str(json).unwrap();
    assert_eq!(parsed, table());
    let round = serde_json::to_string(&parsed).unwrap();
    assert_eq!(serde_json::from_str::<PriceTable>(&round).unwrap(), parsed);

    for bad in [
        r#"{"min_energy":0,"max_energy":5}"#,
        r#"{"min_energy":6,"max_energy":5}"#,
        r#"{"min_energy":1,"max_energy":5,"prices":{"TRX":{"1h":0}}}"#,
        r#"{"min_energy":1,"max_energy":5,"prices":{"BTC":{"1h":1}}}"#,
        r#"{"min_energy":1,"max_energy":5,"prices":{"TRX":{"2h":1}}}"#,
    ] {
        assert!(serde_json::from_str::<PriceTable>(bad).is_err(), "{bad}");
    }
    assert_eq!(
        PriceTable::new(1, 5)
            .unwrap()
            .with_price(Asset::Trx, DurationTier::OneHour, 0)
            .unwrap_err()
            .code(),
        "invalid_price_table"
    );
}

#[test]
fn the_default_table_sells_nothing_and_the_sample_sells_every_tier() {
    let default = PriceTable::default();
    assert_eq!(
        default
            .quote(Asset::Trx, DurationTier::OneDay, 65_000)
            .unwrap_err(),
        QuoteError::AssetNotAccepted { asset: Asset::Trx }
    );
    let sample = PriceTable::sample();
    for asset in Asset::ALL {
        for tier in DurationTier::ALL {
            assert!(sample.quote(asset, tier, 65_000).is_ok(), "{asset} {tier}");
        }
    }
    // Longer rentals are cheaper per day.
    let per_day: Vec<u64> = DurationTier::ALL
        .iter()
        .map(|t| sample.unit_price(Asset::Trx, *t).unwrap())
        .collect();
    assert!(per_day.windows(2).all(|w| w[0] > w[1]), "{per_day:?}");
}

fn tier() -> impl Strategy<Value = DurationTier> {
    prop::sample::select(DurationTier::ALL.to_vec())
}

proptest! {
    #[test]
    fn a_price_is_never_under_the_exact_value_nor_a_whole_unit_over_it(
        energy in 1u64..=1_000_000_000_000,
        unit_price in 1u64..=1_000_000,
        tier in tier(),
    ) {
        let exact_times_24 = u128::from(energy) * u128::from(unit_price) * u128::from(tier.hours());
        match price_for(energy, unit_price, tier) {
            Ok(price) => {
                let p = u128::from(price.units()) * 24;
                prop_assert!(p >= exact_times_24, "under the exact price");
                prop_assert!(p < exact_times_24 + 24, "a whole unit or more over it");
            }
            Err(e) => {
                prop_assert_eq!(e.code(), "price_overflow");
                prop_assert!(exact_times_24.div_ceil(24) > u128::from(MAX_AMOUNT));
            }
        }
    }

    #[test]
    fn more_energy_never_costs_less(
        energy in 1u64..=1_000_000_000,
        extra in 0u64..=1_000_000,
        unit_price in 1u64..=100_000,
        tier in tier(),
    ) {
        let small = price_for(energy, unit_price, tier).unwrap();
        let large = price_for(energy + extra, unit_price, tier).unwrap();
        prop_assert!(large >= small);
    }
}

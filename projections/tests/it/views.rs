//! The read models' content: balances equal the `Account` aggregates, an order's row carries
//! every step, and the daily figures add up to the balances.

use std::time::Duration;

use engine::domain::{Account, Asset};
use engine::store::event_store::load;
use engine::store::upcast::upcasters;
use engine::testing::TestDb;
use projections::testing::{all_readers, flow, rng, setup, wait_caught_up, Buses, Ctx};
use projections::{Runtime, RuntimeConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_balance_view_agrees_with_the_account_aggregates_after_a_mixed_workload() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("mixed", 16, 3);
    let buses = Buses::new(&db.pool, &ctx);
    setup(&mut buses.clone(), &ctx).await.unwrap();
    let handle = Runtime::all(db.pool.clone(), RuntimeConfig::default()).spawn();
    // Four clients run flows at once through the command buses, on shared accounts.
    let mut clients = Vec::new();
    for c in 0..4u64 {
        let (mut buses, ctx) = (buses.clone(), ctx.clone());
        clients.push(tokio::spawn(async move {
            let mut rng = rng(100 + c);
            for n in 0..40 {
                flow(&mut buses, &ctx, &mut rng, c * 1_000 + n)
                    .await
                    .unwrap();
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    wait_caught_up(&db.pool, &all_readers(), Duration::from_secs(60))
        .await
        .unwrap();
    handle.shutdown().await.unwrap();

    let mut checked = 0;
    for account in &ctx.accounts {
        let loaded = load::<Account>(&db.pool, account.as_str(), &upcasters())
            .await
            .unwrap();
        for asset in Asset::ALL {
            let b = loaded.aggregate.balance(asset);
            let row: (i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
                "SELECT available, reserved, deposited, spent, refunded, adjusted_in, adjusted_out \
                 FROM account_balances WHERE account_id = $1 AND asset = $2",
            )
            .bind(account.as_str())
            .bind(asset.code())
            .fetch_one(&db.pool)
            .await
            .unwrap();
            let expected = (
                b.available as i64,
                b.reserved as i64,
                b.deposited as i64,
                b.spent as i64,
                b.refunded as i64,
                b.adjusted_in as i64,
                b.adjusted_out as i64,
            );
            assert_eq!(row, expected, "{account} {asset}");
            checked += 1;
        }
    }
    assert_eq!(checked, ctx.accounts.len() * 2);
    let moved: i64 =
        sqlx::query_scalar("SELECT count(*) FROM account_balances WHERE spent > 0 OR refunded > 0")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(moved > 0, "the workload captured and released funds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_view_carries_what_the_finance_team_asks_for_and_the_days_add_up_to_the_balances() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("views", 8, 2);
    let mut buses = Buses::new(&db.pool, &ctx);
    setup(&mut buses, &ctx).await.unwrap();
    let mut r = rng(7);
    for n in 0..80 {
        flow(&mut buses, &ctx, &mut r, n).await.unwrap();
    }
    let handle = Runtime::all(db.pool.clone(), RuntimeConfig::default()).spawn();
    wait_caught_up(&db.pool, &all_readers(), Duration::from_secs(60))
        .await
        .unwrap();
    handle.shutdown().await.unwrap();

    // A completed order: every step's time, both txids, the wallet, the price and the capture.
    let completed: Vec<(String, bool, bool, bool)> = sqlx::query_as(
        "SELECT order_id, \
                paid_at IS NOT NULL AND delegation_requested_at IS NOT NULL \
                  AND delegation_signed_at IS NOT NULL AND delegation_confirmed_at IS NOT NULL \
                  AND active_from IS NOT NULL AND reclaim_requested_at IS NOT NULL \
                  AND reclaimed_at IS NOT NULL AND completed_at IS NOT NULL, \
                length(delegation_txid) = 64 AND length(reclaim_txid) = 64 AND wallet IS NOT NULL, \
                amount_captured = price AND amount_paid = price \
         FROM orders WHERE status = 'Completed'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(!completed.is_empty());
    for (id, steps, txids, money) in completed {
        assert!(steps && txids && money, "{id}");
    }
    let statuses: Vec<String> = sqlx::query_scalar("SELECT DISTINCT status FROM orders ORDER BY 1")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert!(statuses.contains(&"Completed".to_string()), "{statuses:?}");
    assert!(
        statuses.contains(&"Refunded".to_string()) || statuses.contains(&"Cancelled".to_string()),
        "{statuses:?}"
    );

    // Deposits: credited ones have a txid, block, account and amount.
    let (credited, deposits_sum): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), sum(amount)::bigint FROM deposits \
         WHERE status = 'Credited' AND length(txid) = 64 AND block_number > 0",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(credited > 0);

    // Days add up to the balances and to the credited deposits.
    let sums: Vec<(String, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT b.asset, b.deposited, b.spent, b.refunded, \
                coalesce(d.deposits, 0), coalesce(d.revenue, 0) \
         FROM (SELECT asset, sum(deposited)::bigint deposited, sum(spent)::bigint spent, \
                      sum(refunded)::bigint refunded FROM account_balances GROUP BY asset) b \
         LEFT JOIN (SELECT asset, sum(deposits_amount)::bigint deposits, \
                           sum(revenue_captured)::bigint revenue, sum(refunds_amount)::bigint refunds \
                    FROM daily_finance GROUP BY asset) d USING (asset)",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut all_deposits = 0;
    for (asset, deposited, spent, _refunded, days_deposits, days_revenue) in sums {
        assert_eq!(deposited, days_deposits, "{asset}");
        assert_eq!(spent, days_revenue, "{asset}");
        all_deposits += deposited;
    }
    assert_eq!(Some(all_deposits), deposits_sum);
    let (success_rate, energy_days): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT max(delegation_success_rate)::text, sum(energy_days_sold)::text FROM daily_finance",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(success_rate.is_some() && energy_days.is_some());

    // Wallets: registered, observed, and nothing left delegated or reserved after the reclaims.
    let wallets: Vec<(bool, i64, i32, i64, Vec<String>)> = sqlx::query_as(
        "SELECT registered, staked_sun, active_delegations, delegations_total, alerts \
         FROM wallet_utilisation",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(wallets.len(), ctx.wallets.len());
    for (registered, staked, active, total, alerts) in wallets {
        assert!(registered && staked > 0);
        assert_eq!(active, 0);
        assert!(total >= 0);
        assert!(alerts.is_empty(), "{alerts:?}");
    }
}

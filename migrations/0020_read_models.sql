-- Read models for the finance team (docs/projections.md): typed columns only, money as bigint in
-- the asset's smallest unit (sun, or 10^-6 USDT), times as timestamptz, ids as text. Every table
-- is written by exactly one projection, in the same transaction as that projection's checkpoint
-- (reader_checkpoints, reader 'projection:<name>'). `updated_at` is the recorded_at of the last
-- event applied to the row, so a rebuild reproduces every row exactly.

-- Projection `account_balances`: one row per account and asset (both assets from AccountOpened).
-- available and reserved are copied from the events; the totals are sums of their amounts.
CREATE TABLE account_balances
(
    account_id      text        NOT NULL,
    asset           text        NOT NULL CHECK (asset IN ('TRX', 'USDT')),
    available       bigint      NOT NULL CHECK (available >= 0),
    reserved        bigint      NOT NULL CHECK (reserved >= 0),
    deposited       bigint      NOT NULL,
    spent           bigint      NOT NULL,
    refunded        bigint      NOT NULL,
    adjusted_in     bigint      NOT NULL,
    adjusted_out    bigint      NOT NULL,
    opened_at       timestamptz,
    account_version bigint      NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (account_id, asset)
);

-- Projection `orders`: every order, its state, the time of each step, the chain transactions.
CREATE TABLE orders
(
    order_id                  text PRIMARY KEY,
    account_id                text        NOT NULL,
    status                    text        NOT NULL,
    receiver                  text        NOT NULL,
    energy                    bigint      NOT NULL,
    duration                  text        NOT NULL,
    duration_hours            integer     NOT NULL,
    asset                     text        NOT NULL,
    unit_price                bigint      NOT NULL,
    price                     bigint      NOT NULL,
    amount_paid               bigint,
    amount_captured           bigint,
    amount_refunded           bigint,
    placed_at                 timestamptz NOT NULL,
    pay_by                    timestamptz NOT NULL,
    paid_at                   timestamptz,
    rejected_at               timestamptz,
    rejection_reason          text,
    cancelled_at              timestamptz,
    cancelled_by              text,
    delegation_attempts       integer     NOT NULL,
    wallet                    text,
    delegate_sun              bigint,
    delegation_requested_at   timestamptz,
    delegation_signed_at      timestamptz,
    delegation_txid           text,
    delegation_expires_at     timestamptz,
    delegation_confirmed_at   timestamptz,
    delegation_block          bigint,
    delegation_failures       integer     NOT NULL,
    delegation_failed_at      timestamptz,
    delegation_failure_reason text,
    active_from               timestamptz,
    active_until              timestamptz,
    refunded_at               timestamptz,
    refund_reason             text,
    reclaim_attempts          integer     NOT NULL,
    reclaim_requested_at      timestamptz,
    reclaim_signed_at         timestamptz,
    reclaim_txid              text,
    reclaimed_at              timestamptz,
    reclaim_block             bigint,
    completed_at              timestamptz,
    closed_at                 timestamptz,
    version                   bigint      NOT NULL,
    updated_at                timestamptz NOT NULL
);
CREATE INDEX orders_account_placed_idx ON orders (account_id, placed_at);
CREATE INDEX orders_status_idx ON orders (status);
CREATE INDEX orders_placed_at_idx ON orders (placed_at);

-- Projection `deposits`: every deposit seen on chain and what became of it.
CREATE TABLE deposits
(
    deposit_id       text PRIMARY KEY,
    account_id       text        NOT NULL,
    asset            text        NOT NULL,
    amount           bigint      NOT NULL,
    txid             text        NOT NULL,
    log_index        integer,
    from_address     text        NOT NULL,
    to_address       text        NOT NULL,
    block_number     bigint      NOT NULL,
    status           text        NOT NULL CHECK (status IN ('Detected', 'Confirmed', 'Credited', 'Rejected')),
    confirmed_block  bigint,
    rejection_reason text,
    detected_at      timestamptz NOT NULL,
    confirmed_at     timestamptz,
    credited_at      timestamptz,
    rejected_at      timestamptz,
    version          bigint      NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX deposits_account_detected_idx ON deposits (account_id, detected_at);
CREATE INDEX deposits_txid_idx ON deposits (txid);
CREATE INDEX deposits_status_idx ON deposits (status);

-- Projection `wallet_utilisation`: each pool wallet's stake, what is reserved for and delegated
-- to orders, free capacity, and alerts (docs/projections.md lists them). Keyed by the base58
-- address; order events (delegation confirmed, reclaimed) count here too.
CREATE TABLE wallet_utilisation
(
    wallet             text PRIMARY KEY,
    address_hex        text,
    registered         boolean     NOT NULL,
    key_ref            text,
    enabled            boolean     NOT NULL,
    disabled_reason    text,
    staked_sun         bigint      NOT NULL,
    delegatable_sun    bigint      NOT NULL,
    energy_limit       bigint      NOT NULL,
    reserved_sun       bigint      NOT NULL,
    free_sun           bigint      NOT NULL,
    reserved_orders    integer     NOT NULL,
    delegated_sun      bigint      NOT NULL,
    active_delegations integer     NOT NULL,
    delegations_total  bigint      NOT NULL,
    registered_at      timestamptz,
    observed_at        timestamptz,
    alerts             text[]      NOT NULL,
    updated_at         timestamptz NOT NULL
);

-- Projection `daily_finance`: per UTC day (of the events' recorded_at) and asset.
CREATE TABLE daily_finance
(
    day                          date    NOT NULL,
    asset                        text    NOT NULL,
    deposits_count               bigint  NOT NULL,
    deposits_amount              bigint  NOT NULL,
    captures_count               bigint  NOT NULL,
    revenue_captured             bigint  NOT NULL,
    refunds_count                bigint  NOT NULL,
    refunds_amount               bigint  NOT NULL,
    adjustments_in               bigint  NOT NULL,
    adjustments_out              bigint  NOT NULL,
    orders_placed                bigint  NOT NULL,
    orders_completed             bigint  NOT NULL,
    orders_cancelled             bigint  NOT NULL,
    orders_rejected              bigint  NOT NULL,
    orders_refunded              bigint  NOT NULL,
    energy_hours_sold            bigint  NOT NULL,
    energy_days_sold             numeric GENERATED ALWAYS AS (round(energy_hours_sold / 24.0, 4)) STORED,
    delegations_confirmed        bigint  NOT NULL,
    delegations_failed           bigint  NOT NULL,
    delegation_success_rate      numeric GENERATED ALWAYS AS (
        round(delegations_confirmed::numeric / NULLIF(delegations_confirmed + delegations_failed, 0), 4)) STORED,
    order_to_delegation_ms_total bigint  NOT NULL,
    order_to_delegation_count    bigint  NOT NULL,
    avg_order_to_delegation_secs numeric GENERATED ALWAYS AS (
        round(order_to_delegation_ms_total / 1000.0 / NULLIF(order_to_delegation_count, 0), 3)) STORED,
    PRIMARY KEY (day, asset)
);

-- The daily_finance projection's own memory of each order (asset, placement time), since later
-- order events do not all repeat them.
CREATE TABLE daily_finance_orders
(
    order_id       text PRIMARY KEY,
    asset          text        NOT NULL,
    placed_at      timestamptz NOT NULL,
    energy         bigint      NOT NULL,
    duration_hours integer     NOT NULL
);

-- Orders with work for a pool wallet's chain worker: a delegation or a reclaim in flight.
-- Opened and closed by the order flow in its checkpoint's transaction; the worker that owns
-- the wallet drives each task from the order's own state (write-ahead protocol).
CREATE TABLE chain_tasks
(
    order_id  text PRIMARY KEY,
    wallet    text        NOT NULL,
    phase     text        NOT NULL CHECK (phase IN ('delegate', 'reclaim')),
    opened_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chain_tasks_wallet_idx ON chain_tasks (wallet);

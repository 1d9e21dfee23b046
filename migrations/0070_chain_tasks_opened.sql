-- A wallet's chain worker lists the tasks opened since the latest it saw (new work) on every
-- hand-off; this index keeps that listing proportional to the new rows, not to the wallet's
-- active orders.
CREATE INDEX chain_tasks_wallet_opened_idx ON chain_tasks (wallet, opened_at);

-- One entry per aggregate (its first event), so "every aggregate of a type" (e.g. the pool
-- wallets) costs as many rows as there are aggregates, however long their histories.
CREATE INDEX events_aggregates_idx ON events (aggregate_type, aggregate_id) WHERE sequence = 1;

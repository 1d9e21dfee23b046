-- Time-based steps of the process managers (an unpaid order's timeout, an active order's
-- reclaim), written in the same transaction as the writer's checkpoint and deleted once the
-- step's command has been decided.
CREATE TABLE scheduled_steps
(
    step           text        NOT NULL,
    aggregate_id   text        NOT NULL,
    due_at         timestamptz NOT NULL,
    correlation_id uuid        NOT NULL,
    PRIMARY KEY (step, aggregate_id)
);
CREATE INDEX scheduled_steps_due_idx ON scheduled_steps (due_at);

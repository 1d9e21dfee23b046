-- The event store: the postgres-es 0.5 `events` table, plus the columns that give the global log
-- a never-skipping order (docs/event-store.md): an identity position, the writer's 64-bit
-- transaction id, and the database's commit-time clock.
CREATE TABLE events
(
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 0) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         json                         NOT NULL,
    metadata        json                         NOT NULL,
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz                  NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE UNIQUE INDEX events_global_position_uidx ON events (global_position);
CREATE INDEX events_tx_pos_idx ON events (transaction_id, global_position);
CREATE INDEX events_recorded_at_idx ON events (recorded_at);

-- Every command that reached an aggregate, keyed by its id, written in the same statement as
-- the events it produced (or alone, for a rejection): a repeated command id returns this
-- outcome instead of running again.
CREATE TABLE command_log
(
    command_id     uuid PRIMARY KEY,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    command_type   text        NOT NULL,
    outcome        jsonb       NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);

-- Our own snapshots (cqrs-es 0.5 snapshot stores apply events twice): one row per aggregate,
-- replaced only by a newer version, written in the same statement as the events it covers.
CREATE TABLE aggregate_snapshots
(
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    version        bigint      NOT NULL CHECK (version > 0),
    state_schema   text        NOT NULL,
    payload        jsonb       NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- Where each reader of the global log (projector, process manager, adapter worker) stands:
-- the last (transaction_id, global_position) pair it has taken effect for.
CREATE TABLE reader_checkpoints
(
    reader     text PRIMARY KEY,
    last_tx    xid8        NOT NULL,
    last_pos   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Chain verifications asked for through the API (`POST /v1/audit/verifications`): who asked,
-- when it ran, and what it found. A row is inserted when one starts and completed when it ends;
-- a process that dies mid-run leaves it unfinished (`finished_at` NULL), shown as such.
CREATE TABLE audit_verifications
(
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    requested_by text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    -- NULL while running or when it could not finish (see error).
    ok           boolean,
    events       bigint,
    -- Each finding: {kind, audit_seq, global_position, event, detail}.
    problems     jsonb       NOT NULL DEFAULT '[]'::jsonb,
    error        text
);

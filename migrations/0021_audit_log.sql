-- The audit chain (docs/audit.md): one row per event of the global log, numbered 1, 2, 3, … in
-- log order by a single sequencer, with hash = sha256(prev_hash || canonical encoding of the
-- event). The first row's prev_hash is 32 zero bytes.
CREATE TABLE audit_log
(
    audit_seq       bigint PRIMARY KEY CHECK (audit_seq > 0),
    global_position bigint      NOT NULL UNIQUE REFERENCES events (global_position),
    prev_hash       bytea       NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash            bytea       NOT NULL CHECK (octet_length(hash) = 32),
    sequenced_at    timestamptz NOT NULL DEFAULT now()
);

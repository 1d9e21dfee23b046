-- Signed heads of the audit chain (docs/audit.md, docs/adr/0009-audit-anchor.md): the audit
-- key's signature over "audit numbers from_seq..to_seq are count links that follow prev_hash and
-- end with last_hash, as of signed_at". The sequencer adds one every so many events or minutes,
-- and GET /v1/audit/head one for the chain as it is when asked. `audit verify` checks the chain
-- against every row, so a rewrite behind a head (an event changed and every hash after it
-- recomputed) is caught without the audit key, which the database never holds.
CREATE TABLE audit_heads
(
    to_seq      bigint PRIMARY KEY CHECK (to_seq >= from_seq - 1),
    from_seq    bigint      NOT NULL CHECK (from_seq >= 1),
    count       bigint      NOT NULL CHECK (count = to_seq - from_seq + 1),
    prev_hash   bytea       NOT NULL CHECK (octet_length(prev_hash) = 32),
    last_hash   bytea       NOT NULL CHECK (octet_length(last_hash) = 32),
    -- Exactly as signed (microseconds).
    signed_at   timestamptz NOT NULL,
    public_key  bytea       NOT NULL CHECK (octet_length(public_key) = 32),
    signature   bytea       NOT NULL CHECK (octet_length(signature) = 64),
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER audit_heads_append_only
    BEFORE UPDATE OR DELETE ON audit_heads
    FOR EACH ROW EXECUTE FUNCTION refuse_change_to_append_only_table();
CREATE TRIGGER audit_heads_no_truncate
    BEFORE TRUNCATE ON audit_heads
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_to_append_only_table();

-- The audit key's private half is sealed in the key vault like the other secrets, under the
-- label 'audit-key' (docs/key-vault.md).
ALTER TABLE vault_keys DROP CONSTRAINT vault_keys_purpose_check;
ALTER TABLE vault_keys
    ADD CONSTRAINT vault_keys_purpose_check
        CHECK (purpose IN ('wallet', 'deposit-seed', 'audit-key'));
ALTER TABLE vault_keys
    ADD CONSTRAINT vault_keys_audit_key_ref_check
        CHECK (purpose <> 'audit-key' OR key_ref = 'audit-key');

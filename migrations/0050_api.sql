-- The HTTP API (docs/api.md): issued bearer tokens, so that a token can be listed and revoked
-- (a token whose jti is not here, or is revoked, is refused), and idempotency keys of commands.

CREATE TABLE api_tokens
(
    jti        text PRIMARY KEY,
    subject    text        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('bot', 'finance', 'auditor', 'admin')),
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX api_tokens_subject_idx ON api_tokens (subject);

-- One row per (subject, Idempotency-Key): the hash of the first request's body and, once it
-- has been answered, the answer, which every retry with the same key gets again.
CREATE TABLE idempotency_keys
(
    subject         text        NOT NULL,
    key             text        NOT NULL,
    request_hash    text        NOT NULL,
    response_status integer,
    response_body   jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, key)
);

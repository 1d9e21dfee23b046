-- Answers to `Idempotency-Key` requests now live in the command log: the key names the
-- command and the request's hash is its fingerprint (0080). The table of stored answers is
-- no longer written or read.
DROP TABLE IF EXISTS idempotency_keys;

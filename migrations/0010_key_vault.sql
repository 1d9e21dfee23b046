-- The key vault (docs/key-vault.md): pool-wallet private keys and the deposit-address seed,
-- each sealed with XChaCha20-Poly1305 under a master key the database never sees. The row's
-- key_ref is also the associated data of its ciphertext, so a ciphertext copied to another row
-- does not open.
CREATE TABLE vault_keys
(
    key_ref                text PRIMARY KEY,        -- 'wallet:<41hex>' or 'deposit-seed'
    purpose                text        NOT NULL CHECK (purpose IN ('wallet', 'deposit-seed')),
    address                text UNIQUE,             -- 41-hex address of a wallet key
    ciphertext             bytea       NOT NULL,    -- [version][fingerprint][nonce][ct+tag]
    master_key_fingerprint text        NOT NULL,    -- hex of ciphertext bytes 1..9, for listing
    created_at             timestamptz NOT NULL DEFAULT now(),
    rotated_at             timestamptz,
    CHECK ((purpose = 'wallet') = (address IS NOT NULL)),
    CHECK (purpose <> 'deposit-seed' OR key_ref = 'deposit-seed')
);

-- Deposit addresses: account → BIP32 index (m/44'/195'/0'/0/index) → address, assigned once.
-- Indices come from a sequence (a lost race leaves a gap, which is harmless); the primary key on
-- account_id makes two concurrent requests for one account end with one row.
CREATE SEQUENCE deposit_address_index_seq AS integer MINVALUE 0 START WITH 0 NO CYCLE;

CREATE TABLE deposit_addresses
(
    account_id       text PRIMARY KEY,
    derivation_index integer     NOT NULL UNIQUE CHECK (derivation_index >= 0),
    address          text        NOT NULL UNIQUE,  -- 41-hex
    created_at       timestamptz NOT NULL DEFAULT now()
);

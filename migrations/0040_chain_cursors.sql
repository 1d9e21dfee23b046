-- The deposit watcher's place on the chain (docs/deposits.md). Two cursors: 'deposits:head'
-- (the next block to read on the head, where deposits are detected; with the id of the block
-- before it, so a reorganisation under the cursor is noticed) and 'deposits:solid' (the next
-- block to read on the solidified view, where deposits are confirmed). A cursor moves only after
-- every deposit of its block has been decided, so a crash re-reads a block (which credits
-- nothing twice: the commands carry ids derived from the deposit).
CREATE TABLE chain_cursors
(
    name          text PRIMARY KEY,
    next_block    bigint      NOT NULL CHECK (next_block >= 0),
    last_block_id text,                    -- hex id of block next_block - 1, when known
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Deposits detected on the head and not yet confirmed or rejected. When the solidified view has
-- passed a deposit's block without it, the watcher looks for the transaction again: in a later
-- block it waits for that one; nowhere, and expired at the solid block's time (so no block can
-- take it any more), the deposit is rejected as vanished.
CREATE TABLE pending_deposits
(
    deposit_id    text PRIMARY KEY,        -- '<txid>' or '<txid>:<log_index>'
    txid          text        NOT NULL,
    block_number  bigint      NOT NULL,    -- the block it was last seen in
    expiration_ms bigint      NOT NULL,    -- the transaction's expiration (ms since the epoch)
    detected_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_deposits_block_idx ON pending_deposits (block_number);

-- Idempotency keys: the first answer to a POST that starts work, kept for 24 hours so a client
-- that retries with the same `Idempotency-Key` gets that answer again instead of a second job.
-- The row is inserted in the same transaction as the work, before it: a concurrent duplicate
-- waits on the primary key, then finds the committed row and replays it.
CREATE TABLE idempotency_keys (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of method, path and body bytes: the same key with another request is refused.
    fingerprint bytea NOT NULL,
    -- The answer, written before the transaction commits (NULL only inside it).
    status      smallint,
    -- `json`, not `jsonb`: the replay is byte for byte the first answer.
    body        json,
    location    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- Pruning by age.
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

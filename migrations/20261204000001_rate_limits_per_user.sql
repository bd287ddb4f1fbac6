-- Request-rate limits per user instead of per token: the GCRA state was keyed by token, so a
-- user who minted three tokens got three bursts. Now every token of a user shares one row.
-- Each user keeps the furthest-ahead state of their tokens, so nobody gains a burst from the
-- migration itself.

CREATE TABLE rate_limits_by_user (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- The theoretical arrival time of the user's next request (GCRA).
    tat     timestamptz NOT NULL
);

INSERT INTO rate_limits_by_user (user_id, tat)
SELECT t.user_id, max(r.tat)
FROM rate_limits r JOIN api_tokens t ON t.id = r.token_id
GROUP BY t.user_id;

DROP TABLE rate_limits;
ALTER TABLE rate_limits_by_user RENAME TO rate_limits;
ALTER TABLE rate_limits RENAME CONSTRAINT rate_limits_by_user_pkey TO rate_limits_pkey;
ALTER TABLE rate_limits
    RENAME CONSTRAINT rate_limits_by_user_user_id_fkey TO rate_limits_user_id_fkey;

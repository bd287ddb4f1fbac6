-- Plan bounds count a user's live jobs on every enqueue; this index keeps that count to the
-- live rows of one owner however many finished jobs the table holds.
CREATE INDEX jobs_live_owner_idx ON jobs (owner_id)
    WHERE state IN ('pending', 'running', 'retrying') AND owner_id IS NOT NULL;

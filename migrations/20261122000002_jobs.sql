-- The job queue. One row per job; attempts, backoff schedule, leases and every attempt's error
-- live in the row, so a restart keeps them. Decision and reasons: docs/job-engine.md.
CREATE TABLE jobs (
    id            uuid PRIMARY KEY,
    kind          text NOT NULL,
    args          jsonb NOT NULL,
    -- pending (scheduled while run_at is in the future), running, retrying (failed, will run
    -- again at run_at), succeeded, dead, cancelled.
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'retrying', 'succeeded', 'dead', 'cancelled')),
    priority      smallint NOT NULL DEFAULT 0,
    run_at        timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0,
    max_attempts  integer NOT NULL CHECK (max_attempts >= 1),
    -- Attempts whose worker died (lease expired); too many and the job is quarantined as dead.
    crashes       integer NOT NULL DEFAULT 0,
    dedup_key     text,
    owner_id      uuid REFERENCES users (id) ON DELETE SET NULL,
    -- W3C trace context of the request that enqueued the job (traceparent, tracestate).
    trace_context jsonb NOT NULL DEFAULT '{}',
    locked_by     uuid,
    lease_until   timestamptz,
    -- [{"attempt": n, "at": time, "error": text, "permanent": bool}], oldest first.
    errors        jsonb NOT NULL DEFAULT '[]',
    result        jsonb,
    dead_reason   text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz
);

-- Claiming: the next runnable jobs of a kind, highest priority first, then oldest.
CREATE INDEX jobs_claim_idx ON jobs (kind, priority DESC, run_at, id)
    WHERE state IN ('pending', 'retrying');
-- The sweeper: running jobs whose lease ran out.
CREATE INDEX jobs_lease_idx ON jobs (lease_until) WHERE state = 'running';
-- Dedup: at most one live job per (kind, key).
CREATE UNIQUE INDEX jobs_dedup_key ON jobs (kind, dedup_key)
    WHERE dedup_key IS NOT NULL AND state IN ('pending', 'running', 'retrying');
-- Pruning finished jobs by age.
CREATE INDEX jobs_finished_idx ON jobs (finished_at)
    WHERE state IN ('succeeded', 'dead', 'cancelled');
-- Listing a user's jobs newest first.
CREATE INDEX jobs_owner_idx ON jobs (owner_id, id DESC);

-- Wake workers once per inserting statement (not per row: bulk inserts stay cheap), with the
-- kinds that became runnable as payload.
CREATE FUNCTION jobs_notify_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('workhorse_jobs', kind)
    FROM (SELECT DISTINCT kind FROM inserted WHERE run_at <= now()) AS runnable;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify_insert();

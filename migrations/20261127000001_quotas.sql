-- Plans and quotas: per-user daily quotas per action, charged by the jobs that do the work,
-- and per-token request-rate limits. See docs/quotas.md.

-- IANA time zone whose midnight resets the user's quotas; NULL uses quotas.default_timezone.
ALTER TABLE users ADD COLUMN timezone text;

-- One row per user and action: units committed in the current period and units reserved by
-- live jobs. A period runs from one local midnight of the user (`period_start`) to the next
-- (`resets_at`); the `quota_reset` job, and any charge that finds the period over, start the
-- next one.
CREATE TABLE quota_counters (
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    action       text NOT NULL,
    period_start timestamptz NOT NULL,
    resets_at    timestamptz NOT NULL,
    used         integer NOT NULL DEFAULT 0 CHECK (used >= 0),
    reserved     integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    last_reset   timestamptz,
    PRIMARY KEY (user_id, action)
);
CREATE INDEX quota_counters_resets_at_idx ON quota_counters (resets_at);

-- The quota action a job charged; only such jobs fire the settling trigger below.
ALTER TABLE jobs ADD COLUMN quota_action text;

-- The unit a job holds: reserved with the enqueue, committed when the job succeeds, refunded
-- when it is dead or cancelled. `period_start` says which period a commit counts in.
CREATE TABLE quota_charges (
    job_id       uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL,
    action       text NOT NULL,
    period_start timestamptz NOT NULL,
    state        text NOT NULL CHECK (state IN ('reserved', 'committed', 'refunded')),
    reserved_at  timestamptz NOT NULL DEFAULT now(),
    settled_at   timestamptz
);

-- Settle a job's charge in the same transaction as the job's final state change, whichever
-- path makes it (ack, crash quarantine, cancel), so no unit is ever lost or counted twice.
CREATE FUNCTION settle_quota_charge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH settled AS (
        UPDATE quota_charges c
        SET state = CASE WHEN NEW.state = 'succeeded' THEN 'committed' ELSE 'refunded' END,
            settled_at = now()
        WHERE c.job_id = NEW.id AND c.state = 'reserved'
        RETURNING c.user_id, c.action, c.period_start, c.state
    )
    UPDATE quota_counters q
    SET reserved = greatest(q.reserved - 1, 0),
        used = q.used + CASE WHEN s.state = 'committed' AND q.period_start = s.period_start
                             THEN 1 ELSE 0 END
    FROM settled s
    WHERE q.user_id = s.user_id AND q.action = s.action;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_settle_quota_charge
    AFTER UPDATE OF state ON jobs
    FOR EACH ROW
    WHEN (NEW.quota_action IS NOT NULL
          AND NEW.state IN ('succeeded', 'dead', 'cancelled')
          AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION settle_quota_charge();

-- Request-rate limits per token (GCRA): the theoretical arrival time of the next request.
CREATE TABLE rate_limits (
    token_id uuid PRIMARY KEY REFERENCES api_tokens (id) ON DELETE CASCADE,
    tat      timestamptz NOT NULL
);

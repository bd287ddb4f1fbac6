-- Dedup keys are scoped to the job's owner: two users may hold the same key for the same kind,
-- and a duplicate answer only ever names a job of the same owner. Jobs without an owner (the
-- schedules' ticks, operator work) share one scope, the nil uuid, so a tick key still fires
-- once across daemons. (`NULLS NOT DISTINCT` would say the same but needs PostgreSQL 15.)
DROP INDEX jobs_dedup_key;
CREATE UNIQUE INDEX jobs_dedup_key
    ON jobs (kind, (coalesce(owner_id, '00000000-0000-0000-0000-000000000000'::uuid)), dedup_key)
    WHERE dedup_key IS NOT NULL AND state IN ('pending', 'running', 'retrying');

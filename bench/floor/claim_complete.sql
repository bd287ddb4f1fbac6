-- pgbench script for bench/floor.sh: one claim of up to 100 runnable `echo` jobs and their
-- completion, two commits: the claim is the statement of `claim_jobs` (migration
-- 20261206100002, which src/store/jobs/claim.rs calls) planned freely, the completion
-- a plain UPDATE of the claimed ids (claim_complete_engine.sql uses `complete_many` instead).
-- Each client is one worker, its id derived from pgbench's client_id. Run with -M prepared
-- (the array of claimed ids goes to the second statement as a parameter).
WITH next AS (
    SELECT id FROM jobs
    WHERE kind = 'echo' AND state IN ('pending', 'retrying') AND run_at <= now()
    ORDER BY priority DESC, run_at, id
    LIMIT 100 FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE jobs j SET state = 'running', attempts = j.attempts + 1,
           locked_by = ('00000000-0000-4000-8000-' || lpad(:client_id::text, 12, '0'))::uuid,
           lease_until = now() + 30000 * interval '1 millisecond', started_at = now()
    WHERE j.id = ANY(ARRAY(SELECT id FROM next))
    RETURNING j.id, j.kind, j.args, j.attempts, j.max_attempts, j.trace_context, j.owner_id,
              extract(epoch FROM now() - j.run_at)::float8 AS lateness
)
SELECT coalesce(array_agg(id), '{}') AS ids
FROM claimed
\gset
UPDATE jobs SET state = 'succeeded', result = NULL, finished_at = now(),
       locked_by = NULL, lease_until = NULL
WHERE id = ANY(:ids::uuid[])
  AND locked_by = ('00000000-0000-4000-8000-' || lpad(:client_id::text, 12, '0'))::uuid
  AND state = 'running';

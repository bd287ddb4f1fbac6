-- pgbench script for bench/floor.sh: as claim_complete.sql, but completing with the statement
-- of src/store/jobs/claim.rs `complete_many` as it is (ids and attempts unnested, rows locked in
-- id order, fenced by worker and attempt), to show what that statement costs over plain SQL.
-- Run with -M prepared (the arrays of claimed ids and attempts go to it as parameters).
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
SELECT coalesce(array_agg(id), '{}') AS ids, coalesce(array_agg(attempts), '{}') AS attempts
FROM claimed
\gset
WITH d AS (SELECT * FROM unnest(:ids::uuid[], :attempts::int[]) AS d(id, attempt)),
held AS (
    SELECT j.id FROM d JOIN jobs j ON j.id = d.id
    WHERE j.locked_by IS NOT DISTINCT FROM
              ('00000000-0000-4000-8000-' || lpad(:client_id::text, 12, '0'))::uuid
      AND j.attempts = d.attempt AND j.state IS NOT DISTINCT FROM 'running'
    ORDER BY j.id FOR UPDATE OF j
)
UPDATE jobs j SET state = 'succeeded', result = NULL, finished_at = now(),
       locked_by = NULL, lease_until = NULL
FROM held WHERE j.id = held.id;

-- The claim as a function that always walks jobs_claim_idx in order.
--
-- Planned as a plain statement, the claim's shape depended on the statistics: right after a
-- bulk insert (a fan-out, a backlog enqueued at once, a table just pruned) the planner could
-- believe a kind had a handful of due jobs, read all of them through jobs_due_idx and sort
-- them. Under FOR UPDATE the sort cannot stop at the LIMIT (the row locks sit between them),
-- so every claim sorted the whole backlog: 45 ms, spilling to disk, for 60,000 waiting jobs,
-- against 0.2 ms for the same claim reading the index in order. `enable_sort = off` for this
-- function alone makes the ordered index scan the plan whatever the statistics say (a sort is
-- still used where nothing else can serve, so the function cannot fail for it); PL/pgSQL
-- keeps the plan for the session.
CREATE FUNCTION claim_jobs(p_kind text, p_limit bigint, p_worker uuid, p_lease_ms float8)
RETURNS TABLE (id uuid, kind text, args jsonb, attempts integer, max_attempts integer,
               trace_context jsonb, owner_id uuid, lateness float8)
LANGUAGE plpgsql SET enable_sort = off AS $$
BEGIN
    RETURN QUERY
    WITH next AS (
        SELECT c.id FROM jobs c
        WHERE c.kind = p_kind AND c.state IN ('pending', 'retrying') AND c.run_at <= now()
        ORDER BY c.priority DESC, c.run_at, c.id
        LIMIT p_limit FOR UPDATE SKIP LOCKED
    )
    UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, locked_by = p_worker,
           lease_until = now() + p_lease_ms * interval '1 millisecond', started_at = now()
    WHERE j.id = ANY(ARRAY(SELECT next.id FROM next))
    RETURNING j.id, j.kind, j.args, j.attempts, j.max_attempts, j.trace_context, j.owner_id,
              extract(epoch FROM now() - j.run_at)::float8;
END
$$;

-- Enqueues stop notifying; the sequencer wakes the workers (docs/job-engine.md, "Waking
-- workers"; figures in docs/benchmarks.md).
--
-- A transaction that ran NOTIFY takes one database-wide lock while it commits, so every
-- enqueue's commit queued behind every other's: single-row enqueues topped out near 450
-- commits a second on the benchmark machine against ~7,500 without the NOTIFY. The inserts
-- already leave a row in `stream_changes`, which the stream's sequencer numbers within
-- milliseconds; the sequencer now also announces, once per pass, each kind that has new
-- pending jobs on `workhorse_jobs`. One NOTIFY per pass instead of one per enqueue.
CREATE OR REPLACE FUNCTION jobs_notify_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stream_changes
        (n, job, owner, kind, state, attempt, max_attempts, error, scrape, summary)
    SELECT count(*), array_agg(i.id), array_agg(i.owner_id), array_agg(i.kind),
           array_agg(i.state), array_agg(i.attempts), array_agg(i.max_attempts),
           array_agg(NULL::text), array_agg(i.args ->> 'scrape_id'),
           array_agg(i.args ->> 'summary_id')
    FROM inserted i
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;

-- The live event stream's cost per statement of the job engine (bench/stream_statements.sh):
-- median EXPLAIN ANALYZE execution time (AFTER triggers included) of the engine's claim,
-- lease extension, completion and inserts with the stream's triggers on (as migrated) and
-- off, the triggers' own time, and the sequencer's statement on a drain's pending rows.
-- Runs on a scratch database with the migrations applied; it changes the triggers.
\set QUIET on
-- The sequencer on pending rows as a drain leaves them (claims and completions of 8 jobs).
INSERT INTO jobs (id, kind, args, max_attempts)
SELECT gen_random_uuid(), 'echo', '{}', 1 FROM generate_series(1, 5000);
DO $$ DECLARE i int; BEGIN
  FOR i IN 1..600 LOOP
    WITH next AS (SELECT id FROM jobs WHERE state = 'pending' ORDER BY id LIMIT 8)
    UPDATE jobs j SET state = 'running' FROM next WHERE j.id = next.id;
    UPDATE jobs SET state = 'succeeded' WHERE state = 'running';
  END LOOP; END $$;
VACUUM ANALYZE stream_changes;
CREATE TEMP TABLE r (mode text, what text, exec float8, trig float8);
DO $$ DECLARE p json; i int; BEGIN
  FOR i IN 1..100 LOOP
    EXECUTE $q$EXPLAIN (ANALYZE, FORMAT JSON) WITH next AS (SELECT id, n, sum(n) OVER (ORDER BY id) AS upto FROM (SELECT id, n FROM stream_changes WHERE first_seq IS NULL ORDER BY id LIMIT 6) AS waiting), total AS (SELECT count(*) AS rows, coalesce(max(upto), 0) AS n FROM next), head AS (UPDATE stream_head SET seq = seq + total.n FROM total WHERE total.n > 0 RETURNING stream_head.seq - total.n AS base, stream_head.seq, total.rows), numbered AS (UPDATE stream_changes c SET first_seq = head.base + next.upto - next.n + 1, last_seq = head.base + next.upto FROM next, head WHERE c.id = next.id) SELECT head.rows, head.seq FROM head WHERE pg_notify('workhorse_stream', head.seq::text)::text IS NOT NULL$q$ INTO p;
    INSERT INTO r VALUES ('on', 'sequence 6 pending rows (48 events)', (p->0->>'Execution Time')::float8, 0);
  END LOOP; END $$;
TRUNCATE jobs, echo_runs, quota_charges, stream_changes;
CREATE OR REPLACE FUNCTION pg_temp.measure(mode text, n int) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE p json; i int; w uuid := '00000000-0000-0000-0000-000000000001';
BEGIN
  FOR i IN 1..n LOOP
    EXECUTE format($q$EXPLAIN (ANALYZE, FORMAT JSON) WITH next AS (SELECT id FROM jobs WHERE kind = 'echo' AND state IN ('pending', 'retrying') AND run_at <= now() ORDER BY priority DESC, run_at, id LIMIT 8 FOR UPDATE SKIP LOCKED) UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, locked_by = %L, lease_until = now() + interval '30 seconds', started_at = now() FROM next WHERE j.id = next.id RETURNING j.id$q$, w) INTO p;
    INSERT INTO r SELECT mode, 'claim 8', (p->0->>'Execution Time')::float8, coalesce((SELECT sum((t->>'Time')::float8) FROM json_array_elements(p->0->'Triggers') t), 0);
    EXECUTE format($q$EXPLAIN (ANALYZE, FORMAT JSON) UPDATE jobs SET lease_until = now() + interval '30 seconds' WHERE locked_by = %L AND state = 'running'$q$, w) INTO p;
    INSERT INTO r SELECT mode, 'extend leases of 8', (p->0->>'Execution Time')::float8, coalesce((SELECT sum((t->>'Time')::float8) FROM json_array_elements(p->0->'Triggers') t), 0);
    EXECUTE format($q$EXPLAIN (ANALYZE, FORMAT JSON) UPDATE jobs SET state = 'succeeded', result = '{}', finished_at = now(), locked_by = NULL, lease_until = NULL WHERE locked_by = %L AND state = 'running'$q$, w) INTO p;
    INSERT INTO r SELECT mode, 'complete 8', (p->0->>'Execution Time')::float8, coalesce((SELECT sum((t->>'Time')::float8) FROM json_array_elements(p->0->'Triggers') t), 0);
    IF i % 10 = 0 THEN
      EXECUTE $q$EXPLAIN (ANALYZE, FORMAT JSON) INSERT INTO jobs (id, kind, args, max_attempts) SELECT gen_random_uuid(), 'echo', '{}', 1 FROM generate_series(1, 10000)$q$ INTO p;
      INSERT INTO r SELECT mode, 'insert 10,000', (p->0->>'Execution Time')::float8, coalesce((SELECT sum((t->>'Time')::float8) FROM json_array_elements(p->0->'Triggers') t), 0);
      EXECUTE $q$EXPLAIN (ANALYZE, FORMAT JSON) INSERT INTO jobs (id, kind, args, max_attempts) SELECT gen_random_uuid(), 'echo', '{}', 1 FROM generate_series(1, 1)$q$ INTO p;
      INSERT INTO r SELECT mode, 'insert 1', (p->0->>'Execution Time')::float8, coalesce((SELECT sum((t->>'Time')::float8) FROM json_array_elements(p->0->'Triggers') t), 0);
    END IF;
  END LOOP;
END $f$;
INSERT INTO jobs (id, kind, args, max_attempts)
SELECT gen_random_uuid(), 'echo', '{}', 1 FROM generate_series(1, 20000);
VACUUM ANALYZE jobs;
SELECT pg_temp.measure('on', 100);
ALTER TABLE jobs DISABLE TRIGGER jobs_stream_update;
CREATE OR REPLACE FUNCTION jobs_notify_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('workhorse_jobs', kind) FROM (SELECT DISTINCT kind FROM inserted) AS kinds;
    RETURN NULL;
END
$$;
SELECT pg_temp.measure('off', 100);
\pset format aligned
\set QUIET off
SELECT what, mode, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY exec)::numeric, 3) AS exec_ms_p50,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY trig)::numeric, 3) AS triggers_ms_p50, count(*)
FROM r GROUP BY 1, 2 ORDER BY 1, 2 DESC;

-- pgbench script for bench/floor.sh: :rows pending `echo` jobs in one INSERT ... SELECT, one
-- commit (pgbench -D rows=N).
INSERT INTO jobs (id, kind, args, max_attempts)
SELECT gen_random_uuid(), 'echo', '{}', 5 FROM generate_series(1, :rows);

-- pgbench script for bench/floor.sh: one pending `echo` job inserted, one commit.
INSERT INTO jobs (id, kind, args, max_attempts) VALUES (gen_random_uuid(), 'echo', '{}', 5);

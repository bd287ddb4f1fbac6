-- Dead deliveries, newest first: `workhorse status` counts them and `deliveries list --state
-- dead` pages through them. Few rows, while the outbox keeps every delivered one: without it
-- both scan the whole table (~58 ms at 1M deliveries, measured 2026-12-05).
CREATE INDEX deliveries_dead_idx ON deliveries (id DESC) WHERE state = 'dead';

-- What the worker runtime needs beyond the queue table (docs/job-engine.md).

-- Wake workers for every inserted kind, scheduled jobs included: a dispatcher sleeping until
-- its next due job must learn that an earlier one arrived.
CREATE OR REPLACE FUNCTION jobs_notify_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('workhorse_jobs', kind) FROM (SELECT DISTINCT kind FROM inserted) AS kinds;
    RETURN NULL;
END
$$;

-- The next due time of a kind's waiting jobs, whatever their priority.
CREATE INDEX jobs_due_idx ON jobs (kind, run_at) WHERE state IN ('pending', 'retrying');

-- Every execution of the diagnostic `echo` job that asked to be recorded: the chaos test and
-- operators checking a deployment count executions here.
CREATE TABLE echo_runs (
    job_id     uuid NOT NULL,
    attempt    integer NOT NULL,
    instance   uuid NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
-- No unique key on purpose: two executions of one attempt would be a bug the tests must see.
CREATE INDEX echo_runs_job_idx ON echo_runs (job_id);

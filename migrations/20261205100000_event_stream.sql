-- The live event stream (docs/events.md): every job state change, every published event and
-- every delivery outcome, numbered in the order the changes committed.
--
-- Triggers run inside the changing transaction, where a sequence number would follow the
-- order transactions *started* writing, not the order they committed: a client that read up to
-- 100 could later miss a 99 that committed after it. So the triggers only append one row per
-- statement to `stream_pending` (the statement's events as a JSON array); one sequencer (one
-- daemon at a time, by advisory lock) moves committed pending rows into `stream_events`,
-- giving each event the next number, and NOTIFYs `workhorse_stream` with the last one.

CREATE TABLE stream_pending (
    id     bigserial PRIMARY KEY,
    events jsonb NOT NULL
);

-- The last number given out; one row, so numbers never go back even when every event was
-- pruned.
CREATE TABLE stream_head (
    id  integer PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL
);
INSERT INTO stream_head VALUES (1, 0);

-- Numbered events, one row per sequencer batch: event i of `events` (from 0) has number
-- first_seq + i; last_seq = first_seq + length - 1. Kept for `events.retention`.
CREATE TABLE stream_events (
    first_seq  bigint PRIMARY KEY,
    last_seq   bigint NOT NULL,
    events     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stream_events_last_idx ON stream_events (last_seq);
CREATE INDEX stream_events_created_idx ON stream_events (created_at);

-- Short-lived tickets for browsers, whose EventSource cannot send an Authorization header:
-- only the hash is kept; a ticket opens streams for its user until it expires, and dies with
-- the token that asked for it.
CREATE TABLE stream_tickets (
    hash       bytea PRIMARY KEY,
    token_id   uuid NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);
CREATE INDEX stream_tickets_expires_idx ON stream_tickets (expires_at);

-- Job events: `job.<state>` (pending is `job.queued`), with the attempt, the last error of a
-- retrying or dead job, and the scrape or summary the job works on.
CREATE FUNCTION stream_job_event(j jobs) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'type', 'job.' || CASE j.state WHEN 'pending' THEN 'queued' ELSE j.state END,
        'owner', j.owner_id,
        'at', now(),
        'job', j.id,
        'kind', j.kind,
        'state', j.state,
        'attempt', j.attempts,
        'max_attempts', j.max_attempts,
        'error', CASE WHEN j.state IN ('retrying', 'dead')
                      THEN coalesce(j.errors -> -1 ->> 'error', j.dead_reason) END,
        'scrape', j.args ->> 'scrape_id',
        'summary', j.args ->> 'summary_id'))
$$;

CREATE OR REPLACE FUNCTION jobs_notify_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('workhorse_jobs', kind) FROM (SELECT DISTINCT kind FROM inserted) AS kinds;
    INSERT INTO stream_pending (events)
    SELECT jsonb_agg(stream_job_event(i) ORDER BY i.id) FROM inserted i HAVING count(*) > 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION jobs_stream_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stream_pending (events)
    SELECT jsonb_agg(stream_job_event(n) ORDER BY n.id)
    FROM new_rows n JOIN old_rows o USING (id)
    WHERE n.state <> o.state
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_stream_update AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_stream_update();

-- Published events, under their topic's name (`scrapes.finished`, …).
CREATE FUNCTION events_stream_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stream_pending (events)
    SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
        'type', e.topic,
        'owner', e.owner_id,
        'at', now(),
        'event', e.id,
        'scrape', e.payload ->> 'scrape_id',
        'summary', e.payload ->> 'summary_id',
        'payload', e.payload)) ORDER BY e.id)
    FROM inserted e
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_stream_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION events_stream_insert();

-- Delivery outcomes: each failed attempt while retries remain (`delivery.failed`),
-- `delivery.delivered`, `delivery.dead`, and `delivery.queued` when a dead one is retried.
CREATE FUNCTION deliveries_stream_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stream_pending (events)
    SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
        'type', 'delivery.' || CASE
            WHEN n.state <> 'pending' THEN n.state
            WHEN n.attempts > o.attempts THEN 'failed'
            ELSE 'queued' END,
        'owner', n.owner_id,
        'at', now(),
        'delivery', n.id,
        'channel', n.channel_id,
        'event', n.event_id,
        'state', n.state,
        'attempt', n.attempts,
        'status', n.last_status,
        'error', n.last_error)) ORDER BY n.id)
    FROM new_rows n JOIN old_rows o USING (id)
    WHERE n.attempts > o.attempts OR n.state <> o.state
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;
CREATE TRIGGER deliveries_stream_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION deliveries_stream_update();

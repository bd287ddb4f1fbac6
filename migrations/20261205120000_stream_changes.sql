-- The live event stream, cheaper for the job engine (docs/events.md, "How it works"; the
-- figures are in docs/benchmarks.md, "Live events").
--
-- Before: every claim and completion built a JSON object per job in its trigger (~10 µs a
-- job), and the sequencer then unpacked those arrays and aggregated them again into
-- `stream_events`. Now the job triggers store a statement's changes column-wise (one array
-- per field, ~2 µs a job) and the daemon writes the JSON when it reads them; and the
-- sequencer numbers the rows where they are instead of moving them. Events of other sources
-- (published events, deliveries, summary progress) stay JSON arrays: they are few.
--
-- Events kept by the old tables are not carried over: a client resuming from one of their
-- numbers gets `reset`, as one past the retention would.

DROP TRIGGER jobs_stream_update ON jobs;
DROP TRIGGER events_stream_insert ON events;
DROP TRIGGER deliveries_stream_update ON deliveries;
DROP TABLE stream_pending, stream_events;

-- One row per changing statement. Until the sequencer numbers it, `first_seq` and `last_seq`
-- are NULL and no reader sees it; then its events are numbered first_seq .. last_seq
-- (= first_seq + n - 1) in order. Job changes fill the arrays, all of length n; any other
-- source fills `events` with n JSON objects. `at` is the changing transaction's time.
CREATE TABLE stream_changes (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    n            integer NOT NULL CHECK (n > 0),
    first_seq    bigint,
    last_seq     bigint,
    job          uuid[],
    owner        uuid[],
    kind         text[],
    state        text[],
    attempt      integer[],
    max_attempts integer[],
    error        text[],
    scrape       text[],
    summary      text[],
    events       jsonb,
    CHECK ((job IS NULL) <> (events IS NULL)),
    CHECK ((first_seq IS NULL) = (last_seq IS NULL))
);
-- The sequencer's queue, and the readers' order.
CREATE INDEX stream_changes_unnumbered_idx ON stream_changes (id) WHERE first_seq IS NULL;
CREATE UNIQUE INDEX stream_changes_last_idx ON stream_changes (last_seq)
    WHERE last_seq IS NOT NULL;
CREATE INDEX stream_changes_at_idx ON stream_changes (at) WHERE last_seq IS NOT NULL;

-- Job events, column-wise: the reader makes `job.<state>` of each (pending is `job.queued`),
-- with the attempt, the last error of a retrying or dead job, and the scrape or summary the
-- job works on.
CREATE OR REPLACE FUNCTION jobs_notify_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('workhorse_jobs', kind) FROM (SELECT DISTINCT kind FROM inserted) AS kinds;
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

CREATE OR REPLACE FUNCTION jobs_stream_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stream_changes
        (n, job, owner, kind, state, attempt, max_attempts, error, scrape, summary)
    SELECT count(*), array_agg(n.id), array_agg(n.owner_id), array_agg(n.kind),
           array_agg(n.state), array_agg(n.attempts), array_agg(n.max_attempts),
           array_agg(CASE WHEN n.state IN ('retrying', 'dead')
                          THEN coalesce(n.errors -> -1 ->> 'error', n.dead_reason) END),
           array_agg(n.args ->> 'scrape_id'), array_agg(n.args ->> 'summary_id')
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
CREATE OR REPLACE FUNCTION events_stream_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stream_changes (n, events)
    SELECT count(*), jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
        'type', e.topic,
        'owner', e.owner_id,
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
CREATE OR REPLACE FUNCTION deliveries_stream_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stream_changes (n, events)
    SELECT count(*), jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
        'type', 'delivery.' || CASE
            WHEN n.state <> 'pending' THEN n.state
            WHEN n.attempts > o.attempts THEN 'failed'
            ELSE 'queued' END,
        'owner', n.owner_id,
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

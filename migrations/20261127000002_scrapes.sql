-- Scrapes and the documents they produce (the summarisation issue adds uploaded documents).

CREATE TABLE documents (
    id          uuid PRIMARY KEY,
    owner_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       text NOT NULL,
    text        text NOT NULL,
    -- Where the text came from: 'scrape' (source_url is the page) or 'upload'.
    source      text NOT NULL CHECK (source IN ('scrape', 'upload')),
    source_url  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_owner_idx ON documents (owner_id, id DESC);

CREATE TABLE scrapes (
    id            uuid PRIMARY KEY,
    owner_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The job doing the work; no foreign key, finished jobs are pruned.
    job_id        uuid NOT NULL,
    url           text NOT NULL,
    wait_for      text,
    timeout_ms    integer NOT NULL,
    screenshot    boolean NOT NULL DEFAULT false,
    formats       text[] NOT NULL,
    -- Set by the job: 'succeeded' or 'failed' once finished; NULL while the job has it.
    outcome       text CHECK (outcome IN ('succeeded', 'failed')),
    final_url     text,
    http_status   integer,
    title         text,
    content       jsonb,
    screenshot_png bytea,
    error_kind    text,
    error         text,
    document_id   uuid REFERENCES documents (id) ON DELETE SET NULL,
    attempts      integer NOT NULL DEFAULT 0,
    navigate_ms   integer,
    wait_ms       integer,
    extract_ms    integer,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz
);
CREATE INDEX scrapes_owner_idx ON scrapes (owner_id, id DESC);

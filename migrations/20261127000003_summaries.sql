-- Summaries of documents, their map-reduce chunk results (so a restarted job resumes where it
-- stopped), and the cache of finished summaries.

CREATE TABLE summaries (
    id           uuid PRIMARY KEY,
    owner_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    document_id  uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    -- The job doing the work; no foreign key, finished jobs are pruned.
    job_id       uuid NOT NULL,
    -- style, length, language, provider as asked.
    options      jsonb NOT NULL,
    -- Set by the job once finished.
    outcome      text CHECK (outcome IN ('succeeded', 'failed')),
    text         text,
    provider     text,
    model        text,
    -- Made by the built-in extractive summariser, not a model.
    builtin      boolean NOT NULL DEFAULT false,
    cached       boolean NOT NULL DEFAULT false,
    tokens_in    integer NOT NULL DEFAULT 0,
    tokens_out   integer NOT NULL DEFAULT 0,
    chunks       integer NOT NULL DEFAULT 0,
    model_calls  integer NOT NULL DEFAULT 0,
    error        text,
    attempts     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);
CREATE INDEX summaries_document_idx ON summaries (document_id, id DESC);

CREATE TABLE summary_chunks (
    summary_id  uuid NOT NULL REFERENCES summaries (id) ON DELETE CASCADE,
    -- Reduce rounds: 0 for the document's chunks, 1 for summaries of those, ...
    round       integer NOT NULL,
    idx         integer NOT NULL,
    text        text NOT NULL,
    provider    text NOT NULL,
    model       text NOT NULL,
    tokens_in   integer NOT NULL,
    tokens_out  integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (summary_id, round, idx)
);

-- Identical requests (same text, options, models and prompt version) reuse the answer.
CREATE TABLE summary_cache (
    key         text PRIMARY KEY,
    text        text NOT NULL,
    provider    text NOT NULL,
    model       text NOT NULL,
    builtin     boolean NOT NULL,
    tokens_in   integer NOT NULL,
    tokens_out  integer NOT NULL,
    chunks      integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

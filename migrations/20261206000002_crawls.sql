-- Crawls: a site's pages followed link by link from a start URL, each page a scrape. The
-- frontier (`crawl_pages`) is durable: a crawl resumes where it was after a restart.
CREATE TABLE crawls (
    id           uuid PRIMARY KEY,
    owner_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url          text NOT NULL,
    -- limit, max_depth, paths, subdomains, politeness, each page's scrape options
    options      jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
    -- robots.txt as parsed for our user agent; NULL until the first step read it
    robots       jsonb,
    pages_done   integer NOT NULL DEFAULT 0,
    pages_failed integer NOT NULL DEFAULT 0,
    error        text,
    notify_all   boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX crawls_owner_idx ON crawls (owner_id, id DESC);

CREATE TABLE crawl_pages (
    crawl_id      uuid NOT NULL REFERENCES crawls (id) ON DELETE CASCADE,
    -- the normalised URL: each page once
    url           text NOT NULL,
    -- discovery order, the cursor of the pages list
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    depth         integer NOT NULL,
    state         text NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'scraping', 'done', 'failed', 'skipped')),
    scrape_id     uuid,
    discovered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (crawl_id, url)
);
CREATE INDEX crawl_pages_seq_idx ON crawl_pages (crawl_id, seq);
CREATE INDEX crawl_pages_queue_idx ON crawl_pages (crawl_id, depth, seq) WHERE state = 'queued';

-- The crawl a scrape is a page of.
ALTER TABLE scrapes ADD COLUMN crawl_id uuid REFERENCES crawls (id) ON DELETE SET NULL;

-- What a scrape does besides loading its URL (main content, tags, headers, mobile, wait,
-- actions, full-page screenshot), and the key under which equal requests share a fresh result
-- (`max_age`): the owner's last success for the same key.
ALTER TABLE scrapes ADD COLUMN options jsonb NOT NULL DEFAULT '{}';
ALTER TABLE scrapes ADD COLUMN cache_key text;
CREATE INDEX scrapes_cache_idx ON scrapes (owner_id, cache_key, finished_at DESC)
    WHERE outcome = 'succeeded' AND cache_key IS NOT NULL;

-- Screenshots taken by `screenshot` actions, in the order they were taken.
CREATE TABLE scrape_screenshots (
    scrape_id uuid NOT NULL REFERENCES scrapes (id) ON DELETE CASCADE,
    n         integer NOT NULL,
    png       bytea NOT NULL,
    PRIMARY KEY (scrape_id, n)
);

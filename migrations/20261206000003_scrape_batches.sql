-- Batches: up to 100 URLs scraped with shared options, one scrape (and job) per URL.
CREATE TABLE scrape_batches (
    id         uuid PRIMARY KEY,
    owner_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    total      integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scrape_batches_owner_idx ON scrape_batches (owner_id, id DESC);

ALTER TABLE scrapes ADD COLUMN batch_id uuid REFERENCES scrape_batches (id) ON DELETE SET NULL;
CREATE INDEX scrapes_batch_idx ON scrapes (batch_id) WHERE batch_id IS NOT NULL;

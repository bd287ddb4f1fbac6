-- What a scrape does when it finishes: chain a summary of its document, and notify all of the
-- user's channels (not only those subscribed to scrapes.finished).
ALTER TABLE scrapes ADD COLUMN chain_summary boolean NOT NULL DEFAULT false;
ALTER TABLE scrapes ADD COLUMN notify_all boolean NOT NULL DEFAULT false;
ALTER TABLE scrapes ADD COLUMN summary_id uuid;

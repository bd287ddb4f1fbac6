-- The workhorse_jobs gauge counts jobs by kind and state on every metrics window. Only live
-- and dead jobs are counted (finished ones grow without end; the attempts counter covers
-- them), and this index holds exactly those rows, so the count costs the same with millions
-- of succeeded jobs in the table. Dead jobs leave it when the pruner deletes them.
CREATE INDEX jobs_gauge_idx ON jobs (state, kind)
    WHERE state IN ('pending', 'running', 'retrying', 'dead');

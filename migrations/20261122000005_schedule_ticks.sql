-- One row per fired cron tick. The primary key makes each (schedule, tick) fire once however
-- many daemons share the database, also after the tick's job has finished (the jobs table's
-- dedup index only covers live jobs). Manual triggers are recorded here too.
CREATE TABLE schedule_ticks (
    schedule  text NOT NULL,
    tick      timestamptz NOT NULL,
    job_id    uuid,
    manual    boolean NOT NULL DEFAULT false,
    fired_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, tick)
);
CREATE INDEX schedule_ticks_fired_idx ON schedule_ticks (schedule, fired_at DESC);

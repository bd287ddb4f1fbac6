-- The transactions injector: the records it writes, and one row per run (the run's outcome,
-- committed with its rows, so a retried run never inserts twice).

CREATE TABLE records (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id         uuid NOT NULL,
    client_id      text NOT NULL,
    completed_at   timestamptz NOT NULL,
    transaction_id text NOT NULL,
    customer_id    text NOT NULL,
    customer_name  text NOT NULL,
    merchant       text NOT NULL,
    category       text NOT NULL,
    amount         numeric(14, 2) NOT NULL,
    currency       text NOT NULL,
    payment_method text NOT NULL,
    country        text NOT NULL,
    card_last4     text NOT NULL,
    status         text NOT NULL
);
CREATE INDEX records_time_idx ON records (completed_at DESC, id DESC);
CREATE INDEX records_client_time_idx ON records (client_id, completed_at DESC, id DESC);

CREATE TABLE injector_runs (
    -- The job's id: a retried job finds its committed run and inserts nothing.
    job_id         uuid PRIMARY KEY,
    client_id      text NOT NULL,
    dataset        text NOT NULL,
    rows_requested integer NOT NULL,
    rows_inserted  integer NOT NULL,
    status         text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    error          text,
    duration_ms    integer NOT NULL,
    finished_at    timestamptz NOT NULL DEFAULT now()
);

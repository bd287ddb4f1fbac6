-- For bench/floor.sh: :rows rows shaped like the injector's records, as CSV on stdout, for the
-- COPY measure to load into `records` (psql -v rows=N -f records.sql > file).
COPY (
    SELECT gen_random_uuid(), 'bench', now() - i * interval '1 second', 'tx-' || i,
           'cust-' || (i % 1000), 'Customer ' || (i % 1000), 'Merchant ' || (i % 50),
           'groceries', (i % 100000) / 100.0, 'EUR', 'card', 'DE',
           lpad((i % 10000)::text, 4, '0'), 'completed'
    FROM generate_series(1, :rows) AS i
) TO STDOUT WITH (FORMAT csv);

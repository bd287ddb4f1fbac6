-- Deliveries recorded before the shared outbound client kept up to 500 characters of what the
-- receiver answered in last_error, which could be a private server's page. Errors are now a
-- status or a short reason; keep only that for the rows written before (this runs once, at
-- the upgrade).
UPDATE deliveries
SET last_error = CASE
    WHEN last_status IS NOT NULL THEN 'HTTP ' || last_status
    ELSE left(split_part(last_error, ':', 1), 80)
END
WHERE last_error IS NOT NULL;

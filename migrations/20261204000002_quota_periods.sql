-- One rule for every quota period, wherever one starts (a charge that finds its counter's
-- period over, the reset job, the usage shown to the user): a period, once started, keeps its
-- end, and a new time zone applies from the next period.
--
-- Before, a new period was the local day (of the user's current zone) containing the moment
-- it started, so switching zones every hour gave ~24 periods, and 24 quotas, a day.

-- The period a counter starts at `at` in zone `tz`, when its previous period ended at `after`
-- (NULL: it had none). It starts at the user's last local midnight, but never before `after`,
-- so periods never overlap. It ends at the next local midnight; when it does not start at a
-- local midnight (the zone changed, so `after` falls inside a local day), it runs on to the
-- midnight after that, so that no period is shorter than a local day: a zone change cannot
-- shorten a period, at most lengthen one to under two days.
CREATE FUNCTION quota_period(tz text, after timestamptz, at timestamptz,
                             OUT period_start timestamptz, OUT resets_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT p.s,
           (date_trunc('day', p.s AT TIME ZONE tz)
            + CASE WHEN date_trunc('day', p.s AT TIME ZONE tz) AT TIME ZONE tz = p.s
                   THEN interval '1 day' ELSE interval '2 days' END) AT TIME ZONE tz
    FROM (SELECT greatest(date_trunc('day', at AT TIME ZONE tz) AT TIME ZONE tz, after) AS s) p
$$;

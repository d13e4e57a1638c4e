-- View channel_performance_daily: channel_performance per conversion_date (the UTC day of the
-- conversion), for dashboards and for questions about a day or a date range. A filter on
-- conversion_date reaches the Parquet scan through the credits view, so only that day's files
-- are read, e.g.
--   SELECT * FROM channel_performance_daily WHERE conversion_date = DATE '2026-11-29'
-- Columns as in channel_performance; the participation model's rows are not additive.
SELECT
    conversion_date,
    policy,
    model,
    channel,
    fsum(credit) AS conversions,
    fsum(credited_value) AS credited_value,
    count(DISTINCT touch_event_id) AS touches,
    string_agg(DISTINCT currency, ',' ORDER BY currency) AS currencies
FROM credits
GROUP BY conversion_date, policy, model, channel
ORDER BY conversion_date, policy, model, credited_value DESC, conversions DESC, channel

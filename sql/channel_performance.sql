-- View channel_performance: current credits per policy, model and channel.
--   conversions    = sum of fractional credit (conversions attributed to the channel)
--   credited_value = sum of credited value; currencies lists the currencies summed, so a
--                    mix (which this view does not convert) is visible
--   touches        = distinct credited touches
-- Rows of the participation model (every touch gets 100%) are included but are NOT
-- additive: their conversions count how many conversions a channel took part in.
-- Placeholders: {table:<name>} = read_parquet of that table's date partitions; see sql/__init__.py.
SELECT
    policy,
    model,
    channel,
    fsum(credit) AS conversions,
    fsum(credited_value) AS credited_value,
    count(DISTINCT touch_event_id) AS touches,
    string_agg(DISTINCT currency, ',' ORDER BY currency) AS currencies
FROM credits
GROUP BY policy, model, channel
ORDER BY policy, model, credited_value DESC, conversions DESC, channel

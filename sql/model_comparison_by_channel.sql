-- View model_comparison_by_channel: the model_comparison view summed per policy, model and
-- channel: how much each model gives a channel compared with last touch (current credit
-- version only; same computed last-touch baseline, see model_comparison).
--   policy, model, channel
--   conversions           sum of the model's credit (conversions attributed to the channel)
--   credited_value        sum of credited value
--   last_touch_conversions  conversions whose last eligible touch is on this channel, among
--                         the conversions the model credits
--   last_touch_value      their value
--   conversions_change    conversions - last_touch_conversions
--   value_change          credited_value - last_touch_value
--   value_change_pct      value_change / last_touch_value (NULL when last touch gives 0)
--   currencies            distinct currencies summed (not converted)
-- The participation model is not additive (its conversions exceed the total).
SELECT
    policy,
    model,
    channel,
    fsum(credit) AS conversions,
    fsum(credited_value) AS credited_value,
    fsum(last_touch_credit) AS last_touch_conversions,
    fsum(last_touch_value) AS last_touch_value,
    fsum(credit_change) AS conversions_change,
    fsum(value_change) AS value_change,
    fsum(value_change) / nullif(fsum(last_touch_value), 0) AS value_change_pct,
    string_agg(DISTINCT currency, ',' ORDER BY currency) AS currencies
FROM model_comparison
GROUP BY policy, model, channel
ORDER BY policy, model, credited_value DESC, channel

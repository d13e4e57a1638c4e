-- View model_comparison: each conversion under every model of its policy, side by side with
-- a last-touch baseline (current credit version only). Long format: one row per
-- (conversion, model, channel) for every model that credits the conversion and every channel
-- that any of those models, or the baseline, credits; a model that gives a channel nothing
-- shows credit 0, so each conversion forms a complete model x channel grid.
-- The baseline is computed, not read from a model: 100% to the conversion's latest eligible
-- touch (the latest credited touch under any model; ties broken by touch_event_id, as the
-- models do). Where the policy has a last_touch model the two agree; B2B policies have none,
-- and this gives every policy the same yardstick. A conversion without an eligible touch has
-- the baseline channel '(none)'.
--   conversion_id, policy, conversion_kind, conversion_time
--   value                 the conversion's value (currency: currency)
--   model                 attribution model
--   channel               credited channel
--   credit                the model's share of the conversion for this channel (0..1, summed
--                         over the channel's touches; participation may exceed 1)
--   credited_value        credit * value
--   last_touch_credit     1 if channel is the baseline's last-touch channel, else 0
--   last_touch_value      last_touch_credit * value
--   credit_change         credit - last_touch_credit (what the model moves to or from the
--                         channel relative to last touch)
--   value_change          credited_value - last_touch_value
--   currency
WITH current_credits AS (
    SELECT * FROM credits
),
conversion_facts AS (
    SELECT
        c.conversion_id,
        min(c.policy) AS policy,
        min(c.conversion_kind) AS conversion_kind,
        min(c.conversion_time) AS conversion_time,
        min(c.currency) AS currency,
        coalesce(max(v.value), 0) AS value
    FROM current_credits AS c
    LEFT JOIN conversions AS v USING (conversion_id)
    GROUP BY c.conversion_id
),
last_touches AS (
    SELECT conversion_id, channel
    FROM current_credits
    WHERE touch_event_id IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY conversion_id ORDER BY touch_time DESC, touch_event_id DESC
    ) = 1
),
baseline AS (
    SELECT f.conversion_id, coalesce(t.channel, '(none)') AS channel
    FROM conversion_facts AS f
    LEFT JOIN last_touches AS t USING (conversion_id)
),
by_model AS (
    SELECT conversion_id, model, channel,
        fsum(credit) AS credit, fsum(credited_value) AS credited_value
    FROM current_credits
    GROUP BY conversion_id, model, channel
),
grid AS (
    SELECT DISTINCT m.conversion_id, m.model, ch.channel
    FROM (SELECT DISTINCT conversion_id, model FROM by_model) AS m
    JOIN (
        SELECT conversion_id, channel FROM by_model
        UNION
        SELECT conversion_id, channel FROM baseline
    ) AS ch USING (conversion_id)
)
SELECT
    g.conversion_id,
    f.policy,
    f.conversion_kind,
    f.conversion_time,
    f.value,
    g.model,
    g.channel,
    coalesce(m.credit, 0) AS credit,
    coalesce(m.credited_value, 0) AS credited_value,
    CASE WHEN b.channel IS NOT NULL THEN 1.0 ELSE 0.0 END AS last_touch_credit,
    CASE WHEN b.channel IS NOT NULL THEN f.value ELSE 0.0 END AS last_touch_value,
    coalesce(m.credit, 0) - (CASE WHEN b.channel IS NOT NULL THEN 1.0 ELSE 0.0 END)
        AS credit_change,
    coalesce(m.credited_value, 0) - (CASE WHEN b.channel IS NOT NULL THEN f.value ELSE 0.0 END)
        AS value_change,
    f.currency
FROM grid AS g
JOIN conversion_facts AS f USING (conversion_id)
LEFT JOIN by_model AS m USING (conversion_id, model, channel)
LEFT JOIN baseline AS b USING (conversion_id, channel)
ORDER BY g.conversion_id, g.model, g.channel

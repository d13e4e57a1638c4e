-- View journey_explorer: the ordered touches of every conversion with each touch's credit
-- under each model of its policy (current credit version only). Long format: one row per
-- (conversion, touch, model); a model that gives the touch nothing shows credit 0, so
-- filtering one conversion_id gives the full touch x model grid:
--     SELECT * FROM journey_explorer WHERE conversion_id = 'purchase:1001'
--     ORDER BY position, model
-- (PIVOT ... ON model USING sum(credit) turns it wide). The touches are those credited under
-- any model, i.e. the eligible path after windowing and path cleaning; conversions without
-- an eligible touch have no rows.
--   conversion_id, policy, journey_key, conversion_kind, conversion_time
--   position              1-based place of the touch in the path, oldest first (ties by
--                         touch_event_id, as the models order them)
--   path_length           number of touches in the path
--   touch_event_id        the touch's event id (touchpoints.event_id)
--   touch_time            when the touch happened
--   days_before_conversion  (conversion_time - touch_time) in days
--   channel, campaign     the touch's channel and utm_campaign
--   kind                  interaction kind: visit, click, view, email, offline
--   person_key            who made the touch (the resolved person; for B2B accounts, tells
--                         the contacts of the buying committee apart)
--   model                 attribution model
--   credit                the model's share of the conversion for this touch
--   credited_value        credit times the conversion's value
--   currency
WITH current_credits AS (
    SELECT * FROM credits WHERE touch_event_id IS NOT NULL
),
path AS (
    SELECT
        conversion_id,
        touch_event_id,
        min(touch_time) AS touch_time,
        min(channel) AS channel,
        min(campaign) AS campaign
    FROM current_credits
    GROUP BY conversion_id, touch_event_id
),
positioned AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY conversion_id ORDER BY touch_time, touch_event_id)
            AS position,
        count(*) OVER (PARTITION BY conversion_id) AS path_length
    FROM path
),
conversion_facts AS (
    SELECT conversion_id, min(policy) AS policy, min(journey_key) AS journey_key,
        min(conversion_kind) AS conversion_kind, min(conversion_time) AS conversion_time,
        min(currency) AS currency
    FROM credits
    GROUP BY conversion_id
),
models AS (
    SELECT DISTINCT conversion_id, model FROM current_credits
),
touch_credits AS (
    SELECT conversion_id, touch_event_id, model,
        fsum(credit) AS credit, fsum(credited_value) AS credited_value
    FROM current_credits
    GROUP BY conversion_id, touch_event_id, model
)
SELECT
    p.conversion_id,
    f.policy,
    f.journey_key,
    f.conversion_kind,
    f.conversion_time,
    p.position,
    p.path_length,
    p.touch_event_id,
    p.touch_time,
    epoch(f.conversion_time - p.touch_time) / 86400.0 AS days_before_conversion,
    p.channel,
    p.campaign,
    t.kind,
    t.person_key,
    m.model,
    coalesce(c.credit, 0) AS credit,
    coalesce(c.credited_value, 0) AS credited_value,
    f.currency
FROM positioned AS p
JOIN conversion_facts AS f USING (conversion_id)
JOIN models AS m USING (conversion_id)
LEFT JOIN touch_credits AS c USING (conversion_id, touch_event_id, model)
LEFT JOIN touchpoints AS t ON t.event_id = p.touch_event_id
ORDER BY p.conversion_id, p.position, m.model

-- View customers: one row per customer, i.e. per journey with at least one revenue
-- conversion. A B2B customer is an account ('account:<id>' journeys), a B2C customer a person
-- ('person:<id>'); journey keys are the current ones (after identity merges).
-- Revenue conversions are every conversion kind except the pipeline stages lead_created and
-- opportunity_created: purchases, opportunity_won (closed-won deals) and any renewal or other
-- kind a config adds.
--   journey_key           the customer: 'account:<id>' or 'person:<id>'
--   segment               'b2b' for accounts, 'b2c' for persons
--   first_touch_time      time of the customer's earliest touch at or before their first
--                         revenue conversion, whatever the window (NULL: no touch known)
--   first_touch_channel   channel of that touch ('(none)' without one): the acquisition channel
--   first_touch_campaign  utm_campaign of that touch (NULL if untagged)
--   first_revenue_time    time of the first revenue conversion
--   last_revenue_time     time of the latest revenue conversion
--   revenue_conversions   number of revenue conversions (orders, won deals, renewals)
--   lifetime_value        sum of their values (currencies are not converted)
--   currencies            distinct currencies of those values, comma-separated
-- Touches are matched on the resolved identities of touchpoints: person_key for persons,
-- account_key for accounts (every contact's touches count for an account).
WITH revenue AS (
    SELECT *
    FROM conversions
    WHERE kind NOT IN ('lead_created', 'opportunity_created')
),
customer_totals AS (
    SELECT
        journey_key,
        CASE WHEN journey_key LIKE 'account:%' THEN 'b2b' ELSE 'b2c' END AS segment,
        min(time) AS first_revenue_time,
        max(time) AS last_revenue_time,
        count(*) AS revenue_conversions,
        fsum(value) AS lifetime_value,
        string_agg(DISTINCT currency, ',' ORDER BY currency) AS currencies
    FROM revenue
    GROUP BY journey_key
),
journey_touches AS (
    SELECT 'person:' || person_key AS journey_key, time, event_id, channel, campaign
    FROM touchpoints
    WHERE person_key IS NOT NULL
    UNION ALL
    SELECT 'account:' || account_key AS journey_key, time, event_id, channel, campaign
    FROM touchpoints
    WHERE account_key IS NOT NULL
),
first_touches AS (
    SELECT c.journey_key, t.time, t.channel, t.campaign
    FROM customer_totals AS c
    JOIN journey_touches AS t
        ON t.journey_key = c.journey_key AND t.time <= c.first_revenue_time
    QUALIFY row_number() OVER (PARTITION BY c.journey_key ORDER BY t.time, t.event_id) = 1
)
SELECT
    c.journey_key,
    c.segment,
    f.time AS first_touch_time,
    coalesce(f.channel, '(none)') AS first_touch_channel,
    f.campaign AS first_touch_campaign,
    c.first_revenue_time,
    c.last_revenue_time,
    c.revenue_conversions,
    c.lifetime_value,
    c.currencies
FROM customer_totals AS c
LEFT JOIN first_touches AS f USING (journey_key)
ORDER BY c.segment, c.lifetime_value DESC, c.journey_key

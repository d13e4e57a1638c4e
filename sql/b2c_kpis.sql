-- View b2c_kpis: B2C channel and campaign KPIs under every model of every B2C policy, over
-- the whole landed history (current credit version only).
-- One row per (policy, model, channel, campaign) for the policies policy_segments calls
-- 'b2c'. The window is the policy's: every policy has its own lookback, so comparing the
-- same model across policies (b2c: 7-day click, considered: 90 days) or across configs
-- (re-attribution) is the "window" comparison. Rows exist for every campaign with B2C credit,
-- B2C spend or B2C sessions, so a campaign that spent and sold nothing shows with ROAS 0.
--   policy                B2C policy (see policy_segments)
--   model                 attribution model of that policy
--   channel, campaign     the credited touch's channel and utm_campaign (NULL: untagged);
--                         channel '(none)' holds conversions that had no eligible touch
--   sessions              website traffic: visit touches (one per session) of this channel
--                         and campaign by people not linked to a B2B account; the same for
--                         every policy and model (traffic does not depend on attribution)
--   impressions, clicks   summed from the spend view over all dates, for campaigns whose
--                         campaign_segments.segment is 'b2c' (else NULL)
--   ctr                   clicks / impressions (NULL without impressions)
--   credited_conversions  sum of the model's fractional credit: conversions attributed here
--   credited_revenue      sum of credited value (the conversion's value times the credit)
--   cost                  spend summed over all dates, B2C campaigns only (else NULL); the
--                         full cost shows under every B2C policy, it is not split between them
--   roas                  credited_revenue / cost (NULL without cost)
--   cpa                   cost / credited_conversions (NULL without conversions or cost)
--   currencies            distinct currencies of the summed credits and spend, comma-separated;
--                         nothing is converted, so more than one means the sums mix currencies
-- The participation model gives every touch 100%: its conversions and revenue count the
-- conversions a channel took part in and do not add up across channels.
WITH b2c_credits AS (
    SELECT c.*
    FROM credits AS c
    JOIN policy_segments AS p USING (policy)
    WHERE p.segment = 'b2c'
),
credited AS (
    SELECT
        policy, model, channel, campaign,
        fsum(credit) AS credited_conversions,
        fsum(credited_value) AS credited_revenue,
        list(DISTINCT currency) FILTER (WHERE currency IS NOT NULL) AS currencies
    FROM b2c_credits
    GROUP BY policy, model, channel, campaign
),
models AS (
    SELECT DISTINCT policy, model FROM b2c_credits
),
b2c_spend AS (
    SELECT
        s.channel, s.campaign,
        sum(s.impressions) AS impressions,
        sum(s.clicks) AS clicks,
        fsum(s.cost) AS cost,
        list(DISTINCT s.currency) AS currencies
    FROM spend AS s
    JOIN campaign_segments AS g
        ON g.channel = s.channel AND g.campaign IS NOT DISTINCT FROM s.campaign
    WHERE g.segment = 'b2c'
    GROUP BY s.channel, s.campaign
),
sessions AS (
    SELECT channel, campaign, count(*) AS sessions
    FROM touchpoints
    WHERE kind = 'visit' AND account_key IS NULL
    GROUP BY channel, campaign
),
row_keys AS (
    SELECT policy, model, channel, campaign FROM credited
    UNION
    SELECT m.policy, m.model, s.channel, s.campaign FROM models AS m CROSS JOIN b2c_spend AS s
    UNION
    SELECT m.policy, m.model, v.channel, v.campaign FROM models AS m CROSS JOIN sessions AS v
)
SELECT
    k.policy,
    k.model,
    k.channel,
    k.campaign,
    coalesce(v.sessions, 0) AS sessions,
    s.impressions,
    s.clicks,
    s.clicks / nullif(s.impressions, 0) AS ctr,
    coalesce(c.credited_conversions, 0) AS credited_conversions,
    coalesce(c.credited_revenue, 0) AS credited_revenue,
    s.cost,
    coalesce(c.credited_revenue, 0) / nullif(s.cost, 0) AS roas,
    s.cost / nullif(c.credited_conversions, 0) AS cpa,
    nullif(array_to_string(list_sort(list_distinct(
        list_concat(coalesce(c.currencies, []), coalesce(s.currencies, [])))), ','), '')
        AS currencies
FROM row_keys AS k
LEFT JOIN credited AS c
    ON c.policy = k.policy AND c.model = k.model AND c.channel = k.channel
    AND c.campaign IS NOT DISTINCT FROM k.campaign
LEFT JOIN b2c_spend AS s
    ON s.channel = k.channel AND s.campaign IS NOT DISTINCT FROM k.campaign
LEFT JOIN sessions AS v
    ON v.channel = k.channel AND v.campaign IS NOT DISTINCT FROM k.campaign
ORDER BY k.policy, k.model, credited_revenue DESC, k.channel, k.campaign NULLS FIRST

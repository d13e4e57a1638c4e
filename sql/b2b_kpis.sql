-- View b2b_kpis: B2B funnel and revenue KPIs per policy, model and channel, over the whole
-- landed history (current credit version only), for the policies policy_segments calls
-- 'b2b' (account journeys: the touches of every contact of the account count).
-- The funnel stages are the conversion kinds lead_created, opportunity_created and
-- opportunity_won (the default stage kinds of attribution/policy.py). Channel '(none)' holds
-- conversions that had no eligible touch. Rows exist for every channel with B2B credit or
-- B2B spend.
--   policy                     B2B policy (see policy_segments)
--   model                      attribution model of that policy
--   channel                    the credited touch's channel
--   leads                      leads generated: sum of the model's credit over lead_created
--                              conversions
--   opportunities              sum of credit over opportunity_created conversions
--   won_deals                  sum of credit over opportunity_won conversions
--   lead_to_opportunity_rate   of the leads credited to this channel, the credit-weighted share
--                              that progressed: sum(credit of leads whose journey (the account)
--                              has an opportunity_created conversion at or after the lead) /
--                              leads. A cohort rate, so it stays within 0..1 whatever the model
--   lead_to_customer_rate      the same with an opportunity_won conversion at or after the lead
--                              (the account became a customer); several leads of an account
--                              that closes all count as converted
--   pipeline                   credited pipeline: sum of credited value of opportunity_created
--                              conversions (the opportunity amount times the credit)
--   won_revenue                credited closed-won revenue: sum of credited value of
--                              opportunity_won conversions
--   avg_days_to_close          over the won deals credited to the channel, the credit-weighted
--                              average of days from the deal's first eligible touch (the
--                              earliest touch credited under any model, i.e. inside the policy's
--                              lookback) to the close
--   avg_touches_per_won_deal   credit-weighted average number of distinct touches credited
--                              under any model of the deal (every eligible touch when the
--                              policy has linear or time_decay)
--   avg_contacts_per_won_deal  credit-weighted average number of distinct people behind those
--                              touches (the buying committee that engaged)
--   cost                       spend summed over all dates of this channel's campaigns whose
--                              campaign_segments.segment is 'b2b' (NULL without such spend)
--   cost_per_lead              cost / leads
--   roas                       won_revenue / cost
--   currencies                 distinct currencies of the summed credits and spend
-- Rates and averages are NULL when their denominator is 0. Under the participation model
-- (100% to every touch) counts and sums are not additive across channels.
WITH b2b_credits AS (
    SELECT c.*
    FROM credits AS c
    JOIN policy_segments AS p USING (policy)
    WHERE p.segment = 'b2b'
),
lead_progress AS (
    SELECT
        l.conversion_id,
        coalesce(bool_or(o.kind = 'opportunity_created'), false) AS became_opportunity,
        coalesce(bool_or(o.kind = 'opportunity_won'), false) AS became_customer
    FROM conversions AS l
    LEFT JOIN conversions AS o
        ON o.journey_key = l.journey_key AND o.time >= l.time
        AND o.kind IN ('opportunity_created', 'opportunity_won')
    WHERE l.kind = 'lead_created'
    GROUP BY l.conversion_id
),
deal_touches AS (
    SELECT DISTINCT conversion_id, conversion_time, touch_event_id, touch_time
    FROM b2b_credits
    WHERE conversion_kind = 'opportunity_won' AND touch_event_id IS NOT NULL
),
won_deals AS (
    SELECT
        d.conversion_id,
        epoch(min(d.conversion_time) - min(d.touch_time)) / 86400.0 AS days_to_close,
        count(DISTINCT d.touch_event_id) AS touches,
        count(DISTINCT t.person_key) AS contacts
    FROM deal_touches AS d
    LEFT JOIN touchpoints AS t ON t.event_id = d.touch_event_id
    GROUP BY d.conversion_id
),
credited AS (
    SELECT
        c.policy, c.model, c.channel,
        fsum(c.credit) FILTER (WHERE c.conversion_kind = 'lead_created') AS leads,
        fsum(c.credit) FILTER (WHERE c.conversion_kind = 'lead_created' AND p.became_opportunity)
            AS leads_to_opportunity,
        fsum(c.credit) FILTER (WHERE c.conversion_kind = 'lead_created' AND p.became_customer)
            AS leads_to_customer,
        fsum(c.credit) FILTER (WHERE c.conversion_kind = 'opportunity_created') AS opportunities,
        fsum(c.credited_value) FILTER (WHERE c.conversion_kind = 'opportunity_created')
            AS pipeline,
        fsum(c.credit) FILTER (WHERE c.conversion_kind = 'opportunity_won') AS won_deals,
        fsum(c.credited_value) FILTER (WHERE c.conversion_kind = 'opportunity_won')
            AS won_revenue,
        fsum(c.credit * w.days_to_close) FILTER (WHERE w.conversion_id IS NOT NULL)
            / nullif(fsum(c.credit) FILTER (WHERE w.conversion_id IS NOT NULL), 0)
            AS avg_days_to_close,
        fsum(c.credit * w.touches) FILTER (WHERE w.conversion_id IS NOT NULL)
            / nullif(fsum(c.credit) FILTER (WHERE w.conversion_id IS NOT NULL), 0)
            AS avg_touches_per_won_deal,
        fsum(c.credit * w.contacts) FILTER (WHERE w.conversion_id IS NOT NULL)
            / nullif(fsum(c.credit) FILTER (WHERE w.conversion_id IS NOT NULL), 0)
            AS avg_contacts_per_won_deal,
        list(DISTINCT c.currency) FILTER (WHERE c.currency IS NOT NULL) AS currencies
    FROM b2b_credits AS c
    LEFT JOIN lead_progress AS p USING (conversion_id)
    LEFT JOIN won_deals AS w USING (conversion_id)
    GROUP BY c.policy, c.model, c.channel
),
models AS (
    SELECT DISTINCT policy, model FROM b2b_credits
),
b2b_spend AS (
    SELECT s.channel, fsum(s.cost) AS cost, list(DISTINCT s.currency) AS currencies
    FROM spend AS s
    JOIN campaign_segments AS g
        ON g.channel = s.channel AND g.campaign IS NOT DISTINCT FROM s.campaign
    WHERE g.segment = 'b2b'
    GROUP BY s.channel
),
row_keys AS (
    SELECT policy, model, channel FROM credited
    UNION
    SELECT m.policy, m.model, s.channel FROM models AS m CROSS JOIN b2b_spend AS s
)
SELECT
    k.policy,
    k.model,
    k.channel,
    coalesce(c.leads, 0) AS leads,
    coalesce(c.opportunities, 0) AS opportunities,
    coalesce(c.won_deals, 0) AS won_deals,
    coalesce(c.leads_to_opportunity, 0) / nullif(c.leads, 0) AS lead_to_opportunity_rate,
    coalesce(c.leads_to_customer, 0) / nullif(c.leads, 0) AS lead_to_customer_rate,
    coalesce(c.pipeline, 0) AS pipeline,
    coalesce(c.won_revenue, 0) AS won_revenue,
    c.avg_days_to_close,
    c.avg_touches_per_won_deal,
    c.avg_contacts_per_won_deal,
    s.cost,
    s.cost / nullif(c.leads, 0) AS cost_per_lead,
    coalesce(c.won_revenue, 0) / nullif(s.cost, 0) AS roas,
    nullif(array_to_string(list_sort(list_distinct(
        list_concat(coalesce(c.currencies, []), coalesce(s.currencies, [])))), ','), '')
        AS currencies
FROM row_keys AS k
LEFT JOIN credited AS c USING (policy, model, channel)
LEFT JOIN b2b_spend AS s ON s.channel = k.channel
ORDER BY k.policy, k.model, won_revenue DESC, pipeline DESC, leads DESC, k.channel

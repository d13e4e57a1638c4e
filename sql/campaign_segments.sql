-- View campaign_segments: which side of the business each campaign's spend and traffic belong
-- to. Spend rows carry no audience, and one channel (Paid Social, Email) often runs both B2C
-- and B2B campaigns; a campaign is B2B when most of its tracked touches come from people
-- linked to an account (a `group` call), so its cost is charged to the B2B KPIs only and is
-- never counted on both sides.
-- One row per (channel, campaign) seen in the spend view or in touchpoints; campaign is NULL
-- for untagged traffic (Organic Search, Direct, ...) and for channel-level spend rows.
--   channel      channel name (GA4 channel group or a configured channel)
--   campaign     utm_campaign of the touches / campaign of the spend rows; NULL if none
--   b2c_touches  touches (any kind) by people not linked to an account
--   b2b_touches  touches (any kind) by people linked to an account (touchpoints.account_key)
--   segment      'b2b' if b2b_touches > b2c_touches, else 'b2c' (a campaign with spend but no
--                tracked touches counts as B2C)
WITH touch_counts AS (
    SELECT
        channel,
        campaign,
        count(*) FILTER (WHERE account_key IS NULL) AS b2c_touches,
        count(*) FILTER (WHERE account_key IS NOT NULL) AS b2b_touches
    FROM touchpoints
    GROUP BY channel, campaign
),
campaigns AS (
    SELECT channel, campaign FROM spend
    UNION
    SELECT channel, campaign FROM touch_counts
)
SELECT
    k.channel,
    k.campaign,
    coalesce(t.b2c_touches, 0) AS b2c_touches,
    coalesce(t.b2b_touches, 0) AS b2b_touches,
    CASE WHEN coalesce(t.b2b_touches, 0) > coalesce(t.b2c_touches, 0) THEN 'b2b' ELSE 'b2c' END
        AS segment
FROM campaigns AS k
LEFT JOIN touch_counts AS t
    ON t.channel = k.channel AND t.campaign IS NOT DISTINCT FROM k.campaign
ORDER BY k.channel, k.campaign NULLS FIRST

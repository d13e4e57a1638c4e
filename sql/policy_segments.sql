-- View policy_segments: whether each policy's conversions are B2B (account journeys) or B2C
-- (person journeys), read from the current credits. The warehouse does not store the config,
-- so the journey keys it produced tell: a policy configured with `journey = "account"` keys
-- its journeys 'account:<id>' (falling back to 'person:<id>' only for a conversion whose
-- account is unknown).
--   policy       policy name, as in credits.policy
--   segment      'b2b' if any current credit of the policy is on an account journey, else 'b2c'
--   conversions  distinct conversions currently credited under the policy
-- b2c_kpis covers the 'b2c' policies, b2b_kpis the 'b2b' ones.
SELECT
    policy,
    CASE WHEN bool_or(journey_key LIKE 'account:%') THEN 'b2b' ELSE 'b2c' END AS segment,
    count(DISTINCT conversion_id) AS conversions
FROM credits
GROUP BY policy
ORDER BY policy

-- View conversions: one row per conversion_id, the earliest by time then event_id (the same
-- purchase sent by pixel and server lands twice under one conversion_id). The journey_key
-- (and policy) are those of the conversion's current credits: the stream re-routes a
-- conversion when identities merge, and only the latest credit version says where it ended.
-- Placeholders: {table:<name>} = read_parquet of that table's date partitions; see sql/__init__.py.
WITH unique_conversions AS (
    SELECT *
    FROM {table:conversions}
    QUALIFY row_number() OVER (
        PARTITION BY conversion_id
        ORDER BY time, event_id,
            -- a deterministic pick among rows that also share time and event_id
            hash(kind, event, policy, value, currency, anonymous_id, person_id, account_id,
                journey_key, properties)
    ) = 1
),
current_routing AS (
    SELECT conversion_id, min(journey_key) AS journey_key, min(policy) AS policy
    FROM credits
    GROUP BY conversion_id
)
SELECT c.* REPLACE (
    coalesce(r.journey_key, c.journey_key) AS journey_key,
    coalesce(r.policy, c.policy) AS policy
)
FROM unique_conversions AS c
LEFT JOIN current_routing AS r USING (conversion_id)

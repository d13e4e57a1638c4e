-- View credit_audit: how each conversion's credits changed from version to version and why.
-- The only analyst view that reads every version (credit_history), not just the latest.
-- One row per (conversion, version, model, channel), covering every model and channel of
-- that version or of the previous one: a channel (or model) that lost all its credit in a
-- version shows credit 0 with a negative change.
--   conversion_id
--   version               credit version of the conversion (1 = first attribution)
--   previous_version      the conversion's version before this one (NULL for the first)
--   is_latest             true for the conversion's current version (what other views show)
--   reason                why this version was written: initial | late_touch (a touch arrived
--                         after the conversion was credited) | identity_merge (identities
--                         merged, so the journey gained touches or moved) | reattribution
--                         (recomputed under a new config); rows that `attribution
--                         datadriven` adds to a version (reason 'datadriven') do not change
--                         the version's reason
--   policy, journey_key   the conversion's policy and journey in this version
--   previous_policy, previous_journey_key   the same in the previous version (a change
--                         shows a re-routing, e.g. after an identity merge)
--   touches               distinct touches credited in this version (any model)
--   previous_touches      the same in the previous version
--   model, channel
--   credit                the model's share of the conversion for the channel in this version
--                         (0 if the channel no longer gets any)
--   previous_credit       the same in the previous version (0 if it got none there; NULL
--                         for the first version)
--   credit_change         credit - previous_credit (NULL for the first version)
--   credited_value, previous_credited_value, value_change   the same for credited value
WITH shares AS (
    SELECT conversion_id, version, model, channel,
        fsum(credit) AS credit, fsum(credited_value) AS credited_value
    FROM credit_history
    GROUP BY conversion_id, version, model, channel
),
versions AS (
    SELECT
        conversion_id,
        version,
        -- data-driven rows join the version they were computed from; not its cause
        coalesce(min(reason) FILTER (WHERE reason <> 'datadriven'), min(reason)) AS reason,
        min(policy) AS policy,
        min(journey_key) AS journey_key,
        count(DISTINCT touch_event_id) AS touches
    FROM credit_history
    GROUP BY conversion_id, version
),
linked AS (
    SELECT
        *,
        lag(version) OVER w AS previous_version,
        lag(policy) OVER w AS previous_policy,
        lag(journey_key) OVER w AS previous_journey_key,
        lag(touches) OVER w AS previous_touches,
        version = max(version) OVER (PARTITION BY conversion_id) AS is_latest
    FROM versions
    WINDOW w AS (PARTITION BY conversion_id ORDER BY version)
),
row_keys AS (
    -- every model and channel of this version and of the previous one
    SELECT l.conversion_id, l.version, s.model, s.channel
    FROM linked AS l
    JOIN shares AS s ON s.conversion_id = l.conversion_id AND s.version = l.version
    UNION
    SELECT l.conversion_id, l.version, s.model, s.channel
    FROM linked AS l
    JOIN shares AS s ON s.conversion_id = l.conversion_id AND s.version = l.previous_version
)
SELECT
    k.conversion_id,
    k.version,
    l.previous_version,
    l.is_latest,
    l.reason,
    l.policy,
    l.journey_key,
    l.previous_policy,
    l.previous_journey_key,
    l.touches,
    l.previous_touches,
    k.model,
    k.channel,
    coalesce(cur.credit, 0) AS credit,
    CASE WHEN l.previous_version IS NOT NULL THEN coalesce(prev.credit, 0) END
        AS previous_credit,
    coalesce(cur.credit, 0) - previous_credit AS credit_change,
    coalesce(cur.credited_value, 0) AS credited_value,
    CASE WHEN l.previous_version IS NOT NULL THEN coalesce(prev.credited_value, 0) END
        AS previous_credited_value,
    coalesce(cur.credited_value, 0) - previous_credited_value AS value_change
FROM row_keys AS k
JOIN linked AS l USING (conversion_id, version)
LEFT JOIN shares AS cur
    ON cur.conversion_id = k.conversion_id AND cur.version = k.version
    AND cur.model = k.model AND cur.channel = k.channel
LEFT JOIN shares AS prev
    ON prev.conversion_id = k.conversion_id AND prev.version = l.previous_version
    AND prev.model = k.model AND prev.channel = k.channel
ORDER BY k.conversion_id, k.version, k.model, k.channel

-- View touchpoints: one row per touch event_id (re-landed duplicates are identical), plus
-- the resolved person_key / account_key from the identities view for
-- coalesce(person_id, anonymous_id). A visit touch withdrawn by a later re-cut of its
-- device's sessions (a late page started the session earlier; touch_withdrawals, latest
-- revision) is left out.
-- Ids the identity map does not know fall back to person_id/anonymous_id and account_id.
-- Placeholders: {table:<name>} = read_parquet of that table's date partitions; see sql/__init__.py.
WITH withdrawn AS (
    SELECT event_id
    FROM {table:touch_withdrawals}
    QUALIFY row_number() OVER (
        PARTITION BY touch_date, event_id ORDER BY revision DESC) = 1
        AND withdrawn
),
unique_touches AS (
    SELECT *
    FROM {table:touches}
    WHERE event_id NOT IN (SELECT event_id FROM withdrawn)
    QUALIFY row_number() OVER (
        -- an event's time, so its touch_date, is fixed: the date lets a filter on it prune
        PARTITION BY touch_date, event_id
        -- the hash only makes the pick deterministic, and sorts faster than 10 columns
        ORDER BY hash(time, anonymous_id, person_id, account_id, channel, source, medium,
            campaign, kind, properties)
    ) = 1
)
SELECT
    t.*,
    coalesce(i.person_key, t.person_id, t.anonymous_id) AS person_key,
    coalesce(i.account_key, t.account_id) AS account_key
FROM unique_touches AS t
LEFT JOIN identities AS i ON i.id = coalesce(t.person_id, t.anonymous_id)

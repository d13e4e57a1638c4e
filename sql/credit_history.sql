-- View credit_history: every version of every credit (audit trail of re-attribution), with
-- re-landed duplicates removed: one row per (conversion_id, version, policy, model,
-- touch_event_id); a null touch_event_id (no eligible touch) counts as one key.
-- conversion_date (the UTC date of conversion_time, the partition the rows are stored in) is
-- the same for every row of a version, so it leads the window's key: a filter on it then
-- reaches the Parquet scan and skips the other days' files.
-- Placeholders: {table:<name>} = read_parquet of that table's date partitions; see sql/__init__.py.
SELECT *
FROM {table:credits}
QUALIFY row_number() OVER (
    PARTITION BY conversion_date, conversion_id, version, policy, model, touch_event_id
    -- the hash only makes the pick deterministic; it sorts 1M rows far faster than 10 columns
    ORDER BY hash(conversion_kind, journey_key, touch_time, channel, campaign, credit,
        credited_value, currency, conversion_time, reason)
) = 1

-- View credit_history: every version of every credit (audit trail of re-attribution), with
-- re-landed duplicates removed: one row per (conversion_id, version, policy, model,
-- touch_event_id); a null touch_event_id (no eligible touch) counts as one key.
-- Placeholders: {table:<name>} = read_parquet of that table's files; see sql/__init__.py.
SELECT *
FROM {table:credits}
QUALIFY row_number() OVER (
    PARTITION BY conversion_id, version, policy, model, touch_event_id
    -- the hash only makes the pick deterministic; it sorts 1M rows far faster than 10 columns
    ORDER BY hash(conversion_kind, journey_key, touch_time, channel, campaign, credit,
        credited_value, currency, conversion_time, reason)
) = 1

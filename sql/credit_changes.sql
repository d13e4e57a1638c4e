-- View credit_changes: the credit_audit view summed per reason, policy, model and channel over
-- every re-credit (versions after the first): how much late touches, identity merges and
-- re-attributions moved between channels, e.g. to compare old and new after
-- `attribution reattribute`.
--   reason          why the versions were written (late_touch, identity_merge, reattribution)
--   policy, model, channel   policy of the new version, model and channel
--   conversions     distinct conversions re-credited for this reason with a row here
--   credit_change   sum of credit_change: conversions gained (+) or lost (-) by the channel
--   value_change    sum of value_change: credited value gained or lost
--   credited_value  sum of the channel's credited value in the new versions
--   previous_credited_value  the same in the versions they replaced
SELECT
    reason,
    policy,
    model,
    channel,
    count(DISTINCT conversion_id) AS conversions,
    fsum(credit_change) AS credit_change,
    fsum(value_change) AS value_change,
    fsum(credited_value) AS credited_value,
    fsum(previous_credited_value) AS previous_credited_value
FROM credit_audit
WHERE previous_version IS NOT NULL
GROUP BY reason, policy, model, channel
ORDER BY reason, policy, model, value_change, channel

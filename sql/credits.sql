-- View credits: the current attribution, i.e. only the rows of the latest version of each
-- conversion_id (max version over all its rows, whatever the policy or model).
-- The window is per conversion_date and conversion_id: a conversion's date does not change
-- between versions, so this is the latest version per conversion, and a filter on
-- conversion_date prunes the files of other days (see channel_performance_daily).
-- Placeholders: {table:<name>} = read_parquet of that table's date partitions; see sql/__init__.py.
SELECT *
FROM credit_history
QUALIFY version = max(version) OVER (PARTITION BY conversion_date, conversion_id)

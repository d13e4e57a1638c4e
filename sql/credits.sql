-- View credits: the current attribution, i.e. only the rows of the latest version of each
-- conversion_id (max version over all its rows, whatever the policy or model).
-- Placeholders: {table:<name>} = read_parquet of that table's files; see sql/__init__.py.
SELECT *
FROM credit_history
QUALIFY version = max(version) OVER (PARTITION BY conversion_id)

-- View rejected: input that could not be parsed or normalised, one row per distinct
-- (source, position, reason, raw), stamped with the first time it landed.
-- Placeholders: {table:<name>} = read_parquet of that table's date partitions; see sql/__init__.py.
SELECT source, "position", reason, raw, min(landed_at) AS landed_at
FROM {table:rejected}
GROUP BY source, "position", reason, raw
ORDER BY landed_at, source, "position"

-- View raw_conversions: every landed conversions row as written, duplicates included (for debugging landing).
-- Placeholders: {table:<name>} = read_parquet of that table's date partitions; see sql/__init__.py.
SELECT * FROM {table:conversions}

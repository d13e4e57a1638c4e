-- View raw_touches: every landed touches row as written, duplicates included (for debugging landing).
-- Placeholders: {table:<name>} = read_parquet of that table's date partitions; see sql/__init__.py.
SELECT * FROM {table:touches}

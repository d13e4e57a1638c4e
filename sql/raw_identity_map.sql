-- View raw_identity_map: every landed identity_map row as written, duplicates included (for debugging landing).
-- Placeholders: {table:<name>} = read_parquet of that table's date partitions; see sql/__init__.py.
SELECT * FROM {table:identity_map}

-- View raw_erasures: every landed erasure audit row as written (for debugging landing).
-- Placeholders: {table:<name>} = read_parquet of that table's date partitions; see sql/__init__.py.
SELECT * FROM {table:erasures}

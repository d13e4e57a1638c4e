-- View raw_datadriven_fit: every landed datadriven_fit row as written, duplicates included (for debugging landing).
-- Placeholders: {table:<name>} = read_parquet of that table's files; see sql/__init__.py.
SELECT * FROM {table:datadriven_fit}

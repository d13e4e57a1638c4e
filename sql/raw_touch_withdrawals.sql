-- View raw_touch_withdrawals: every landed touch_withdrawals row as written, duplicates included (for debugging landing).
-- Placeholders: {table:<name>} = read_parquet of that table's files; see sql/__init__.py.
SELECT * FROM {table:touch_withdrawals}

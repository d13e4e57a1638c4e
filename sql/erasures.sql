-- View erasures: the audit of `attribution erase`, one row per erasure. It records what kind
-- of id was erased and how many rows went, never the ids themselves.
-- Placeholders: {table:<name>} = read_parquet of that table's date partitions; see sql/__init__.py.
SELECT erasure_id, requested_at, subject, ids_erased, rows_removed, files_rewritten,
       stream_state, min(landed_at) AS landed_at
FROM {table:erasures}
GROUP BY ALL
ORDER BY requested_at

-- View spend: one row per (date, channel, campaign); the last landed wins, by the landed_at
-- column that warehouse.landing.land() stamps, then by file name and row position in the file
-- (a corrected spend export simply lands again).
-- Placeholders: {files:<name>} = glob of that table's files, {hive:<name>} = options reading
-- its date partitions; see sql/__init__.py.
SELECT date, channel, campaign, cost, impressions, clicks, currency, landed_at
FROM read_parquet({files:spend}, {hive:spend}, filename = true, file_row_number = true)
QUALIFY row_number() OVER (
    PARTITION BY spend_date, date, channel, campaign
    ORDER BY landed_at DESC, filename DESC, file_row_number DESC
) = 1

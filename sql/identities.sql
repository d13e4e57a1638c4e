-- View identities: the resolved identity of every anonymous/user id; latest as_of wins
-- (ties broken by person_key, account_key so the answer is deterministic).
-- Placeholders: {table:<name>} = read_parquet of that table's date partitions; see sql/__init__.py.
SELECT id, person_key, account_key, as_of
FROM {table:identity_map}
QUALIFY row_number() OVER (
    PARTITION BY id ORDER BY as_of DESC, person_key, account_key NULLS LAST
) = 1

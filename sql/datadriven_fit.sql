-- View datadriven_fit: how the landed rows of each data-driven model (`attribution
-- datadriven`) add up against the model, per channel, from the latest run of each
-- (policy, model). The rows are fitted to both margins at once (each conversion sums to 1
-- and to its value; each channel to the model's totals); when the model asks a channel set
-- for more than the conversions on its paths can give, the conversions' sums still hold and
-- the gaps show how far each channel is from the model.
--   policy, model         the policy and the model (markov_o1 .. markov_o4, shapley)
--   channel               a channel on the model's paths
--   weight                the model's channel weight (Markov removal effect, Shapley value)
--   model_conversions     the model's conversions for the channel
--   credit                landed: sum of the channel's credit over the model's rows
--   conversions_gap       credit - model_conversions (0 to rounding when fitted)
--   conversions_on_path   conversions whose path holds the channel: the most it can get
--   model_value           the model's value for the channel (Markov: value removal effects;
--                         Shapley: Shapley value of the value game)
--   credited_value        landed: sum of the channel's credited_value
--   value_gap             credited_value - model_value
--   value_on_path         value of the conversions whose path holds the channel
--   fitted                both gaps are 0 to a relative 1e-9
--   landed_at             when the run landed
-- Placeholders: {table:<name>} = read_parquet of that table's files; see sql/__init__.py.
SELECT *
FROM (
    SELECT *
    FROM {table:datadriven_fit}
    QUALIFY landed_at = max(landed_at) OVER (PARTITION BY policy, model)
)
-- a run's file may be landed twice (compaction crashed between its two steps): keep one
QUALIFY row_number() OVER (PARTITION BY policy, model, channel ORDER BY credit) = 1

-- Rows written before upstream usage was range-checked could hold impossible counts (an upstream
-- that reported 2^64-1 tokens was recorded as 9.2e18 tokens and nano-dollars), which made every
-- sum over them overflow. New rows are clamped when written (switchboard_gateway::usage); this
-- brings old ones to the same limits: 2^28 tokens of each kind and 2^50 nano-dollars per row.
UPDATE usage_ledger SET input_tokens = 268435456 WHERE input_tokens > 268435456;
UPDATE usage_ledger SET cached_input_tokens = 268435456 WHERE cached_input_tokens > 268435456;
UPDATE usage_ledger SET cache_write_tokens = 268435456 WHERE cache_write_tokens > 268435456;
UPDATE usage_ledger SET output_tokens = 268435456 WHERE output_tokens > 268435456;
UPDATE usage_ledger SET cost_nanos = 1125899906842624 WHERE cost_nanos > 1125899906842624;

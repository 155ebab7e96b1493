//! Token usage as providers report it, normalised, and its cost.
//!
//! OpenAI's `prompt_tokens` includes cached tokens; Anthropic's `input_tokens` excludes cache
//! reads and writes. Both normalise to disjoint counts so each token is priced exactly once.

use serde_json::Value;
use switchboard_crds::config::Pricing;
use switchboard_crds::decimal::NanoUsd;

/// Disjoint token counts for one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// Input tokens billed at the input price (not read from or written to a cache).
    pub input: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cached_input: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write: u64,
    pub output: u64,
}

impl TokenUsage {
    /// Reads an OpenAI `usage` object (as produced by every adapter). The Anthropic adapter keeps
    /// `cache_creation_input_tokens` beside it so cache writes can be priced.
    pub fn from_openai(usage: &Value) -> Option<TokenUsage> {
        // `get` rather than `pointer`, which allocates for every path segment.
        let count = |value: Option<&Value>| value.and_then(Value::as_u64).unwrap_or(0);
        if !usage.is_object() {
            return None;
        }
        let prompt = count(usage.get("prompt_tokens"));
        let details = usage.get("prompt_tokens_details");
        let cached_input = count(details.and_then(|d| d.get("cached_tokens"))).min(prompt);
        let cache_write = count(usage.get("cache_creation_input_tokens")).min(prompt - cached_input);
        Some(TokenUsage {
            input: prompt - cached_input - cache_write,
            cached_input,
            cache_write,
            output: count(usage.get("completion_tokens")),
        })
    }

    pub fn total(&self) -> u64 {
        self.input + self.cached_input + self.cache_write + self.output
    }

    /// The cost at the model's prices.
    pub fn cost(&self, pricing: &Pricing) -> NanoUsd {
        pricing.input.per_million_times(self.input)
            + pricing.cached_input.per_million_times(self.cached_input)
            + pricing.cache_write.per_million_times(self.cache_write)
            + pricing.output.per_million_times(self.output)
    }
}

impl std::ops::Add for TokenUsage {
    type Output = TokenUsage;

    fn add(self, other: TokenUsage) -> TokenUsage {
        TokenUsage {
            input: self.input + other.input,
            cached_input: self.cached_input + other.cached_input,
            cache_write: self.cache_write + other.cache_write,
            output: self.output + other.output,
        }
    }
}

/// A rough token count (four characters a token) for text whose usage the provider did not report.
pub fn estimate_tokens(text_chars: usize) -> u64 {
    text_chars.div_ceil(4) as u64
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pricing() -> Pricing {
        Pricing {
            input: NanoUsd::parse("3").unwrap(),
            output: NanoUsd::parse("15").unwrap(),
            cached_input: NanoUsd::parse("0.30").unwrap(),
            cache_write: NanoUsd::parse("3.75").unwrap(),
        }
    }

    #[test]
    fn openai_cached_tokens_are_not_billed_twice() {
        let usage = TokenUsage::from_openai(&json!({
            "prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100,
            "prompt_tokens_details": {"cached_tokens": 800}
        }))
        .unwrap();
        assert_eq!(usage, TokenUsage { input: 200, cached_input: 800, cache_write: 0, output: 100 });
        // 200*3 + 800*0.30 + 100*15 = 600 + 240 + 1500 = 2340 USD per 1M -> 0.00234 USD
        assert_eq!(usage.cost(&pricing()), NanoUsd(2_340_000));
    }

    #[test]
    fn anthropic_cache_writes_are_priced_as_writes() {
        let usage = TokenUsage::from_openai(&json!({
            "prompt_tokens": 1500, "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 1000}, "cache_creation_input_tokens": 400
        }))
        .unwrap();
        assert_eq!(usage, TokenUsage { input: 100, cached_input: 1000, cache_write: 400, output: 10 });
        assert_eq!(usage.cost(&pricing()), NanoUsd(300_000 + 300_000 + 1_500_000 + 150_000));
    }

    #[test]
    fn missing_usage_is_none_and_inconsistent_counts_are_clamped() {
        assert_eq!(TokenUsage::from_openai(&Value::Null), None);
        let usage = TokenUsage::from_openai(
            &json!({"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 9}}),
        );
        assert_eq!(usage, Some(TokenUsage { input: 0, cached_input: 5, cache_write: 0, output: 0 }));
    }

    #[test]
    fn estimates_round_up() {
        assert_eq!(estimate_tokens(0), 0);
        assert_eq!(estimate_tokens(9), 3);
    }
}

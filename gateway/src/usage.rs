//! Token usage as providers report it, normalised, and its cost.
//!
//! OpenAI's `prompt_tokens` includes cached tokens; Anthropic's `input_tokens` excludes cache
//! reads and writes. Both normalise to disjoint counts so each token is priced exactly once.

use serde_json::Value;
use switchboard_crds::config::Pricing;
use switchboard_crds::decimal::NanoUsd;

use crate::chat_request::{ChatRequest, Content};

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
    ///
    /// Upstream numbers are hostile: a count that is negative, fractional or not a number makes
    /// the whole usage unusable (`None`, so the gateway estimates instead, and says so in the
    /// log); a count above [`MAX_TOKENS`] is clamped to it (see [`TokenUsage::is_clamped`]).
    pub fn from_openai(usage: &Value) -> Option<TokenUsage> {
        if !usage.is_object() {
            return None;
        }
        // `get` rather than `pointer`, which allocates for every path segment.
        let details = usage.get("prompt_tokens_details");
        let counts = [
            usage.get("prompt_tokens"),
            details.and_then(|d| d.get("cached_tokens")),
            usage.get("cache_creation_input_tokens"),
            usage.get("completion_tokens"),
        ]
        .map(count);
        let [Some(prompt), Some(cached_input), Some(cache_write), Some(output)] = counts else {
            tracing::warn!(%usage, "the upstream reported usage with an invalid count; estimating it instead");
            return None;
        };
        let cached_input = cached_input.min(prompt);
        let cache_write = cache_write.min(prompt - cached_input);
        Some(TokenUsage { input: prompt - cached_input - cache_write, cached_input, cache_write, output })
    }

    /// Whether a count was clamped to [`MAX_TOKENS`]: the upstream reported an impossible usage.
    pub fn is_clamped(&self) -> bool {
        [self.input, self.cached_input, self.cache_write, self.output].contains(&MAX_TOKENS)
    }

    /// Every input token, cached and cache writes included (the GenAI conventions' input tokens).
    pub fn input_total(&self) -> u64 {
        self.input.saturating_add(self.cached_input).saturating_add(self.cache_write)
    }

    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.cached_input)
            .saturating_add(self.cache_write)
            .saturating_add(self.output)
    }

    /// The cost at the model's prices, at most [`MAX_COST_NANOS`].
    pub fn cost(&self, pricing: &Pricing) -> NanoUsd {
        let cost = pricing.input.per_million_times(self.input)
            + pricing.cached_input.per_million_times(self.cached_input)
            + pricing.cache_write.per_million_times(self.cache_write)
            + pricing.output.per_million_times(self.output);
        NanoUsd(cost.0.min(MAX_COST_NANOS))
    }
}

impl std::ops::Add for TokenUsage {
    type Output = TokenUsage;

    fn add(self, other: TokenUsage) -> TokenUsage {
        TokenUsage {
            input: self.input.saturating_add(other.input),
            cached_input: self.cached_input.saturating_add(other.cached_input),
            cache_write: self.cache_write.saturating_add(other.cache_write),
            output: self.output.saturating_add(other.output),
        }
    }
}

/// The most tokens of one kind one request may be charged for: far above any model's context,
/// low enough that no sum of a ledger's rows and no price times it can overflow 64 bits.
pub const MAX_TOKENS: u64 = 1 << 28;

/// The most one request may cost, in nano-dollars (about 1.1 million USD): a ledger can hold
/// eight thousand such rows before a sum over them would overflow.
pub const MAX_COST_NANOS: i64 = 1 << 50;

/// One count of an upstream's usage: absent or null is zero; a non-negative integer, clamped to
/// [`MAX_TOKENS`]; anything else is no count.
fn count(value: Option<&Value>) -> Option<u64> {
    match value {
        None | Some(Value::Null) => Some(0),
        Some(value) => value.as_u64().map(|n| n.min(MAX_TOKENS)),
    }
}

/// Framing tokens a chat message may add to its text (role markers and separators).
pub const TOKENS_PER_MESSAGE: u64 = 8;
/// The most tokens one image, audio or file part costs on the providers served (OpenAI's
/// largest high-detail image is about 2,800; Anthropic's about 1,600).
const TOKENS_PER_MEDIA_PART: u64 = 3_000;

/// The most input tokens a chat request can be charged for, which is what budgets reserve.
/// Byte-level tokenizers (OpenAI's, Anthropic's, Llama's) never make more tokens than the text
/// has bytes; to that come the messages' framing, media parts, and the tool definitions, tool
/// calls and response schema, which count as input too (measured by their JSON text).
pub fn input_tokens_at_most(request: &ChatRequest) -> u64 {
    let json_len = |value: Option<&Value>| value.map_or(0, |v| v.to_string().len() as u64);
    let mut tokens = json_len(request.field("tools"))
        + json_len(request.field("functions"))
        + json_len(request.field("response_format"));
    for message in &request.messages {
        let tool_calls = message.rest.get("tool_calls");
        tokens = tokens.saturating_add(TOKENS_PER_MESSAGE).saturating_add(json_len(tool_calls));
        match &message.content {
            Some(Content::Text(text)) => tokens = tokens.saturating_add(text.len() as u64),
            Some(Content::Parts(parts)) => {
                for part in parts {
                    tokens = tokens.saturating_add(match part.get("text").and_then(Value::as_str) {
                        Some(text) => text.len() as u64,
                        None => TOKENS_PER_MEDIA_PART,
                    });
                }
            }
            None => {}
        }
    }
    tokens
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
    fn absurd_counts_are_clamped_and_invalid_ones_refused() {
        let usage =
            TokenUsage::from_openai(&json!({"prompt_tokens": 3, "completion_tokens": u64::MAX})).unwrap();
        assert_eq!(usage.output, MAX_TOKENS);
        assert!(usage.is_clamped());
        assert!(
            usage.cost(&pricing()).0 < i64::MAX / 1_000_000,
            "a clamped row leaves room for a million more"
        );
        for invalid in [json!(-5), json!(1.5), json!("7"), json!(-1e30)] {
            assert_eq!(
                TokenUsage::from_openai(&json!({"prompt_tokens": 3, "completion_tokens": invalid})),
                None
            );
        }
        let huge =
            TokenUsage { input: u64::MAX, cached_input: u64::MAX, cache_write: u64::MAX, output: u64::MAX };
        assert_eq!((huge + huge).total(), u64::MAX);
    }

    #[test]
    fn the_input_bound_is_never_below_the_bytes_and_counts_media_and_tools() {
        let request = json!({"model": "m", "messages": [
            {"role": "user", "content": "héllo"},
            {"role": "user", "content": [{"type": "text", "text": "abc"}, {"type": "image_url", "image_url": {"url": "x"}}]},
        ], "tools": [{"type": "function", "function": {"name": "f"}}]});
        let tools = request["tools"].to_string().len() as u64;
        let bound = input_tokens_at_most(&ChatRequest::parse(request.clone()).unwrap());
        assert_eq!(bound, tools + 2 * TOKENS_PER_MESSAGE + "héllo".len() as u64 + 3 + TOKENS_PER_MEDIA_PART);
        assert!(bound > estimate_tokens("héllo".len() + 3));
    }

    #[test]
    fn estimates_round_up() {
        assert_eq!(estimate_tokens(0), 0);
        assert_eq!(estimate_tokens(9), 3);
    }
}

/// Fuzz targets (bolero; see `translate/anthropic/tests/fuzz_json.rs` for how inputs are made).
#[cfg(test)]
mod fuzz {
    /// Input generation shared by the fuzz targets.
    #[allow(dead_code)]
    mod fuzz_json {
        include!("translate/anthropic/tests/fuzz_json.rs");
    }

    use std::ops::Bound;
    use std::time::Duration;

    use bolero::{Driver, TypeGenerator};
    use fuzz_json::{Text, Vocabulary, below, document, one_in, pick, raw_input, usage_object};
    use serde_json::Value;

    use super::*;

    /// Real usage objects (the target's corpus), which generated ones start from.
    const SEEDS: [&str; 3] = [
        include_str!("__fuzz__/usage__fuzz__openai_usage_is_clamped_or_refused/corpus/openai.json"),
        include_str!(
            "__fuzz__/usage__fuzz__openai_usage_is_clamped_or_refused/corpus/anthropic-translated.json"
        ),
        include_str!(
            "__fuzz__/usage__fuzz__openai_usage_is_clamped_or_refused/corpus/cached-past-prompt.json"
        ),
    ];

    #[rustfmt::skip]
    const VOCABULARY: Vocabulary = Vocabulary {
        keys: &[
            "prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "cached_tokens",
            "cache_write_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
        ],
        strings: &["7", ""],
    };

    /// A `usage` value: a corpus file as it is, else a generated usage object, an edited real
    /// one, or any JSON value.
    #[derive(Debug)]
    struct Usage(Text);

    impl TypeGenerator for Usage {
        fn generate<D: Driver>(d: &mut D) -> Option<Usage> {
            if let Some(raw) = raw_input(d, fuzz_json::is_json) {
                return Some(Usage(Text(raw)));
            }
            let usage = match below(d, 3)? {
                0 => usage_object(d)?,
                _ => document(d, &VOCABULARY, &SEEDS)?,
            };
            Some(Usage(Text(usage.to_string().into_bytes())))
        }
    }

    /// A count as the gateway takes it: absent or null is zero, a non-negative integer is clamped,
    /// anything else is no count.
    fn count(value: Option<&Value>) -> Option<u64> {
        match value {
            None | Some(Value::Null) => Some(0),
            Some(value) => value.as_u64().map(|n| n.min(MAX_TOKENS)),
        }
    }

    /// Fuzz target: any `usage` value is refused (`None`) when it is no object or a count is no
    /// non-negative integer, and otherwise read with each count clamped and the prompt split into
    /// disjoint parts; its cost at the highest prices stays capped.
    #[test]
    fn openai_usage_is_clamped_or_refused() {
        let pricing = Pricing {
            input: NanoUsd(i64::MAX),
            output: NanoUsd(i64::MAX),
            cached_input: NanoUsd(i64::MAX),
            cache_write: NanoUsd(i64::MAX),
        };
        bolero::check!().with_type::<Usage>().with_test_time(Duration::from_secs(1)).for_each(|usage| {
            let Ok(value) = serde_json::from_slice::<Value>(&usage.0.0) else { return };
            let details = value.get("prompt_tokens_details");
            let counts = [
                value.get("prompt_tokens"),
                details.and_then(|d| d.get("cached_tokens")),
                value.get("cache_creation_input_tokens"),
                value.get("completion_tokens"),
            ]
            .map(count);
            let read = TokenUsage::from_openai(&value);
            let [Some(prompt), Some(cached), Some(write), Some(output)] = counts else {
                assert_eq!(read, None, "a usage with an invalid count is no usage");
                return;
            };
            if !value.is_object() {
                assert_eq!(read, None, "a usage that is no object");
                return;
            }
            let read = read.expect("a usage object whose counts are all valid");
            assert_eq!(read.output, output);
            assert_eq!(read.input + read.cached_input + read.cache_write, prompt, "the prompt, split");
            assert_eq!(read.cached_input, cached.min(prompt), "cache reads come out of the prompt");
            assert_eq!(read.cache_write, write.min(prompt - read.cached_input), "then cache writes");
            assert!(read.cost(&pricing).0 <= MAX_COST_NANOS);
        });
    }

    /// Two usages and the prices of a model, any of them as large as their types allow.
    #[derive(Debug, serde::Deserialize)]
    struct Sum {
        a: [u64; 4],
        b: [u64; 4],
        /// Input, output, cached input and cache write, in nano-dollars per million tokens.
        prices: [i64; 4],
    }

    /// A count: small, near the clamp, or any.
    fn tokens<D: Driver>(d: &mut D) -> Option<u64> {
        Some(match below(d, 4)? {
            0 => below(d, 100_000)? as u64,
            1 => *pick(d, &[MAX_TOKENS - 1, MAX_TOKENS, MAX_TOKENS + 1, u64::MAX, u64::MAX - 1, 0])?,
            _ => d.gen_u64(Bound::Unbounded, Bound::Unbounded)?,
        })
    }

    impl TypeGenerator for Sum {
        fn generate<D: Driver>(d: &mut D) -> Option<Sum> {
            if let Some(raw) = raw_input(d, |bytes| serde_json::from_slice::<Sum>(bytes).is_ok()) {
                return serde_json::from_slice(&raw).ok();
            }
            let mut counts = [0; 8];
            for count in &mut counts {
                *count = tokens(d)?;
            }
            let mut prices = [0; 4];
            for price in &mut prices {
                *price = if one_in(d, 3)? {
                    *pick(d, &[0, 1, 150_000_000, 15_000_000_000, i64::MAX / 1_000_000, i64::MAX])?
                } else {
                    d.gen_i64(Bound::Included(&0), Bound::Included(&i64::MAX))?
                };
            }
            let [a @ .., _, _, _, _] = counts;
            let [_, _, _, _, b @ ..] = counts;
            Some(Sum { a, b, prices })
        }
    }

    fn usage([input, cached_input, cache_write, output]: [u64; 4]) -> TokenUsage {
        TokenUsage { input, cached_input, cache_write, output }
    }

    /// The cost, worked out in 128 bits: each part rounded half up and capped at `i64::MAX`, the
    /// sum saturating there, the whole capped at `MAX_COST_NANOS`.
    fn cost_of(usage: TokenUsage, [input, output, cached, write]: [i64; 4]) -> i64 {
        let part = |price: i64, tokens: u64| -> i128 {
            ((i128::from(price) * i128::from(tokens) + 500_000) / 1_000_000).min(i128::from(i64::MAX))
        };
        let sum = [
            part(input, usage.input),
            part(cached, usage.cached_input),
            part(write, usage.cache_write),
            part(output, usage.output),
        ]
        .into_iter()
        .fold(0_i128, |sum, part| (sum + part).min(i128::from(i64::MAX)));
        sum.min(i128::from(MAX_COST_NANOS)) as i64
    }

    /// Fuzz target: usages of any size add up saturating, in either order, and cost, at any
    /// prices, exactly what 128-bit arithmetic says, never more than `MAX_COST_NANOS` and never
    /// less for more tokens.
    #[test]
    fn sums_saturate_and_costs_stay_capped() {
        bolero::check!().with_type::<Sum>().with_test_time(Duration::from_secs(1)).for_each(|sum| {
            let (a, b) = (usage(sum.a), usage(sum.b));
            let [input, output, cached_input, cache_write] = sum.prices.map(NanoUsd);
            let pricing = Pricing { input, output, cached_input, cache_write };
            assert_eq!(a + b, b + a);
            let both = a + b;
            let added = sum.a.iter().zip(&sum.b).map(|(x, y)| x.saturating_add(*y)).collect::<Vec<_>>();
            assert_eq!(usage([added[0], added[1], added[2], added[3]]), both);
            let exact_total = sum.a.iter().map(|n| u128::from(*n)).sum::<u128>();
            assert_eq!(u128::from(a.total()), exact_total.min(u128::from(u64::MAX)));
            assert!(both.total() >= a.total().max(b.total()));
            for usage in [a, b, both] {
                let cost = usage.cost(&pricing).0;
                assert!((0..=MAX_COST_NANOS).contains(&cost), "{cost}");
                assert_eq!(cost, cost_of(usage, sum.prices));
            }
            assert!(
                both.cost(&pricing) >= a.cost(&pricing).max(b.cost(&pricing)),
                "more tokens never cost less"
            );
        });
    }
}

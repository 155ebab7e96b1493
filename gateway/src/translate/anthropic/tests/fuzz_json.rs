// Input generation shared by the gateway's fuzz targets (bolero): JSON documents whose keys and
// strings come mostly from a vocabulary (the field names and values the code under test reads,
// so that a generated input gets past the first `get`), edits of real documents, and edits of
// their text. `include!`d by each test module that uses it (and a module of the Anthropic tests),
// so it has no inner attributes.
//
// Every target reads its corpus files (real inputs) as they are: `raw_input` hands the whole
// input to the target when it has the target's form (JSON, an event stream), and otherwise the
// bytes drive the generators below. Under `cargo test` bolero drives them with a random number
// generator; under `cargo bolero test` libFuzzer's inputs do both.

use std::fmt;
use std::ops::Bound;

use bolero::Driver;
use serde_json::{Map, Number, Value};

/// The words generated documents are made of.
pub struct Vocabulary {
    pub keys: &'static [&'static str],
    pub strings: &'static [&'static str],
}

/// Bytes shown as escaped text when a case fails.
#[derive(Clone, PartialEq, Eq)]
pub struct Text(pub Vec<u8>);

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\" ({} bytes)", self.0.escape_ascii(), self.0.len())
    }
}

/// The whole input as it is, when `accept` takes it (a corpus file, a fuzzer's input); otherwise,
/// as always under the random driver of `cargo test`, `None` with nothing consumed.
pub fn raw_input<D: Driver>(d: &mut D, accept: fn(&[u8]) -> bool) -> Option<Vec<u8>> {
    d.gen_from_bytes(|| (0, Some(0)), |bytes| accept(bytes).then(|| (bytes.len(), bytes.to_vec())))
}

/// Whether `bytes` is a JSON document.
pub fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes).is_ok()
}

/// A number in `0..n` (`n` > 0).
pub fn below<D: Driver>(d: &mut D, n: usize) -> Option<usize> {
    d.gen_usize(Bound::Included(&0), Bound::Excluded(&n.max(1)))
}

/// True one time in `n`.
pub fn one_in<D: Driver>(d: &mut D, n: usize) -> Option<bool> {
    Some(below(d, n)? == 0)
}

pub fn pick<'a, D: Driver, T>(d: &mut D, items: &'a [T]) -> Option<&'a T> {
    items.get(below(d, items.len())?)
}

/// Integers at the edges the gateway checks (token and price limits, 2^53, 64-bit ends).
const EDGES: [i128; 20] = [
    0,
    1,
    -1,
    2,
    128,
    129,
    4096,
    (1 << 24) - 1,
    1 << 24,
    (1 << 24) + 1,
    (1 << 28) - 1,
    1 << 28,
    (1 << 28) + 1,
    1 << 50,
    (1 << 53) + 1,
    i64::MAX as i128,
    i64::MIN as i128,
    u64::MAX as i128,
    -(1 << 28),
    1_000_000,
];

const FLOATS: [f64; 12] =
    [0.0, -0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -0.1, 1e19, 1.8446744073709552e19, 1e300, -1e30];

pub fn integer(n: i128) -> Value {
    match (u64::try_from(n), i64::try_from(n)) {
        (Ok(n), _) => Value::from(n),
        (_, Ok(n)) => Value::from(n),
        _ => Value::from(n as f64),
    }
}

/// A JSON number: small counts most often, then edges, any 64-bit integer, floats.
pub fn number<D: Driver>(d: &mut D) -> Option<Value> {
    Some(match below(d, 6)? {
        0 | 1 => Value::from(below(d, 300)? as u64),
        2 => integer(*pick(d, &EDGES)?),
        3 => Value::from(d.gen_u64(Bound::Unbounded, Bound::Unbounded)?),
        4 => Value::from(d.gen_i64(Bound::Unbounded, Bound::Unbounded)?),
        _ => {
            let float = if one_in(d, 2)? {
                *pick(d, &FLOATS)?
            } else {
                d.gen_f64(Bound::Unbounded, Bound::Unbounded)?
            };
            Number::from_f64(float).map_or(Value::from(0.5), Value::Number)
        }
    })
}

/// A short string: from the vocabulary most often, else of ASCII or any characters.
pub fn string<D: Driver>(d: &mut D, vocabulary: &Vocabulary) -> Option<String> {
    if vocabulary.strings.is_empty() || one_in(d, 4)? {
        return random_string(d);
    }
    pick(d, vocabulary.strings).map(|s| (*s).to_owned())
}

/// Up to a dozen ASCII characters, or of any characters.
pub fn random_string<D: Driver>(d: &mut D) -> Option<String> {
    let len = below(d, 12)?;
    let ascii = one_in(d, 2)?;
    (0..len)
        .map(|_| {
            if ascii {
                d.gen_char(Bound::Included(&' '), Bound::Included(&'~'))
            } else {
                d.gen_char(Bound::Unbounded, Bound::Unbounded)
            }
        })
        .collect()
}

fn key<D: Driver>(d: &mut D, vocabulary: &Vocabulary) -> Option<String> {
    if vocabulary.keys.is_empty() || one_in(d, 10)? {
        return random_string(d);
    }
    pick(d, vocabulary.keys).map(|s| (*s).to_owned())
}

/// How deep generated documents nest.
pub const MAX_DEPTH: usize = 5;

/// Any JSON value, `depth` levels down.
pub fn value<D: Driver>(d: &mut D, vocabulary: &Vocabulary, depth: usize) -> Option<Value> {
    let kinds = if depth >= MAX_DEPTH { 4 } else { 7 };
    Some(match below(d, kinds)? {
        0 => Value::Null,
        1 => Value::Bool(one_in(d, 2)?),
        2 => number(d)?,
        3 => Value::String(string(d, vocabulary)?),
        4 => {
            let len = below(d, 4)?;
            Value::Array((0..len).map(|_| value(d, vocabulary, depth + 1)).collect::<Option<_>>()?)
        }
        _ => Value::Object(object(d, vocabulary, depth + 1)?),
    })
}

/// An object of up to six members.
pub fn object<D: Driver>(d: &mut D, vocabulary: &Vocabulary, depth: usize) -> Option<Map<String, Value>> {
    let len = below(d, 7)?;
    let mut map = Map::new();
    for _ in 0..len {
        let key = key(d, vocabulary)?;
        let value = value(d, vocabulary, depth)?;
        map.insert(key, value);
    }
    Some(map)
}

/// One edit somewhere in `doc`: a member or element replaced, removed, added, nulled, or given
/// another type.
pub fn edit<D: Driver>(d: &mut D, vocabulary: &Vocabulary, doc: &mut Value, depth: usize) -> Option<()> {
    // Go down a level three times in four while there is a level to go down to.
    let descend = depth < 12 && !one_in(d, 4)?;
    match doc {
        Value::Object(map) if descend && !map.is_empty() => {
            let index = below(d, map.len())?;
            if let Some((_, child)) = map.iter_mut().nth(index) {
                return edit(d, vocabulary, child, depth + 1);
            }
        }
        Value::Array(items) if descend && !items.is_empty() => {
            let index = below(d, items.len())?;
            return edit(d, vocabulary, &mut items[index], depth + 1);
        }
        _ => {}
    }
    match (below(d, 7)?, &mut *doc) {
        (0, Value::Object(map)) if !map.is_empty() => {
            let index = below(d, map.len())?;
            let key = map.keys().nth(index).cloned().unwrap_or_default();
            map.remove(&key);
        }
        (0, Value::Array(items)) if !items.is_empty() => {
            let index = below(d, items.len())?;
            items.remove(index);
        }
        (1, Value::Object(map)) => {
            let key = key(d, vocabulary)?;
            let value = value(d, vocabulary, depth.min(MAX_DEPTH))?;
            map.insert(key, value);
        }
        (1, Value::Array(items)) => {
            let copy = match items.first() {
                Some(first) if one_in(d, 2)? => first.clone(),
                _ => value(d, vocabulary, depth.min(MAX_DEPTH))?,
            };
            items.push(copy);
        }
        (2, _) => *doc = Value::Null,
        (3, _) => *doc = number(d)?,
        (4, _) => *doc = Value::String(string(d, vocabulary)?),
        _ => *doc = value(d, vocabulary, depth.min(MAX_DEPTH))?,
    }
    Some(())
}

/// A document: one of `seeds` with a few edits, or a generated object.
pub fn document<D: Driver>(d: &mut D, vocabulary: &Vocabulary, seeds: &[&str]) -> Option<Value> {
    if seeds.is_empty() || one_in(d, 4)? {
        return Some(Value::Object(object(d, vocabulary, 0)?));
    }
    let mut doc: Value = serde_json::from_str(pick(d, seeds)?).unwrap_or_default();
    for _ in 0..below(d, 5)? {
        edit(d, vocabulary, &mut doc, 0)?;
    }
    Some(doc)
}

/// Snippets that break JSON text or stretch what a parser accepts: a lone surrogate, a NUL, a
/// byte that is no UTF-8, numbers past 64 bits or past `f64`, duplicate members.
const SNIPPETS: [&[u8]; 14] = [
    br"\ud800",
    br"\u0000",
    b"\xff",
    b"\xc3",
    b",",
    b"}",
    b"]",
    b"\"",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"1e999",
    b"-0",
    br#""usage":null,"#,
    br#""choices":[],"#,
];

/// One edit of `text` as bytes: cut short, a byte added, changed or removed, a span repeated, or a
/// snippet put in.
pub fn garble<D: Driver>(d: &mut D, text: &mut Vec<u8>) -> Option<()> {
    let at = below(d, text.len() + 1)?;
    match below(d, 6)? {
        0 => text.truncate(at),
        1 => text.insert(at, d.gen_u8(Bound::Unbounded, Bound::Unbounded)?),
        2 if at < text.len() => text[at] = d.gen_u8(Bound::Unbounded, Bound::Unbounded)?,
        3 if at < text.len() => {
            let end = (at + 1 + below(d, 16)?).min(text.len());
            let span = text[at..end].to_vec();
            text.splice(end..end, span);
        }
        4 if at < text.len() => {
            let end = (at + 1 + below(d, 8)?).min(text.len());
            text.drain(at..end);
        }
        _ => {
            let snippet = pick(d, &SNIPPETS)?;
            text.splice(at..at, snippet.iter().copied());
        }
    }
    Some(())
}

/// Up to `n` random bytes.
pub fn bytes<D: Driver>(d: &mut D, n: usize) -> Option<Vec<u8>> {
    (0..below(d, n + 1)?).map(|_| d.gen_u8(Bound::Unbounded, Bound::Unbounded)).collect()
}

/// The text of `doc`, garbled one time in three.
pub fn text_of<D: Driver>(d: &mut D, doc: &Value) -> Option<Vec<u8>> {
    let mut text = doc.to_string().into_bytes();
    if one_in(d, 3)? {
        for _ in 0..=below(d, 3)? {
            garble(d, &mut text)?;
        }
    }
    Some(text)
}

/// The text of a JSON document for a parser: `document`'s text, sometimes garbled, or random
/// bytes.
pub fn json_text<D: Driver>(d: &mut D, vocabulary: &Vocabulary, seeds: &[&str]) -> Option<Vec<u8>> {
    if one_in(d, 10)? {
        return bytes(d, 64);
    }
    let doc = document(d, vocabulary, seeds)?;
    text_of(d, &doc)
}

/// An OpenAI `usage` object: each count absent, or any number (`number`), and sometimes a field
/// of another type.
pub fn usage_object<D: Driver>(d: &mut D) -> Option<Value> {
    let count = |d: &mut D| -> Option<Option<Value>> {
        Some(match below(d, 8)? {
            0 => None,
            1 => Some(Value::Null),
            2 => Some(Value::from("7")),
            _ => Some(number(d)?),
        })
    };
    let mut usage = Map::new();
    for key in ["prompt_tokens", "completion_tokens", "total_tokens", "cache_creation_input_tokens"] {
        if let Some(n) = count(d)? {
            usage.insert(key.into(), n);
        }
    }
    match below(d, 4)? {
        0 => {}
        1 => {
            usage.insert("prompt_tokens_details".into(), Value::Null);
        }
        _ => {
            let mut details = Map::new();
            for key in ["cached_tokens", "cache_write_tokens"] {
                if let Some(n) = count(d)? {
                    details.insert(key.into(), n);
                }
            }
            usage.insert("prompt_tokens_details".into(), Value::Object(details));
        }
    }
    Some(Value::Object(usage))
}

/// A chat completion (`part` = `"message"`) or stream chunk (`"delta"`) as upstreams send them:
/// choices with content, usage, an error; each part sometimes missing, null or of another type.
pub fn chat_payload<D: Driver>(d: &mut D, vocabulary: &Vocabulary, part: &str) -> Option<Value> {
    let mut payload = Map::new();
    payload.insert("id".into(), Value::from("chatcmpl-1"));
    if !one_in(d, 5)? {
        let mut choices = Vec::new();
        for index in 0..below(d, 3)? {
            let content = match below(d, 6)? {
                0 => Value::Null,
                1 => {
                    let parts = (0..below(d, 3)?)
                        .map(|_| Some(serde_json::json!({"type": "text", "text": string(d, vocabulary)?})))
                        .collect::<Option<Vec<_>>>()?;
                    Value::Array(parts)
                }
                2 => value(d, vocabulary, 3)?,
                _ => Value::String(string(d, vocabulary)?),
            };
            let body = match below(d, 8)? {
                0 => Value::Null,
                1 => value(d, vocabulary, 3)?,
                _ => serde_json::json!({"role": "assistant", "content": content}),
            };
            choices.push(serde_json::json!({"index": index, part: body, "finish_reason": null}));
        }
        payload.insert("choices".into(), Value::Array(choices));
    }
    if one_in(d, 2)? {
        let usage = if one_in(d, 8)? { value(d, vocabulary, 3)? } else { usage_object(d)? };
        payload.insert("usage".into(), usage);
    }
    if one_in(d, 6)? {
        let error = match below(d, 3)? {
            0 => Value::Null,
            1 => serde_json::json!({"message": string(d, vocabulary)?, "type": "server_error"}),
            _ => value(d, vocabulary, 3)?,
        };
        payload.insert("error".into(), error);
    }
    Some(Value::Object(payload))
}

/// Usage as the ledger may take it: every count within the clamp, and the prompt split into
/// disjoint parts rather than added to.
pub fn assert_usage_bounded(usage: crate::usage::TokenUsage) {
    use crate::usage::MAX_TOKENS;
    for count in [usage.input, usage.cached_input, usage.cache_write, usage.output] {
        assert!(count <= MAX_TOKENS, "{usage:?} has a count past {MAX_TOKENS}");
    }
    assert!(usage.input + usage.cached_input + usage.cache_write <= MAX_TOKENS, "{usage:?}");
}

/// Whether a payload the readers accepted (`value` is its strict parse) is one they relay as it
/// came without reading all of it: JSON only a lenient reader takes (an escaped half surrogate
/// pair, a number past `f64`, in a field they skip), or an array where a choice or its `inner`
/// object (`delta`, `message`) belongs, which serde reads by position.
pub fn accepted_as_lenient_json(value: &Result<Value, serde_json::Error>, inner: &str) -> bool {
    match value {
        Ok(value) => {
            let choices = value.get("choices").and_then(Value::as_array).map(Vec::as_slice);
            let array_for_object =
                |choice: &Value| choice.is_array() || choice.get(inner).is_some_and(Value::is_array);
            !value.is_object() || choices.unwrap_or_default().iter().any(array_for_object)
        }
        Err(error) => {
            let message = error.to_string();
            ["unicode code point", "surrogate", "hex escape", "number out of range"]
                .iter()
                .any(|kind| message.contains(kind))
        }
    }
}

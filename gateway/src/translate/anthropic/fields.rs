//! What becomes of every request field crossing between the Chat Completions and Messages APIs:
//! sent as it is, sent as something else, used by the gateway, or refused with a 400 naming it.
//! A field in neither table is refused: nothing is dropped without a word. docs/api.md's
//! compatibility table is made from these tables ([`markdown`]), and the tests send every field
//! through the translation to check that it does what its row says.

use serde_json::{Map, Value};

use super::{TranslateError, invalid};

/// What the translation does with a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Treatment {
    /// Sent under the same name.
    Same,
    /// Sent as the named field (or what the note says).
    As(&'static str),
    /// Read by the gateway, not sent.
    Gateway(&'static str),
    /// Refused, unless its value is this one (JSON), which means "not asked for".
    RefusedUnless(&'static str),
}

/// One field: its name, what happens to it, and a value that asks for something (for the tests).
pub type Field = (&'static str, Treatment, &'static str);

use Treatment::{As, Gateway, RefusedUnless, Same};

/// Chat Completions fields on an Anthropic upstream.
pub const CHAT_ON_ANTHROPIC: &[Field] = &[
    ("model", As("`model`: the route's upstream name"), r#""m""#),
    ("messages", As("`system` and `messages` (tool results as `tool_result` blocks)"), r#"[]"#),
    ("max_tokens", Same, "5"),
    ("max_completion_tokens", As("`max_tokens`"), "5"),
    ("temperature", As("`temperature`, clamped to 0..1"), "0.5"),
    ("top_p", Same, "0.5"),
    ("top_k", Same, "5"),
    ("stop", As("`stop_sequences`"), r#"["END"]"#),
    ("stream", Same, "true"),
    ("stream_options", Gateway("usage is always read from the stream"), r#"{"include_usage": true}"#),
    ("user", As("`metadata.user_id`"), r#""u""#),
    (
        "tools",
        As("`tools` (`name`, `description`, `input_schema`)"),
        r#"[{"type": "function", "function": {"name": "f"}}]"#,
    ),
    (
        "tool_choice",
        As("`tool_choice` with `tools` (`required`: `any`, a function: a `tool`); nothing without"),
        r#""required""#,
    ),
    ("parallel_tool_calls", As("`tool_choice.disable_parallel_tool_use`"), "false"),
    ("response_format", As("a forced tool, its input the reply"), r#"{"type": "json_object"}"#),
    ("reasoning_effort", As("`thinking` with a budget (1,024 / 4,096 / 16,384 tokens)"), r#""low""#),
    ("thinking", Same, r#"{"type": "enabled", "budget_tokens": 1024}"#),
    ("cache_control", Same, r#"{"type": "ephemeral"}"#),
    ("metadata", Gateway("policy input only"), r#"{"k": "v"}"#),
    ("n", RefusedUnless("1"), "2"),
    ("seed", RefusedUnless("null"), "7"),
    ("presence_penalty", RefusedUnless("0"), "0.5"),
    ("frequency_penalty", RefusedUnless("0"), "0.5"),
    ("logit_bias", RefusedUnless("null"), r#"{"50256": -100}"#),
    ("logprobs", RefusedUnless("false"), "true"),
    ("top_logprobs", RefusedUnless("null"), "2"),
    ("store", RefusedUnless("false"), "true"),
    ("service_tier", RefusedUnless(r#""auto""#), r#""flex""#),
    ("modalities", RefusedUnless(r#"["text"]"#), r#"["text", "audio"]"#),
    ("audio", RefusedUnless("null"), r#"{"voice": "alloy", "format": "wav"}"#),
    ("prediction", RefusedUnless("null"), r#"{"type": "content", "content": "x"}"#),
    ("web_search_options", RefusedUnless("null"), "{}"),
    ("verbosity", RefusedUnless("null"), r#""low""#),
    ("prompt_cache_key", RefusedUnless("null"), r#""k""#),
];

/// Messages fields from an Anthropic client, for the chat form every backend is served from.
pub const MESSAGES_TO_CHAT: &[Field] = &[
    ("model", Same, r#""m""#),
    (
        "messages",
        As("`messages` (`tool_result` blocks as tool messages)"),
        r#"[{"role": "user", "content": "hi"}]"#,
    ),
    ("system", As("a leading system message"), r#""be brief""#),
    ("max_tokens", Same, "5"),
    ("temperature", Same, "0.5"),
    ("top_p", Same, "0.5"),
    ("top_k", As("`top_k` (OpenAI refuses it; llama.cpp and vLLM take it)"), "5"),
    ("stop_sequences", As("`stop`"), r#"["END"]"#),
    ("stream", Same, "true"),
    ("metadata", As("`metadata.user_id`: `user`"), r#"{"user_id": "u"}"#),
    (
        "tools",
        As("function `tools` (`parameters` from `input_schema`)"),
        r#"[{"name": "f", "input_schema": {"type": "object"}}]"#,
    ),
    (
        "tool_choice",
        As("`tool_choice` with `tools` (`any`: `required`, a `tool`: a function); nothing without"),
        r#"{"type": "any"}"#,
    ),
    (
        "thinking",
        As("kept for Anthropic upstreams; the nearest `reasoning_effort` for others"),
        r#"{"type": "enabled", "budget_tokens": 2048}"#,
    ),
    (
        "output_format",
        As("`response_format` (json_schema)"),
        r#"{"type": "json_schema", "schema": {"type": "object"}}"#,
    ),
    (
        "output_config",
        As("`response_format` (`format`), `reasoning_effort` (`effort`)"),
        r#"{"effort": "low"}"#,
    ),
    (
        "cache_control",
        As("kept for Anthropic upstreams; OpenAI caches by itself"),
        r#"{"type": "ephemeral"}"#,
    ),
    ("service_tier", RefusedUnless(r#""auto""#), r#""standard_only""#),
    ("container", RefusedUnless("null"), r#""c""#),
    ("mcp_servers", RefusedUnless("null"), r#"[{"type": "url", "url": "https://x", "name": "x"}]"#),
    ("context_management", RefusedUnless("null"), "{}"),
];

/// Refuses a field of `request` that `fields` refuses (with a value that asks for something) or
/// does not know; `api` names where the request was going, for the message.
pub(super) fn check(request: &Map<String, Value>, fields: &[Field], api: &str) -> Result<(), TranslateError> {
    for (name, value) in request {
        let refused = match fields.iter().find(|(known, ..)| known == name) {
            None => (!value.is_null()).then_some("null"),
            Some((_, RefusedUnless(default), _)) => {
                let asks =
                    !value.is_null() && serde_json::from_str::<Value>(default).ok().as_ref() != Some(value);
                asks.then_some(*default)
            }
            Some(_) => None,
        };
        match refused {
            None => {}
            Some("null") => return Err(invalid(format!("`{name}` is not supported {api}"))),
            Some(default) => {
                return Err(invalid(format!("`{name}` other than {default} is not supported {api}")));
            }
        }
    }
    Ok(())
}

/// The compatibility table docs/api.md shows, from [`CHAT_ON_ANTHROPIC`] and [`MESSAGES_TO_CHAT`]
/// (written by the test that checks it).
#[cfg(test)]
fn markdown() -> String {
    let mut text = String::from(
        "Chat Completions requests (`/v1/chat/completions`, and `/v1/responses` after its own translation) on an Anthropic route; on an OpenAI-type route every field passes unchanged:\n\n| Field | On an Anthropic upstream |\n|---|---|\n",
    );
    for (name, treatment, _) in CHAT_ON_ANTHROPIC {
        text.push_str(&format!("| `{name}` | {} |\n", describe(*treatment)));
    }
    text.push_str(
        "\nMessages requests (`/v1/messages`) from Anthropic clients, on any route (an Anthropic upstream then gets the fields marked as kept as they were sent):\n\n| Field | In the gateway's chat form |\n|---|---|\n",
    );
    for (name, treatment, _) in MESSAGES_TO_CHAT {
        text.push_str(&format!("| `{name}` | {} |\n", describe(*treatment)));
    }
    text.push_str("\nAny other field is refused with `400` naming it.\n");
    text
}

#[cfg(test)]
fn describe(treatment: Treatment) -> String {
    match treatment {
        Same => "sent as it is".to_owned(),
        As(what) => format!("translated: {what}"),
        Gateway(what) => format!("used by the gateway ({what})"),
        RefusedUnless("null") => "refused".to_owned(),
        RefusedUnless(default) => format!("refused unless `{default}`"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::translate::anthropic::{chat_request_to_messages, messages_request_to_chat};

    fn with(base: Value, name: &str, sample: &str) -> Value {
        let mut request = base;
        request[name] = serde_json::from_str(sample).unwrap();
        request
    }

    /// Every row does what it says: refused fields are refused by name (their default passes),
    /// the others translate, and those sent as they are arrive under their name; a field nobody
    /// knows is refused.
    fn check_rows(
        fields: &[Field],
        base: &Value,
        translate: impl Fn(&Value) -> Result<Value, TranslateError>,
    ) {
        for (name, treatment, sample) in fields {
            if ["model", "messages"].contains(name) {
                continue;
            }
            let sent = translate(&with(base.clone(), name, sample));
            match treatment {
                RefusedUnless(default) => {
                    let error = sent.unwrap_err().to_string();
                    assert!(error.contains(&format!("`{name}`")), "{name}: {error}");
                    let default = translate(&with(base.clone(), name, default));
                    assert!(default.is_ok(), "{name} = {default:?}");
                }
                Same => assert!(sent.unwrap().get(*name).is_some(), "{name} is sent as it is"),
                As(_) | Gateway(_) => assert!(sent.is_ok(), "{name}: {sent:?}"),
            }
        }
        let unknown = translate(&with(base.clone(), "frobnicate", "1")).unwrap_err();
        assert!(unknown.to_string().contains("`frobnicate`"), "a field nobody knows is refused: {unknown}");
    }

    #[test]
    fn every_chat_field_does_on_anthropic_what_the_table_says() {
        let base = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        check_rows(CHAT_ON_ANTHROPIC, &base, |request| chat_request_to_messages(request, "claude"));
    }

    #[test]
    fn every_messages_field_does_in_chat_what_the_table_says() {
        let base =
            json!({"model": "m", "max_tokens": 100000, "messages": [{"role": "user", "content": "hi"}]});
        check_rows(MESSAGES_TO_CHAT, &base, messages_request_to_chat);
    }

    /// docs/api.md shows the tables as they are here (`UPDATE_DOCS=1` rewrites them).
    #[test]
    fn the_docs_table_is_made_from_these_tables() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let (begin, end) = ("<!-- fields:begin -->\n", "<!-- fields:end -->");
        let start = doc.find(begin).expect("docs/api.md has the field table markers") + begin.len();
        let stop = doc[start..].find(end).expect("the end marker") + start;
        let table = markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, format!("{}{table}{}", &doc[..start], &doc[stop..])).unwrap();
        } else {
            assert!(doc[start..stop] == table, "docs/api.md's field table is stale: run `make docs-tables`");
        }
    }
}

//! A broken or hostile upstream (fake-upstream's faults): secrets it echoes never reach a client
//! or a log, impossible usage does not poison the ledger, and nothing it sends is held without a
//! bound. Hostile client numbers get a 400 rather than a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use common::*;
use serde_json::{Value, json};

/// Routes whose upstream model names a fault, on both wire formats, with small response limits
/// so the size faults stay quick.
const FAULTS: &str = r#"
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: faulty-openai}
spec:
  models:
    - {name: o-leak-first, upstreamModel: leak-key-first}
    - {name: o-leak-mid, upstreamModel: leak-key-mid}
    - {name: o-leak-long, upstreamModel: leak-key-long}
    - {name: o-usage-max, upstreamModel: usage-max, pricing: {inputPerMillion: "1", outputPerMillion: "1000"}}
    - {name: o-usage-negative, upstreamModel: usage-negative}
    - {name: o-no-blank, upstreamModel: sse-no-blank}
    - {name: o-long-line, upstreamModel: long-line-3}
    - {name: o-big-body, upstreamModel: big-body-3}
    - {name: o-big-error, upstreamModel: big-error-3}
  backends:
    - {name: faulty, provider: openai, baseUrl: "{UPSTREAM}", apiKeySecretRef: {name: upstream-key, key: key}}
  retries: {attempts: 0}
  responseLimits: {maxBodyKiB: 1024, maxErrorBodyKiB: 16, maxEventKiB: 512, maxLineKiB: 256}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: faulty-anthropic}
spec:
  models:
    - {name: a-leak-first, upstreamModel: leak-key-first}
    - {name: a-leak-mid, upstreamModel: leak-key-mid}
    - {name: a-leak-long, upstreamModel: leak-key-long}
    - {name: a-usage-max, upstreamModel: usage-max}
  backends:
    - {name: faulty-claude, provider: anthropic, baseUrl: "{UPSTREAM}", apiKeySecretRef: {name: upstream-key, key: key}}
  retries: {attempts: 0}
"#;

/// Everything the gateway logged in this test binary.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
        Mutex::default()
    })
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        logs().lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn harness() -> Harness {
    logs();
    let mut h = Harness::start().await;
    h.restart_with("faults.yaml", FAULTS).await;
    h
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

fn messages(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
}

/// No byte of the provider key, nor a long enough piece of it, in `text`.
fn assert_no_key(what: &str, text: &str) {
    for piece in UPSTREAM_KEY.as_bytes().windows(10) {
        let piece = std::str::from_utf8(piece).unwrap();
        assert!(!text.contains(piece), "{what} holds {piece:?} of the provider key: {text}");
    }
}

#[tokio::test]
async fn provider_keys_echoed_by_an_upstream_never_reach_a_client_or_a_log() {
    let h = harness().await;
    let mut seen = Vec::new();
    for (path, model, body) in [
        ("/v1/chat/completions", "o-leak-first", chat("o-leak-first", true)),
        ("/v1/chat/completions", "o-leak-mid", chat("o-leak-mid", true)),
        ("/v1/chat/completions", "o-leak-first", chat("o-leak-first", false)),
        ("/v1/chat/completions", "o-leak-long", chat("o-leak-long", false)),
        ("/v1/messages", "a-leak-first", messages("a-leak-first", true)),
        ("/v1/messages", "a-leak-mid", messages("a-leak-mid", true)),
        ("/v1/messages", "a-leak-long", messages("a-leak-long", false)),
        // Anthropic clients of an OpenAI upstream, and the other way round.
        ("/v1/messages", "o-leak-mid", messages("o-leak-mid", true)),
        ("/v1/chat/completions", "a-leak-mid", chat("a-leak-mid", true)),
    ] {
        let response = h.post(path, TEAM_KEY, &body).await;
        let headers = format!("{:?}", response.headers());
        let text = response.text().await.unwrap();
        assert_no_key(&format!("{path} {model} headers"), &headers);
        assert_no_key(&format!("{path} {model}"), &text);
        // The error still says what went wrong (the long one only the start of it: it is cut there).
        assert!(text.contains("[REDA"), "{path} {model}: {text}");
        seen.push(text);
    }
    // The cut comes after redaction: the long message is cut inside the redaction mark, and
    // none of the key survives it.
    assert!(seen[3].contains("Bearer [REDA..."), "{}", seen[3]);
    let logged = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(logged.contains("upstream attempt failed"), "the failures were logged");
    assert_no_key("the log", &logged);
}

#[tokio::test]
async fn absurd_output_limits_get_a_400_in_the_apis_own_shape() {
    let h = harness().await;
    let huge = json!(u64::MAX);
    for field in ["max_tokens", "max_completion_tokens"] {
        let mut body = chat("fake-model", false);
        body[field] = huge.clone();
        let response = h.post("/v1/chat/completions", TEAM_KEY, &body).await;
        assert_eq!(response.status(), 400, "{field}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["message"].as_str().unwrap().contains(field), "{error}");
    }
    let mut body = messages("fake-model", false);
    body["max_tokens"] = huge;
    let response = h.post("/v1/messages", TEAM_KEY, &body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
    for (field, value) in
        [("max_tokens", json!(-1)), ("temperature", json!("hot")), ("messages", json!([null]))]
    {
        let mut body = chat("fake-model", false);
        body[field] = value;
        assert_eq!(h.post("/v1/chat/completions", TEAM_KEY, &body).await.status(), 400, "{field}");
    }
    assert_eq!(h.upstream.request_count(), 0, "nothing invalid reaches the upstream");
}

#[tokio::test]
async fn impossible_upstream_usage_is_clamped_and_the_ledger_stays_summable() {
    let mut h = harness().await;
    for stream in [false, true] {
        for model in ["o-usage-max", "a-usage-max"] {
            let response = h.post("/v1/chat/completions", TEAM_KEY, &chat(model, stream)).await;
            assert_eq!(response.status(), 200, "{model} stream={stream}");
            response.text().await.unwrap();
        }
        let response = h.post("/v1/chat/completions", TEAM_KEY, &chat("o-usage-negative", stream)).await;
        assert_eq!(response.status(), 200);
        response.text().await.unwrap();
    }
    let metrics = h.metrics().await;
    assert!(metrics.contains(r#"kind="usage_clamped""#), "the clamp is reported");
    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    assert_eq!(rows.len(), 6);
    for row in &rows {
        let output = row["output_tokens"].as_i64().unwrap();
        assert!((0..=1 << 28).contains(&output), "{row}");
    }
    // Negative usage is no usage: the gateway's estimate, not zero.
    let negative: Vec<&Value> = rows.iter().filter(|r| r["model"] == "o-usage-negative").collect();
    assert!(negative.iter().all(|r| r["output_tokens"].as_i64() > Some(0)), "{negative:?}");

    // The usage API sums these rows, also after a restart, and the tenant is still served.
    h.start_gateway().await;
    let usage = h.admin_usage().await;
    let team = &usage["tenants"][0];
    assert_eq!((team["tenant"].as_str(), team["requests"].as_i64()), (Some("team"), Some(6)), "{usage}");
    assert_eq!(h.post("/v1/chat/completions", TEAM_KEY, &chat("fake-model", false)).await.status(), 200);
}

#[tokio::test]
async fn oversized_upstream_replies_end_with_a_clear_error() {
    let h = harness().await;
    let response = h.post("/v1/chat/completions", TEAM_KEY, &chat("o-big-body", false)).await;
    assert_eq!(response.status(), 502);
    let text = response.text().await.unwrap();
    assert!(text.contains("reply body exceeds the route's limit of 1048576 bytes"), "{text}");

    // An error body is read only as far as its limit; the message is the cut text.
    let response = h.post("/v1/chat/completions", TEAM_KEY, &chat("o-big-error", false)).await;
    assert_eq!(response.status(), 502);
    let error: Value = response.json().await.unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.len() < 600, "{} characters", message.len());

    for (model, what) in [("o-long-line", "stream line"), ("o-no-blank", "stream event")] {
        let response = h.post("/v1/chat/completions", TEAM_KEY, &chat(model, true)).await;
        // The first event is over its limit before anything is relayed: a plain 502.
        assert_eq!(response.status(), 502, "{model}");
        let text = response.text().await.unwrap();
        assert!(text.contains(&format!("{what} exceeds the route's limit")), "{model}: {text}");
    }
}

//! A graceful stop with requests that outlast it: a stream that never ends and a request whose
//! upstream never answers get an error their clients see, and a ledger row, before the process
//! would exit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use common::*;
use futures::StreamExt;
use serde_json::json;

const ROUTES: &str = r#"
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: endless}
spec:
  models:
    - {name: endless-model, upstreamModel: drip-50, pricing: {inputPerMillion: "1", outputPerMillion: "2"}}
    - {name: silent-model, upstreamModel: hang}
  backends:
    - {name: endless, provider: openai, baseUrl: "{UPSTREAM}"}
  retries: {attempts: 0}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: endless-claude}
spec:
  models: [{name: endless-claude, upstreamModel: drip-50}]
  backends:
    - {name: endless-claude, provider: anthropic, baseUrl: "{UPSTREAM}"}
  retries: {attempts: 0}
"#;

#[tokio::test]
async fn requests_outlasting_the_grace_period_end_with_an_error_and_keep_their_rows() {
    let mut h = Harness::start().await;
    h.restart_with("endless.yaml", ROUTES).await;
    let chat = |model: &str| json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let openai = h.post("/v1/chat/completions", TEAM_KEY, &chat("endless-model")).await;
    let messages = json!({"model": "endless-claude", "stream": true, "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]});
    let anthropic = h.post("/v1/messages", TEAM_KEY, &messages).await;
    let silent = {
        let request = h.client.post(h.url("/v1/chat/completions")).bearer_auth(TEAM_KEY);
        tokio::spawn(
            request
                .json(&json!({"model": "silent-model", "messages": [{"role": "user", "content": "hi"}]}))
                .send(),
        )
    };
    eventually("the silent request waits upstream", || async { h.upstream.hanging() == 1 }).await;
    let mut openai = openai.bytes_stream();
    let first = openai.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "), "the stream is flowing");
    let read_all = |stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>| async move {
        let pieces: Vec<_> = stream.collect().await;
        pieces
            .into_iter()
            .filter_map(Result::ok)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect::<String>()
    };
    let openai_rest = tokio::spawn(read_all(openai.boxed()));
    let anthropic_rest = tokio::spawn(read_all(anthropic.bytes_stream().boxed()));

    h.stop_gateway().await;

    let openai_rest = openai_rest.await.unwrap();
    let last = sse_data(&openai_rest).pop().unwrap();
    assert_eq!(last["error"]["code"], "gateway_stopping", "{openai_rest}");
    let anthropic_rest = anthropic_rest.await.unwrap();
    assert!(
        anthropic_rest.contains("event: error") && anthropic_rest.contains("stopping"),
        "{anthropic_rest}"
    );
    let silent = silent.await.unwrap().unwrap();
    assert_eq!(silent.status(), 503);
    assert_eq!(silent.json::<serde_json::Value>().await.unwrap()["error"]["code"], "gateway_stopping");

    let rows = h.ledger_rows().await;
    let row = |model: &str| {
        rows.iter().find(|r| r["model"] == model).unwrap_or_else(|| panic!("no row for {model}: {rows:?}"))
    };
    for model in ["endless-model", "endless-claude"] {
        assert_eq!(row(model)["error_code"], "gateway_stopping", "{model}");
        assert!(row(model)["output_tokens"].as_i64().unwrap() > 0, "{model}: what was relayed is charged");
    }
    assert_eq!(
        (row("silent-model")["status"].as_i64(), row("silent-model")["error_code"].as_str()),
        (Some(503), Some("gateway_stopping"))
    );
}

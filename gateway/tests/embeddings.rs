//! `/v1/embeddings` against a fake OpenAI upstream: what reaches the upstream, what comes back,
//! one priced ledger row per request, budgets, and models of one kind refused on the other API.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

/// An embedding model on the fake (priced `price` USD per million input tokens), and a tenant
/// `frugal` (key `sk-frugal`) with a hard budget of `limit` USD.
fn embedding_route(price: &str, limit: &str) -> String {
    format!(
        r#"
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {{name: embed-route}}
spec:
  models:
    - {{name: fake-embed, upstreamModel: text-embedding-fake, kind: Embedding, pricing: {{inputPerMillion: "{price}"}}}}
  backends:
    - {{name: embedder, provider: openai, baseUrl: "{{UPSTREAM}}", apiKeySecretRef: {{name: upstream-key, key: key}}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: frugal-key}}
stringData: {{key: sk-frugal}}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {{name: frugal}}
spec:
  apiKeys: [{{name: app, secretRef: {{name: frugal-key, key: key}}}}]
---
apiVersion: switchboard.dev/v1alpha1
kind: Budget
metadata: {{name: frugal-cap}}
spec:
  scope: {{kind: Tenant, tenant: frugal}}
  limitUsd: "{limit}"
  period: Monthly
  enforcement: Hard
"#
    )
}

#[tokio::test]
async fn embeddings_are_proxied_with_unknown_fields_and_priced_per_input_token() {
    let mut h = Harness::start().await;
    h.restart_with("embed.yaml", &embedding_route("0.50", "1")).await;
    let request = json!({"model": "fake-embed", "input": ["one two three", "four five"], "dimensions": 4,
                         "encoding_format": "base64", "user": "u-1", "extra_field": "kept"});
    let response = h.post("/v1/embeddings", TEAM_KEY, &request).await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (index, item) in data.iter().enumerate() {
        assert_eq!(item["index"], index);
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(item["embedding"].as_str().unwrap()).unwrap();
        assert_eq!(bytes.len(), 4 * 4, "four little-endian f32s");
    }
    assert_eq!(body["usage"], json!({"prompt_tokens": 5, "total_tokens": 5}));

    let sent = h.upstream.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/embeddings");
    assert_eq!(sent[0].header("authorization"), Some(format!("Bearer {UPSTREAM_KEY}").as_str()));
    let expected = json!({"model": "text-embedding-fake", "input": ["one two three", "four five"],
                          "dimensions": 4, "encoding_format": "base64", "user": "u-1", "extra_field": "kept"});
    assert_eq!(sent[0].body, expected);

    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["id"], request_id);
    assert_eq!((row["endpoint"].as_str(), row["route"].as_str()), (Some("embeddings"), Some("embed-route")));
    assert_eq!((row["input_tokens"].as_i64(), row["output_tokens"].as_i64()), (Some(5), Some(0)));
    assert_eq!(row["cost_nanos"], 5 * 500, "5 tokens at $0.50 per million");
    assert_eq!(row["status"], 200);
}

#[tokio::test]
async fn a_model_of_the_other_kind_or_a_bad_input_is_refused_with_a_row() {
    let mut h = Harness::start().await;
    h.restart_with("embed.yaml", &embedding_route("0.50", "1")).await;
    let chat = json!({"model": "fake-embed", "messages": [{"role": "user", "content": "hi"}]});
    let response = h.post("/v1/chat/completions", TEAM_KEY, &chat).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_supported");
    assert!(body["error"]["message"].as_str().unwrap().contains("/v1/embeddings"), "{body}");

    let response = h.post("/v1/embeddings", TEAM_KEY, &json!({"model": "fake-model", "input": "hi"})).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_supported");

    let response =
        h.post("/v1/embeddings", TEAM_KEY, &json!({"model": "fake-embed", "input": [1, "a"]})).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("`input`"), "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(h.upstream.requests().is_empty(), "nothing refused reached the upstream");

    h.stop_gateway().await;
    h.start_gateway().await;
    let (status, page) = h.get_text("/admin/v1/requests?limit=10", ADMIN_TOKEN).await;
    assert_eq!(status, 200, "{page}");
    let page: Value = serde_json::from_str(&page).unwrap();
    let mut refused: Vec<(&str, &str, i64)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let cost = r["cost_nanos"].as_i64().unwrap();
            (r["endpoint"].as_str().unwrap(), r["error_code"].as_str().unwrap(), cost)
        })
        .collect();
    refused.sort();
    assert_eq!(
        refused,
        [
            ("chat_completions", "model_not_supported", 0),
            ("embeddings", "invalid_request", 0),
            ("embeddings", "model_not_supported", 0)
        ]
    );
}

/// "one two three" reserves at most 13 tokens ($0.013 at $1,000 per million) and spends 3
/// ($0.003): a $0.02 budget serves three such requests and refuses the fourth before it is sent.
#[tokio::test]
async fn a_hard_budget_holds_for_embeddings() {
    let mut h = Harness::start().await;
    h.restart_with("embed.yaml", &embedding_route("1000", "0.02")).await;
    let request = json!({"model": "fake-embed", "input": "one two three"});
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = h.post("/v1/embeddings", "sk-frugal", &request).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        statuses.push((status, body["error"]["code"].as_str().map(str::to_owned)));
    }
    assert_eq!(statuses[..3], [(200, None), (200, None), (200, None)], "{statuses:?}");
    assert_eq!(statuses[3].1.as_deref(), Some("budget_exceeded"), "{statuses:?}");
    assert_eq!(h.upstream.requests().len(), 3);
    h.stop_gateway().await;
    let spent: i64 = h.ledger_rows().await.iter().filter_map(|r| r["cost_nanos"].as_i64()).sum();
    assert_eq!(spent, 3 * 3_000_000, "three requests of 3 tokens at $1,000 per million");
}

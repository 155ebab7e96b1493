//! `/v1/chat/completions` against a fake OpenAI upstream and the mock provider: replies,
//! streams, what reaches the upstream, and exactly one priced ledger row per request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use common::*;
use serde_json::{Value, json};

fn ask(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello gateway"}
    ]})
}

#[tokio::test]
async fn completion_is_proxied_with_the_provider_key_and_priced() {
    let mut h = Harness::start().await;
    let response = h.post("/v1/chat/completions", TEAM_KEY, &ask("fake-model", false)).await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "fake-upstream reply to: hello gateway");
    let usage = body["usage"].clone();

    let sent = h.upstream.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/chat/completions");
    assert_eq!(sent[0].header("authorization"), Some(format!("Bearer {UPSTREAM_KEY}").as_str()));
    assert_eq!(sent[0].body["model"], "fake-model");

    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["id"], request_id);
    assert_eq!((row["tenant"].as_str(), row["api_key"].as_str()), (Some("team"), Some("ci")));
    assert_eq!((row["route"].as_str(), row["backend"].as_str()), (Some("openai-route"), Some("primary")));
    assert_eq!(row["input_tokens"], usage["prompt_tokens"]);
    assert_eq!(row["output_tokens"], usage["completion_tokens"]);
    let expected = usage["prompt_tokens"].as_i64().unwrap() * INPUT_NANOS_PER_TOKEN
        + usage["completion_tokens"].as_i64().unwrap() * OUTPUT_NANOS_PER_TOKEN;
    assert_eq!(row["cost_nanos"], expected);
    assert_eq!(row["status"], 200);
}

#[tokio::test]
async fn stream_is_relayed_and_costed_like_the_non_streamed_request() {
    let mut h = Harness::start().await;
    let mut request = ask("fake-model", true);
    request["stream_options"] = json!({"include_usage": true});
    let response = h.post("/v1/chat/completions", TEAM_KEY, &request).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = response.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let chunks = sse_data(&text);
    let content: String =
        chunks.iter().filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str)).collect();
    assert_eq!(content, "fake-upstream reply to: hello gateway");
    let usage = chunks.iter().find(|c| c["usage"].is_object()).expect("a usage chunk").clone();
    assert_eq!(usage["choices"], json!([]));

    // Without include_usage the client gets no usage chunk, but the gateway still asked for it.
    let plain =
        h.post("/v1/chat/completions", TEAM_KEY, &ask("fake-model", true)).await.text().await.unwrap();
    assert!(sse_data(&plain).iter().all(|c| !c["usage"].is_object()), "{plain}");
    assert_eq!(h.upstream.requests()[1].body["stream_options"]["include_usage"], true);

    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row["stream"], true);
        assert_eq!(row["input_tokens"], usage["usage"]["prompt_tokens"]);
        assert_eq!(row["output_tokens"], usage["usage"]["completion_tokens"]);
        assert_eq!(row["error_code"], Value::Null);
    }
    assert_eq!(rows[0]["cost_nanos"], rows[1]["cost_nanos"]);
}

#[tokio::test]
async fn mock_provider_works_offline_and_models_are_listed_per_tenant() {
    let mut h = Harness::start().await;
    let body: Value =
        h.post("/v1/chat/completions", TEAM_KEY, &ask("demo-echo", false)).await.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "echo (demo-echo, 2 messages, system prompt: yes): hello gateway"
    );
    let models: Value =
        h.client.get(h.url("/v1/models")).bearer_auth(TEAM_KEY).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
    assert!(ids.contains(&"demo-echo") && ids.contains(&"fake-model"), "{ids:?}");
    h.stop_gateway().await;
    assert_eq!(h.ledger_rows().await.len(), 1);
}

#[tokio::test]
async fn fallback_serves_when_the_primary_cannot_be_reached() {
    let mut h = Harness::start().await;
    let response = h.post("/v1/chat/completions", TEAM_KEY, &ask("fallback-model", false)).await;
    assert_eq!(response.status(), 200);
    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["backend"], "alive");
}

#[tokio::test]
async fn a_stream_cut_by_the_upstream_ends_with_an_error_frame_not_a_silent_200() {
    let mut h = Harness::start().await;
    let text = h.post("/v1/chat/completions", TEAM_KEY, &ask("cut-model", true)).await.text().await.unwrap();
    assert!(!text.contains("[DONE]"), "{text}");
    let last = sse_data(&text).pop().unwrap();
    assert!(last["error"]["message"].is_string(), "{text}");
    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["output_tokens"].as_i64().unwrap() > 0, "tokens streamed before the cut are charged");
    assert!(rows[0]["error_code"].is_string());
}

#[tokio::test]
async fn usage_endpoint_reports_spend_per_tenant_to_admins_only() {
    let mut h = Harness::start().await;
    h.post("/v1/chat/completions", TEAM_KEY, &ask("fake-model", false)).await;
    let denied = h.client.get(h.url("/admin/v1/usage")).bearer_auth(TEAM_KEY).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    // The admin token is a bearer token only: in a tenant's `x-api-key` header it opens nothing.
    let sideways =
        h.client.get(h.url("/admin/v1/usage")).header("x-api-key", ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(sideways.status(), 401);
    eventually("the ledger row is flushed", || async {
        let usage = h.admin_usage().await;
        usage["tenants"][0]["tenant"] == "team" && usage["tenants"][0]["requests"] == 1
    })
    .await;
    let metrics = h.metrics().await;
    assert!(metrics.contains("switchboard_requests_total{endpoint=\"chat_completions\",model=\"fake-model\",status=\"2xx\",tenant=\"team\"} 1"), "{metrics}");
    assert!(!metrics.contains(UPSTREAM_KEY) && !metrics.contains(TEAM_KEY));
    // Without the admin token, /metrics names no tenant and shows no spend.
    let public = h.client.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(public.contains("switchboard_config_synchronized 1"), "{public}");
    assert!(!public.contains("tenant=") && !public.contains("cost_nanodollars"), "{public}");
    h.stop_gateway().await;
}

#[tokio::test]
async fn genai_metrics_follow_the_semantic_conventions_and_name_no_tenant() {
    let mut h = Harness::start().await;
    h.post("/v1/chat/completions", TEAM_KEY, &ask("fake-model", false)).await;
    h.post("/v1/chat/completions", TEAM_KEY, &ask("fake-model", true)).await.text().await.unwrap();
    let public = h.client.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let labels =
        r#"gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="fake-model""#;
    for series in [
        format!("gen_ai_client_token_usage_count{{{labels},gen_ai_token_type=\"input\"}} 2"),
        format!("gen_ai_client_token_usage_count{{{labels},gen_ai_token_type=\"output\"}} 2"),
        format!("gen_ai_server_request_duration_seconds_count{{error_type=\"\",{labels}}} 2"),
        // Only the stream has a first token.
        format!("gen_ai_server_time_to_first_token_seconds_count{{error_type=\"\",{labels}}} 1"),
        // The conventions' advice: token buckets in powers of four.
        format!("gen_ai_client_token_usage_bucket{{{labels},gen_ai_token_type=\"input\",le=\"16384\"}} 2"),
    ] {
        assert!(public.contains(&series), "{series} missing:\n{public}");
    }
    h.stop_gateway().await;
}

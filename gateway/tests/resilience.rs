//! Routing under failure, against real loopback fakes: fallback, circuit breakers, deadlines,
//! first-token timeouts, cancellation, queueing, the response cache and structured outputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Harness, eventually, sse_data};
use serde_json::{Value, json};
use switchboard_fake_upstream::{FakeUpstream, Options};

const KEY: &str = "sk-test-team";

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]})
}

/// A second fake, for routes whose backends must behave differently.
async fn second_upstream() -> FakeUpstream {
    FakeUpstream::spawn("127.0.0.1:0".parse().unwrap(), Options::new()).await.unwrap()
}

/// A route `pair-model` with `primary` (the harness's fake) tried before `secondary`.
fn pair_route(secondary: &FakeUpstream, extra: &str) -> String {
    format!(
        r#"
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {{name: pair-route}}
spec:
  models: [{{name: pair-model, upstreamModel: fake-model, pricing: {{inputPerMillion: "1", outputPerMillion: "2"}}}}]
  backends:
    - {{name: primary, provider: openai, baseUrl: "{{UPSTREAM}}", priority: 0}}
    - {{name: secondary, provider: openai, baseUrl: "{}", priority: 1}}
  retries: {{attempts: 1, backoffMs: 1}}
{extra}"#,
        secondary.base_url()
    )
}

fn gauge(metrics: &str, series: &str) -> Option<i64> {
    metrics.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn fallback_serves_when_the_primary_fails() {
    let mut h = Harness::start().await;
    let secondary = second_upstream().await;
    h.restart_with("pair.yaml", &pair_route(&secondary, "")).await;
    for failure in ["error-500", "error-429", "error-503"] {
        h.upstream.set_behavior(Some(failure));
        let response = h.post("/v1/chat/completions", KEY, &hello("pair-model")).await;
        assert_eq!(response.status(), 200, "{failure}");
    }
    assert_eq!(h.upstream.request_count(), 3);
    assert_eq!(secondary.request_count(), 3);
    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    assert!(rows.iter().all(|r| r["backend"] == "secondary" && r["status"] == 200), "{rows:#?}");
}

#[tokio::test]
async fn breaker_ejects_a_failing_backend_and_readmits_it_after_a_good_probe() {
    let mut h = Harness::start().await;
    let secondary = second_upstream().await;
    let route = pair_route(&secondary, "  circuitBreaker: {consecutiveFailures: 2, openSeconds: 1}\n");
    h.restart_with("pair.yaml", &route).await;
    h.upstream.set_behavior(Some("error-500"));
    for _ in 0..2 {
        assert_eq!(h.post("/v1/chat/completions", KEY, &hello("pair-model")).await.status(), 200);
    }
    assert_eq!(h.upstream.request_count(), 2);
    let series = r#"switchboard_backend_healthy{backend="primary",route="pair-route"}"#;
    assert_eq!(gauge(&h.metrics().await, series), Some(0));
    // Ejected: requests go straight to the secondary.
    for _ in 0..5 {
        assert_eq!(h.post("/v1/chat/completions", KEY, &hello("pair-model")).await.status(), 200);
    }
    assert_eq!(h.upstream.request_count(), 2, "no request reached the ejected backend");
    assert_eq!(secondary.request_count(), 7);

    h.upstream.set_behavior(None);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(h.post("/v1/chat/completions", KEY, &hello("pair-model")).await.status(), 200);
    assert_eq!(h.upstream.request_count(), 3, "the probe went to the primary");
    assert_eq!(gauge(&h.metrics().await, series), Some(1));
    assert_eq!(h.post("/v1/chat/completions", KEY, &hello("pair-model")).await.status(), 200);
    assert_eq!(h.upstream.request_count(), 4, "recovered: the primary serves again");
    assert_eq!(secondary.request_count(), 7);
}

#[tokio::test]
async fn every_backend_ejected_fails_fast_with_503_and_retry_after() {
    let mut h = Harness::start().await;
    let route = r#"
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: lonely-route}
spec:
  models: [{name: lonely-model, upstreamModel: fake-model}]
  backends: [{name: only, provider: openai, baseUrl: "{UPSTREAM}"}]
  retries: {attempts: 0}
  circuitBreaker: {consecutiveFailures: 1, openSeconds: 30}
"#;
    h.restart_with("lonely.yaml", route).await;
    h.upstream.set_behavior(Some("error-500"));
    assert_eq!(h.post("/v1/chat/completions", KEY, &hello("lonely-model")).await.status(), 502);
    let response = h.post("/v1/chat/completions", KEY, &hello("lonely-model")).await;
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=31).contains(&retry_after), "retry-after {retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_healthy_backend");
    assert_eq!(h.upstream.request_count(), 1, "the ejected backend was not called again");
}

#[tokio::test]
async fn a_hung_upstream_ends_at_the_route_deadline_with_504_and_is_let_go() {
    let mut h = Harness::start().await;
    let route = r#"
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: deadline-route}
spec:
  models: [{name: deadline-model, upstreamModel: hang}]
  backends: [{name: stuck, provider: openai, baseUrl: "{UPSTREAM}", requestTimeoutSeconds: 600}]
  retries: {attempts: 3, backoffMs: 1}
  timeoutSeconds: 1
"#;
    h.restart_with("deadline.yaml", route).await;
    for stream in [false, true] {
        let mut request = hello("deadline-model");
        request["stream"] = json!(stream);
        let response = h.post("/v1/chat/completions", KEY, &request).await;
        assert_eq!(response.status(), 504, "stream={stream}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "upstream_timeout");
        eventually("the fake sees its hanging request released", || async { h.upstream.hanging() == 0 })
            .await;
    }
}

#[tokio::test]
async fn a_client_going_away_cancels_the_upstream_request() {
    let h = Harness::start().await;
    let client = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let sent =
        client.post(h.url("/v1/chat/completions")).bearer_auth(KEY).json(&hello("hanging-model")).send();
    let waiting = tokio::spawn(sent);
    eventually("the request hangs upstream", || async { h.upstream.hanging() == 1 }).await;
    assert!(waiting.await.unwrap().is_err(), "the client gave up");
    eventually("the gateway let go of the upstream request", || async { h.upstream.hanging() == 0 }).await;
}

#[tokio::test]
async fn a_stream_whose_first_token_is_late_falls_back_before_any_byte_is_sent() {
    let mut h = Harness::start().await;
    let secondary = second_upstream().await;
    let route = format!(
        r#"
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {{name: ttft-route}}
spec:
  models: [{{name: ttft-model, upstreamModel: fake-model}}]
  backends:
    - {{name: sluggish, provider: openai, baseUrl: "{{UPSTREAM}}", priority: 0, firstTokenTimeoutSeconds: 1}}
    - {{name: quick, provider: openai, baseUrl: "{}", priority: 1}}
  retries: {{attempts: 1, backoffMs: 1}}
"#,
        secondary.base_url()
    );
    h.restart_with("ttft.yaml", &route).await;
    h.upstream.set_behavior(Some("slow-5000"));
    let mut request = hello("ttft-model");
    request["stream"] = json!(true);
    let response = h.post("/v1/chat/completions", KEY, &request).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let content: String = sse_data(&text)
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str))
        .collect();
    assert_eq!(content, "fake-upstream reply to: hello there");
    assert_eq!(secondary.request_count(), 1);
}

#[tokio::test]
async fn concurrency_limit_queues_and_a_full_queue_refuses_at_once() {
    let mut h = Harness::start().await;
    h.gateway_args = vec!["--queue-capacity=1".into(), "--queue-timeout-ms=20000".into()];
    let config = r#"
apiVersion: v1
kind: Secret
metadata: {name: narrow-key}
stringData: {key: sk-test-narrow}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: narrow}
spec:
  apiKeys: [{name: ci, secretRef: {name: narrow-key, key: key}}]
  rateLimits: {maxConcurrent: 1}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: slow-route}
spec:
  models: [{name: slow-model, upstreamModel: slow-700}]
  backends: [{name: slow, provider: openai, baseUrl: "{UPSTREAM}"}]
"#;
    h.restart_with("narrow.yaml", config).await;
    let send = |h: &Harness| {
        h.client
            .post(h.url("/v1/chat/completions"))
            .bearer_auth("sk-test-narrow")
            .json(&hello("slow-model"))
            .send()
    };
    let running = tokio::spawn(send(&h));
    eventually("one request runs", || async { h.upstream.request_count() == 1 }).await;
    let queued = tokio::spawn(send(&h));
    eventually("one request waits", || async { h.metrics().await.contains("switchboard_queue_waiting 1") })
        .await;
    let refused = send(&h).await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded");
    // Another tenant is not held up by this one's limit.
    assert_eq!(h.post("/v1/chat/completions", KEY, &hello("fake-model")).await.status(), 200);
    assert_eq!(running.await.unwrap().unwrap().status(), 200);
    assert_eq!(queued.await.unwrap().unwrap().status(), 200);
    assert_eq!(
        h.upstream.request_count(),
        3,
        "the queued request ran after the first, the refused one never"
    );
}

#[tokio::test]
async fn deterministic_requests_are_served_from_the_cache_at_zero_cost() {
    let mut h = Harness::start().await;
    let route = r#"
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: cached-route}
spec:
  models: [{name: cached-model, upstreamModel: fake-model, pricing: {inputPerMillion: "1", outputPerMillion: "2"}}]
  backends: [{name: fake, provider: openai, baseUrl: "{UPSTREAM}"}]
  cache: {ttlSeconds: 60}
"#;
    h.restart_with("cached.yaml", route).await;
    let mut request = hello("cached-model");
    request["temperature"] = json!(0);
    let first = h.post("/v1/chat/completions", KEY, &request).await;
    assert_eq!(first.headers()["x-switchboard-cache"], "miss");
    let first: Value = first.json().await.unwrap();
    let second = h.post("/v1/chat/completions", KEY, &request).await;
    assert_eq!(second.headers()["x-switchboard-cache"], "hit");
    assert_eq!(second.json::<Value>().await.unwrap(), first);
    assert_eq!(h.upstream.request_count(), 1);
    // Sampling requests and opted-out requests always go upstream.
    request["temperature"] = json!(0.7);
    let sampled = h.post("/v1/chat/completions", KEY, &request).await;
    assert!(!sampled.headers().contains_key("x-switchboard-cache"));
    request["temperature"] = json!(0);
    let bypass = h
        .client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("x-switchboard-cache", "off")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert!(!bypass.headers().contains_key("x-switchboard-cache"));
    assert_eq!(h.upstream.request_count(), 3);
    let metrics = h.metrics().await;
    assert!(metrics.contains(r#"switchboard_cache_lookups_total{result="hit"} 1"#), "{metrics}");
    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    let hits: Vec<&Value> = rows.iter().filter(|r| r["provider"] == "cache").collect();
    assert_eq!(hits.len(), 1, "{rows:#?}");
    assert_eq!(hits[0]["cost_nanos"], 0);
    assert_eq!(hits[0]["status"], 200);
}

#[tokio::test]
async fn structured_output_is_validated_and_retried_once_on_the_next_backend() {
    let mut h = Harness::start().await;
    let secondary = second_upstream().await;
    h.restart_with("pair.yaml", &pair_route(&secondary, "")).await;
    // The primary answers prose; the secondary answers JSON (the request, echoed).
    secondary.set_behavior(Some("echo-request"));
    let mut request = hello("pair-model");
    request["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "echo", "strict": true,
        "schema": {"type": "object", "required": ["model", "messages"]}}});
    let response = h.post("/v1/chat/completions", KEY, &request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let content: Value =
        serde_json::from_str(body["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["model"], "fake-model");

    // Neither backend can satisfy this schema: a clear error after one retry.
    request["response_format"]["json_schema"]["schema"] = json!({"type": "object", "required": ["answer"]});
    let response = h.post("/v1/chat/completions", KEY, &request).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_structured_output");
    assert!(body["error"]["message"].as_str().unwrap().contains("answer"), "{body}");
    assert_eq!(h.upstream.request_count() + secondary.request_count(), 4);

    // A schema that is not a schema is the client's error, before any upstream call.
    request["response_format"]["json_schema"]["schema"] = json!({"type": 12});
    let response = h.post("/v1/chat/completions", KEY, &request).await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "invalid_schema");
    assert_eq!(h.upstream.request_count() + secondary.request_count(), 4);

    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    let failed = rows.iter().find(|r| r["status"] == 502).unwrap();
    assert!(failed["output_tokens"].as_i64().unwrap() > 0, "discarded replies are still charged: {failed}");
    assert!(failed["cost_nanos"].as_i64().unwrap() > 0);
}

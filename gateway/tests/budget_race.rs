//! The budget race: 64 clients at once against a hard budget of a few requests' cost, with a
//! provider that honours `max_tokens` and with one that ignores it. How far spend may pass the
//! limit is measured in requests' cost (docs/reliability.md keeps the figures).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use common::*;
use futures::future::join_all;
use serde_json::{Value, json};

const KEY: &str = "sk-racer";

/// A tenant with a hard budget of `limit_usd`, and a route to `fake-model` (honours `max_tokens`)
/// and to an upstream ignoring it, both at $1 per million input and $2 per million output tokens.
fn config(limit_usd: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: racer-key}}
stringData: {{key: {KEY}}}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {{name: racer}}
spec:
  apiKeys: [{{name: app, secretRef: {{name: racer-key, key: key}}}}]
---
apiVersion: switchboard.dev/v1alpha1
kind: Budget
metadata: {{name: racer-cap}}
spec:
  scope: {{kind: Tenant, tenant: racer}}
  limitUsd: "{limit_usd}"
  period: Monthly
  enforcement: Hard
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {{name: greedy}}
spec:
  models:
    - {{name: greedy-model, upstreamModel: ignore-max-tokens, pricing: {{inputPerMillion: "1", outputPerMillion: "2"}}}}
  backends: [{{name: greedy, provider: openai, baseUrl: "{{UPSTREAM}}"}}]
  retries: {{attempts: 0}}
"#
    )
}

/// A prompt of one-letter words: about a token per two characters, so a characters / 4 estimate
/// counts half of it.
fn request(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "max_tokens": 32,
           "messages": [{"role": "user", "content": "a b c d e f g h i j k l m n o p q r s t"}]})
}

/// Fires 64 requests at once, then one at a time until the budget refuses; returns the spend
/// recorded and the cost of the dearest request.
async fn race(model: &str, stream: bool, limit_usd: &str) -> (i64, i64) {
    let mut h = Harness::start().await;
    h.restart_with("racer.yaml", &config(limit_usd)).await;
    // Another tenant's request first: a backend that overruns max_tokens is known from its first
    // such reply on (before that, whole replies from it cannot be cut; see docs/reliability.md).
    let warm_up = h.post("/v1/chat/completions", TEAM_KEY, &request(model, false)).await;
    assert_eq!(warm_up.status(), 200);
    let send =
        || h.client.post(h.url("/v1/chat/completions")).bearer_auth(KEY).json(&request(model, stream)).send();
    for response in join_all((0..64).map(|_| send())).await {
        let response = response.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(status == 200 || status == 429, "{status}: {body}");
    }
    for _ in 0..20 {
        let response = send().await.unwrap();
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap_or_default();
        if body["error"]["code"] == "budget_exceeded" {
            break;
        }
    }
    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    let racers = rows.iter().filter(|r| r["tenant"] == "racer");
    let costs: Vec<i64> = racers.map(|r| r["cost_nanos"].as_i64().unwrap()).collect();
    (costs.iter().sum(), costs.iter().copied().max().unwrap_or(0))
}

/// Spend past the limit, in units of the dearest request's cost.
fn overshoot(spent: i64, limit_nanos: i64, request: i64) -> f64 {
    (spent - limit_nanos).max(0) as f64 / request.max(1) as f64
}

/// What each request reserves: the prompt's 39 bytes and 8 tokens of framing at $1 per million,
/// 32 output tokens at $2 per million.
const RESERVATION: i64 = 47 * 1_000 + 32 * 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_honouring_max_tokens_never_takes_spend_past_the_limit() {
    for stream in [false, true] {
        let (spent, request) = race("fake-model", stream, "0.0005").await;
        println!("honouring, stream={stream}: spent {spent} of 500000, request {request}");
        assert!(spent <= 500_000, "stream={stream}: spent {spent} nano-dollars of 500000");
        // Refused only once what is left is less than a reservation (or the last room is taken).
        assert!(spent > 500_000 - 2 * RESERVATION, "stream={stream}: the budget was usable: {spent}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_ignoring_max_tokens_is_cut_off_at_the_reservation() {
    // Whole replies too: from a backend known to overrun, they are read as streams and cut.
    for stream in [true, false] {
        let (spent, request) = race("greedy-model", stream, "0.0005").await;
        let over = overshoot(spent, 500_000, request);
        println!(
            "ignoring, stream={stream}: spent {spent} of 500000, request {request}, overshoot {over:.2} requests"
        );
        assert!(over <= 1.0, "stream={stream}: spent {spent}, {over:.2} requests past the limit");
    }
}

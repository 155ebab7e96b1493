//! Rego policies on Tenants and ProviderRoutes: a request is allowed, denied with the policy's
//! reason in the API's error shape, kept to the models a policy allows, and capped at its
//! `max_tokens` (the route's cap and the tenant's together); a refusal leaves a request log row;
//! a policy that does not compile keeps the last good config serving and says why, and
//! `--check` finds it offline. Guardrails deny and redact in requests, and redact and withhold
//! replies, whole and streamed, with their hits in the request log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{ADMIN_TOKEN, Harness, TEAM_KEY, eventually, write_config};
use serde_json::{Value, json};

/// The `team` tenant of the harness, with a policy; and the echo route with one of its own.
const POLICIES: &str = r#"
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: team}
spec:
  apiKeys: [{name: ci, secretRef: {name: team-key, key: key}}]
  policy:
    rego: |
      package switchboard
      import rego.v1

      deny contains sprintf("key %s may not use %s", [input.key, input.model]) if {
        input.model == "claude-fake"
        input.key == "ci"
      }
      deny contains "streams need a max_tokens" if {
        input.stream
        input.max_tokens == null
      }
      models := {"fake-model", "claude-fake", "small-model"}
      max_tokens := 64

      # Guardrails: what the detectors found in the messages, and what to take out of them.
      deny contains "no payment card numbers, please" if input.detected.payment_card > 0
      redact := {"email", "api_key"}
      redact_reply := {"phone", "iban"}
      deny_reply := {"private_key"}
"#;

const BASE_TENANT_REMOVED: &str = "# the team tenant lives in policies.yaml\n";

fn chat(model: &str, extra: Value) -> Value {
    let mut body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

async fn refused(h: &Harness, body: &Value) -> (u16, String, String) {
    let response = h.post("/v1/chat/completions", TEAM_KEY, body).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap_or_default().into(),
        body["error"]["message"].as_str().unwrap_or_default().into(),
    )
}

/// The harness's base config with the `team` tenant replaced by the one with a policy.
async fn start() -> Harness {
    let mut h = Harness::start().await;
    let base = std::fs::read_to_string(h.config_dir().join("base.yaml")).unwrap();
    let tenant = "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: team}\nspec:\n  apiKeys: [{name: ci, secretRef: {name: team-key, key: key}}]\n";
    assert!(base.contains(tenant));
    write_config(&h.config_dir(), "base.yaml", &base.replace(tenant, BASE_TENANT_REMOVED));
    h.restart_with("policies.yaml", POLICIES).await;
    h
}

#[tokio::test]
async fn policies_allow_deny_restrict_models_and_cap_tokens() {
    let h = start().await;
    // Allowed, and capped: no max_tokens asked, the policy's 64 goes upstream; 1000 asked, 64 too.
    for asked in [json!({}), json!({"max_tokens": 1000}), json!({"max_completion_tokens": 9})] {
        let response = h.post("/v1/chat/completions", TEAM_KEY, &chat("fake-model", asked.clone())).await;
        assert_eq!(response.status(), 200, "{asked}");
    }
    let sent: Vec<Value> = h.upstream.requests().into_iter().map(|r| r.body).collect();
    let limits: Vec<(Option<u64>, Option<u64>)> =
        sent.iter().map(|b| (b["max_tokens"].as_u64(), b["max_completion_tokens"].as_u64())).collect();
    assert_eq!(limits, [(Some(64), None), (Some(64), None), (None, Some(9))]);

    // Denied with the policy's reason.
    let (status, code, message) = refused(&h, &chat("claude-fake", json!({}))).await;
    assert_eq!((status, code.as_str()), (403, "policy_denied"));
    assert_eq!(message, "denied by the policy of Tenant team: key ci may not use claude-fake");
    let (status, _, message) = refused(&h, &chat("fake-model", json!({"stream": true}))).await;
    assert_eq!(status, 403);
    assert!(message.ends_with("streams need a max_tokens"), "{message}");
    // A model the policy does not list.
    let (status, code, message) = refused(&h, &chat("failing-model", json!({}))).await;
    assert_eq!((status, code.as_str()), (403, "policy_denied"));
    assert_eq!(message, "the policy of Tenant team does not allow model \"failing-model\"");

    // The Anthropic API refuses in its own shape.
    let body =
        json!({"model": "claude-fake", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let response = h.post("/v1/messages", TEAM_KEY, &body).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "permission_error", "{body}");

    // Each refusal is in the request log with its code.
    eventually("the refusals in the request log", || async {
        let (_, log) = h.get_text("/admin/v1/requests?limit=20", ADMIN_TOKEN).await;
        let log: Value = serde_json::from_str(&log).unwrap();
        log["data"].as_array().unwrap().iter().filter(|r| r["error_code"] == "policy_denied").count() == 4
    })
    .await;
}

#[tokio::test]
async fn guardrails_deny_and_redact_for_a_policy() {
    let h = start().await;
    let card = json!({"model": "fake-model", "messages": [{"role": "user", "content": "bill my card 4111 1111 1111 1111"}]});
    let (status, code, message) = refused(&h, &card).await;
    assert_eq!((status, code.as_str()), (403, "policy_denied"));
    assert!(message.ends_with("no payment card numbers, please"), "{message}");
    // A number that fails the Luhn check is no card.
    let not_a_card = json!({"model": "fake-model", "messages": [{"role": "user", "content": "order 4111 1111 1111 1112"}]});
    assert_eq!(h.post("/v1/chat/completions", TEAM_KEY, &not_a_card).await.status(), 200);

    let secrets = json!({"model": "fake-model", "messages": [
        {"role": "system", "content": "escalate to ops@example.com"},
        {"role": "user", "content": [{"type": "text", "text": "my key is sk-proj-abcdefghijklmnopqrstuvwx1234, mail grace@example.org"}]},
    ]});
    assert_eq!(h.post("/v1/chat/completions", TEAM_KEY, &secrets).await.status(), 200);
    let sent = h.upstream.requests().last().unwrap().body.clone();
    assert_eq!(sent["messages"][0]["content"], "escalate to [REDACTED:email]");
    assert_eq!(
        sent["messages"][1]["content"][0]["text"],
        "my key is [REDACTED:api_key], mail [REDACTED:email]"
    );
    let metrics = h.metrics().await;
    for line in [
        "switchboard_guardrail_hits_total{action=\"redacted\",kind=\"email\",on=\"request\"} 2",
        "switchboard_guardrail_hits_total{action=\"redacted\",kind=\"api_key\",on=\"request\"} 1",
        "switchboard_guardrail_hits_total{action=\"detected\",kind=\"payment_card\",on=\"request\"} 1",
    ] {
        assert!(metrics.contains(line), "no {line}");
    }
    assert!(!metrics.contains("grace@example.org") && !metrics.contains("sk-proj-"));
}

/// The fake upstream answers "fake-upstream reply to: <the user's text>", streamed word by word,
/// so what a request says comes back in the reply, split across chunks.
const PERSONAL: &str = "call +44 20 7946 0958 or pay GB82 WEST 1234 5698 7654 32 today";
const REDACTED: &str = "fake-upstream reply to: call [REDACTED:phone] or pay [REDACTED:iban] today";
const PRIVATE_KEY: &str =
    "here: -----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEFAASC -----END PRIVATE KEY-----";

fn said(text: &str, extra: Value) -> Value {
    let mut body =
        json!({"model": "fake-model", "max_tokens": 50, "messages": [{"role": "user", "content": text}]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

/// The text of an OpenAI or an Anthropic stream, and its error frame if it ended with one.
fn streamed_text(body: &str) -> (String, Option<Value>) {
    let mut text = String::new();
    let mut error = None;
    for data in common::sse_data(body) {
        let piece = data["choices"][0]["delta"]["content"].as_str().or(data["delta"]["text"].as_str());
        text.push_str(piece.unwrap_or_default());
        if data.get("error").is_some() {
            error = Some(data["error"].clone());
        }
    }
    (text, error)
}

#[tokio::test]
async fn reply_guardrails_redact_and_withhold_whole_and_streamed_replies() {
    let h = start().await;
    // Whole: redacted in the reply, though the upstream got the request as it was.
    let response = h.post("/v1/chat/completions", TEAM_KEY, &said(PERSONAL, json!({}))).await;
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["choices"][0]["message"]["content"], REDACTED);
    assert!(h.upstream.requests().last().unwrap().body.to_string().contains("7946 0958"));

    // Streamed, one word per chunk: each occurrence is whole before anything of it goes out.
    let stream = said(PERSONAL, json!({"stream": true}));
    let body = h.post("/v1/chat/completions", TEAM_KEY, &stream).await.text().await.unwrap();
    assert_eq!(streamed_text(&body), (REDACTED.to_owned(), None));
    // Digits alone could be in a frame's `created` or `id`, so the phone is looked for with its space.
    assert!(!body.contains("7946 ") && !body.contains("WEST"), "{body}");
    let messages = json!({"model": "fake-model", "max_tokens": 50, "stream": true,
        "messages": [{"role": "user", "content": PERSONAL}]});
    let body = h.post("/v1/messages", TEAM_KEY, &messages).await.text().await.unwrap();
    assert_eq!(streamed_text(&body).0, REDACTED);

    // Withheld: a private key in the reply, whole or streamed, in each API's error shape.
    let response = h.post("/v1/chat/completions", TEAM_KEY, &said(PRIVATE_KEY, json!({}))).await;
    assert_eq!(response.status(), 403);
    let refused: Value = response.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "policy_denied");
    assert_eq!(
        refused["error"]["message"],
        "the reply was withheld by the policy of Tenant team: it contained private_key"
    );
    let stream = said(PRIVATE_KEY, json!({"stream": true}));
    let body = h.post("/v1/chat/completions", TEAM_KEY, &stream).await.text().await.unwrap();
    let (text, error) = streamed_text(&body);
    assert_eq!(error.unwrap()["code"], "policy_denied", "{body}");
    assert!(!text.contains("BEGIN") && !text.contains("MIIE"), "{text}");
    let messages = json!({"model": "fake-model", "max_tokens": 50,
        "messages": [{"role": "user", "content": PRIVATE_KEY}]});
    let response = h.post("/v1/messages", TEAM_KEY, &messages).await;
    assert_eq!(response.status(), 403);

    // The request log keeps the hits (never the text); a withheld reply is charged all the same.
    let rows = eventually_rows(&h, 6).await;
    let hits = |row: &Value| row["guardrails"].as_array().unwrap().clone();
    let whole = &rows[5];
    for hit in [
        json!({"on": "request", "kind": "phone", "action": "detected", "count": 1}),
        json!({"on": "reply", "kind": "iban", "action": "detected", "count": 1}),
        json!({"on": "reply", "kind": "phone", "action": "redacted", "count": 1}),
        json!({"on": "reply", "kind": "iban", "action": "redacted", "count": 1}),
    ] {
        assert!(hits(whole).contains(&hit), "no {hit} in {whole}");
    }
    for withheld in [&rows[2], &rows[1], &rows[0]] {
        let denied = json!({"on": "reply", "kind": "private_key", "action": "denied", "count": 1});
        assert!(hits(withheld).contains(&denied), "{withheld}");
        assert_eq!(withheld["error_code"], "policy_denied");
        assert!(withheld["output_tokens"].as_i64().unwrap() > 0, "{withheld}");
    }
    let log = serde_json::to_string(&rows).unwrap();
    assert!(!log.contains("7946 0958") && !log.contains("WEST") && !log.contains("MIIE"), "{log}");
    let metrics = h.metrics().await;
    let line = "switchboard_guardrail_hits_total{action=\"denied\",kind=\"private_key\",on=\"reply\"} 3";
    assert!(metrics.contains(line), "no {line}");
}

/// The request log's newest `count` rows, once they are written.
async fn eventually_rows(h: &Harness, count: usize) -> Vec<Value> {
    let path = format!("/admin/v1/requests?limit={count}");
    eventually("the rows in the request log", || async {
        let (_, log) = h.get_text(&path, ADMIN_TOKEN).await;
        serde_json::from_str::<Value>(&log).unwrap()["data"].as_array().unwrap().len() == count
    })
    .await;
    let (_, log) = h.get_text(&path, ADMIN_TOKEN).await;
    serde_json::from_str::<Value>(&log).unwrap()["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_route_policy_applies_after_the_tenants() {
    let mut h = start().await;
    let route = r#"
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: small}
spec:
  models: [{name: small-model, upstreamModel: echo-upstream}]
  backends: [{name: primary, provider: openai, baseUrl: "{UPSTREAM}"}]
  policy:
    rego: |
      package switchboard
      max_tokens := 8
      deny contains "small-model is for the MCP server only" if input.endpoint == "messages"
"#;
    h.restart_with("route.yaml", route).await;
    let response =
        h.post("/v1/chat/completions", TEAM_KEY, &chat("small-model", json!({"max_tokens": 30}))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(h.upstream.requests().last().unwrap().body["max_tokens"], 8);
    let body =
        json!({"model": "small-model", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let response = h.post("/v1/messages", TEAM_KEY, &body).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "denied by the policy of ProviderRoute small: small-model is for the MCP server only"
    );
}

#[tokio::test]
async fn a_policy_that_does_not_compile_keeps_the_last_good_config() {
    let h = start().await;
    let broken = POLICIES.replace("max_tokens := 64", "max_tokens := ");
    write_config(&h.config_dir(), "policies.yaml", &broken);
    eventually("the rejected reload is counted", || async {
        h.metrics().await.contains("switchboard_config_synchronized 0")
    })
    .await;
    let (_, config) = h.get_text("/admin/v1/config", ADMIN_TOKEN).await;
    let config: Value = serde_json::from_str(&config).unwrap();
    let error = config["last_error"].as_str().unwrap();
    assert!(
        error.contains("Tenant") && error.contains("spec.policy.rego") && error.contains("policy.rego:"),
        "{error}"
    );
    // The last good policy still decides.
    let (status, code, _) = refused(&h, &chat("claude-fake", json!({}))).await;
    assert_eq!((status, code.as_str()), (403, "policy_denied"));

    // Offline, before a merge: `--check` names the resource, the field and the compiler's line.
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard-gateway"))
        .arg("--config-dir")
        .arg(h.config_dir())
        .arg("--check")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(
        text.contains("team") && text.contains("spec.policy.rego") && text.contains("policy.rego:"),
        "{text}"
    );
}

//! The audit trail: refused credentials (an API key, a token, the admin token; on the LLM APIs,
//! `/mcp` and the admin API) and administrative requests each leave one row with who, what, when,
//! from where and the outcome; never the credential; filtered and paged by `GET /admin/v1/audit`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_TOKEN, Harness, TEAM_KEY, eventually};
use serde_json::{Value, json};

const WRONG_KEY: &str = "sk-wrong-key-8c1d22";
const WRONG_ADMIN: &str = "not-the-admin-token-5e";
/// Looks like a JWT, signed by nobody.
const FORGED_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2V2aWwuZXhhbXBsZSJ9.c2lnbmF0dXJl";

async fn audit(h: &Harness, query: &str) -> Value {
    let (status, body) = h.get_text(&format!("/admin/v1/audit{query}"), ADMIN_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn refused_credentials_and_admin_requests_are_audited_without_secrets() {
    let h = Harness::start().await;
    let hello = json!({"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(h.post("/v1/chat/completions", WRONG_KEY, &hello).await.status(), 401);
    assert_eq!(h.post("/v1/chat/completions", FORGED_TOKEN, &hello).await.status(), 401);
    // No credential at all is no sign-in attempt: not audited.
    let anonymous = h.client.post(h.url("/v1/chat/completions")).json(&hello).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let mcp = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let refused = h
        .client
        .post(h.url("/mcp"))
        .bearer_auth(WRONG_KEY)
        .header("accept", "application/json, text/event-stream")
        .json(&mcp)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(h.get_text("/admin/v1/usage", WRONG_ADMIN).await.0, 401);
    // Served requests are not audit events; administrative ones are.
    assert_eq!(h.post("/v1/chat/completions", TEAM_KEY, &hello).await.status(), 200);
    assert_eq!(h.get_text("/admin/v1/tenants/nobody?view=full", ADMIN_TOKEN).await.0, 404);

    eventually("six audit rows", || async {
        // The audit read below is itself audited once written; count the others.
        audit(&h, "?limit=500").await["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| !e["target"].as_str().unwrap().contains("/admin/v1/audit"))
            .count()
            == 5
    })
    .await;
    let all = audit(&h, "?limit=500").await;
    let events: Vec<(String, String, String, String)> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["target"].as_str().unwrap().contains("/admin/v1/audit"))
        .map(|e| {
            let field = |name: &str| e[name].as_str().unwrap_or_default().to_owned();
            (field("action"), field("identity_provider"), field("target"), field("outcome"))
        })
        .collect();
    let expected = [
        ("admin.request", "admin_token", "GET /admin/v1/tenants/nobody?view=full", "404"),
        ("credential.refused", "admin_token", "GET /admin/v1/usage", "denied"),
        ("credential.refused", "api_key", "POST /mcp", "denied"),
        ("credential.refused", "token", "POST /v1/chat/completions", "denied"),
        ("credential.refused", "api_key", "POST /v1/chat/completions", "denied"),
    ];
    let expected: Vec<(String, String, String, String)> = expected
        .iter()
        .map(|(a, b, c, d)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned(), (*d).to_owned()))
        .collect();
    assert_eq!(events, expected);
    for event in all["data"].as_array().unwrap() {
        assert_eq!(event["source"], "127.0.0.1", "{event}");
        assert!(event["at_ms"].as_i64().unwrap() > 0);
    }
    let token_refusal =
        &all["data"].as_array().unwrap().iter().find(|e| e["identity_provider"] == "token").unwrap();
    assert!(token_refusal["detail"].as_str().unwrap().starts_with("invalid token: "), "{token_refusal}");
    let text = all.to_string();
    for secret in [WRONG_KEY, WRONG_ADMIN, FORGED_TOKEN, TEAM_KEY, ADMIN_TOKEN] {
        assert!(!text.contains(secret), "a credential in the audit trail");
    }

    // Filters and pages.
    let refusals = audit(&h, "?action=credential.refused&limit=2").await;
    assert_eq!(refusals["data"].as_array().unwrap().len(), 2);
    let cursor = refusals["next_cursor"].as_str().unwrap();
    let rest = audit(&h, &format!("?action=credential.refused&cursor={cursor}")).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());
    assert_eq!(h.get_text("/admin/v1/audit?limit=0", ADMIN_TOKEN).await.0, 400);
}

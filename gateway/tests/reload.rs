//! Hot reload of the config folder: good edits apply within seconds, bad ones keep the last
//! good config serving.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use common::*;
use serde_json::json;

const NEW_TENANT: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: new-key}
stringData: {key: sk-new-tenant}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: newcomer}
spec:
  apiKeys: [{name: main, secretRef: {name: new-key, key: key}}]
  allowedRoutes: [echo]
"#;

fn hello(model: &str) -> serde_json::Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// `GET /admin/v1/config` with the admin token.
async fn config_status(h: &Harness) -> serde_json::Value {
    let response = h.client.get(h.url("/admin/v1/config")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn invalid_manifest_keeps_the_last_good_config_and_a_fix_applies() {
    let h = Harness::start().await;
    let before = config_status(&h).await;
    assert_eq!((before["in_sync"].as_bool(), before["ready"].as_bool()), (Some(true), Some(true)));
    assert_eq!(before["tenants"], 1);
    assert!(before["last_error"].is_null() && before["loaded_at_ms"].is_i64());
    let ready = h.client.get(h.url("/readyz")).send().await.unwrap().text().await.unwrap();
    assert_eq!(ready.trim(), format!("ready {}", before["version"].as_str().unwrap()));
    // A Budget with a negative limit breaks the schema: the whole folder is rejected.
    write_config(
        &h.config_dir(),
        "broken.yaml",
        "apiVersion: switchboard.dev/v1alpha1\nkind: Budget\nmetadata: {name: bad}\nspec:\n  scope: {kind: Tenant, tenant: team}\n  limitUsd: \"-5\"\n  period: Daily\n",
    );
    write_config(&h.config_dir(), "newcomer.yaml", NEW_TENANT);
    eventually("the rejected reload is counted", || async {
        let metrics = h.metrics().await;
        metrics.contains("switchboard_config_reloads_total{result=\"failure\"}")
            && metrics.contains("switchboard_config_synchronized 0")
    })
    .await;
    assert_eq!(h.post("/v1/chat/completions", TEAM_KEY, &hello("demo-echo")).await.status(), 200);
    assert_eq!(h.post("/v1/chat/completions", "sk-new-tenant", &hello("demo-echo")).await.status(), 401);
    // The admin API says the same: still the old version, out of sync, and why.
    let rejected = config_status(&h).await;
    assert_eq!((rejected["in_sync"].as_bool(), &rejected["version"]), (Some(false), &before["version"]));
    assert!(rejected["last_error"].as_str().unwrap().contains("broken.yaml"), "{rejected}");

    std::fs::remove_file(h.config_dir().join("broken.yaml")).unwrap();
    eventually("the new tenant's key works", || async {
        h.post("/v1/chat/completions", "sk-new-tenant", &hello("demo-echo")).await.status() == 200
    })
    .await;
    let fixed = config_status(&h).await;
    assert_eq!((fixed["in_sync"].as_bool(), fixed["tenants"].as_i64()), (Some(true), Some(2)));
    assert_ne!(fixed["version"], before["version"]);
    assert!(fixed["loaded_at_ms"].as_i64() > before["loaded_at_ms"].as_i64());
    // allowedRoutes limits the newcomer to the echo route.
    assert_eq!(h.post("/v1/chat/completions", "sk-new-tenant", &hello("fake-model")).await.status(), 404);
}

#[tokio::test]
async fn deleting_a_tenant_revokes_its_key() {
    let h = Harness::start().await;
    write_config(&h.config_dir(), "newcomer.yaml", NEW_TENANT);
    eventually("the key works", || async {
        h.post("/v1/chat/completions", "sk-new-tenant", &hello("demo-echo")).await.status() == 200
    })
    .await;
    std::fs::remove_file(h.config_dir().join("newcomer.yaml")).unwrap();
    eventually("the key is revoked", || async {
        h.post("/v1/chat/completions", "sk-new-tenant", &hello("demo-echo")).await.status() == 401
    })
    .await;
}

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

#[tokio::test]
async fn invalid_manifest_keeps_the_last_good_config_and_a_fix_applies() {
    let h = Harness::start().await;
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

    std::fs::remove_file(h.config_dir().join("broken.yaml")).unwrap();
    eventually("the new tenant's key works", || async {
        h.post("/v1/chat/completions", "sk-new-tenant", &hello("demo-echo")).await.status() == 200
    })
    .await;
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

//! Changes through the admin API on a standalone gateway: a tenant created, a key added (its
//! value answered once, and working when the answer arrives), revoked (refused when the answer
//! arrives), a tenant from another file refused as not the console's, wrong names refused, the
//! changes in the audit trail without the key, and the files they leave in the config folder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_TOKEN, Harness, TEAM_KEY, eventually};
use serde_json::{Value, json};

async fn chat_status(h: &Harness, key: &str) -> u16 {
    let body = json!({"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]});
    h.post("/v1/chat/completions", key, &body).await.status().as_u16()
}

#[tokio::test]
async fn a_tenant_and_its_keys_are_created_and_revoked_through_the_admin_api() {
    let h = Harness::start().await;
    let created = h
        .post("/admin/v1/tenants", ADMIN_TOKEN, &json!({"name": "payments", "display_name": "Payments"}))
        .await;
    assert_eq!(created.status(), 201);
    let (status, detail) = h.get_text("/admin/v1/tenants/payments", ADMIN_TOKEN).await;
    assert_eq!(status, 200, "served when the answer arrived: {detail}");
    let detail: Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(
        (detail["display_name"].as_str(), detail["changeable"].as_bool()),
        (Some("Payments"), Some(true))
    );
    let again = h.post("/admin/v1/tenants", ADMIN_TOKEN, &json!({"name": "payments"})).await;
    assert_eq!(again.status(), 409);

    // A key: its value once, working as soon as the answer is here.
    let answer = h.post("/admin/v1/tenants/payments/keys", ADMIN_TOKEN, &json!({"name": "ci"})).await;
    assert_eq!(answer.status(), 201);
    let answer: Value = answer.json().await.unwrap();
    let key = answer["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-sb-") && key.len() == 54, "{key}");
    assert_eq!(chat_status(&h, &key).await, 200);
    let secret = std::fs::read_to_string(h.config_dir().join("console-key.payments.ci.yaml")).unwrap();
    assert!(secret.contains(&key));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(h.config_dir().join("console-key.payments.ci.yaml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key's file is its owner's only: {mode:o}");
    }
    let (_, detail) = h.get_text("/admin/v1/tenants/payments", ADMIN_TOKEN).await;
    assert!(!detail.contains(&key), "a key's value is answered once, never again");

    // Revoked: refused as soon as the answer is here.
    let revoked = h
        .client
        .delete(h.url("/admin/v1/tenants/payments/keys/ci"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(chat_status(&h, &key).await, 401);
    assert!(!h.config_dir().join("console-key.payments.ci.yaml").exists());

    // Not the console's: the harness's own tenants are defined in base.yaml.
    let refused = h.post("/admin/v1/tenants/team/keys", ADMIN_TOKEN, &json!({"name": "ci2"})).await;
    assert_eq!(refused.status(), 409);
    let message = refused.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("not created by the console"), "{message}");
    let (_, detail) = h.get_text("/admin/v1/tenants/team", ADMIN_TOKEN).await;
    let detail: Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(detail["changeable"], false);
    assert!(detail["read_only_reason"].as_str().unwrap().contains("config folder's files"), "{detail}");
    assert_eq!(chat_status(&h, TEAM_KEY).await, 200, "and it keeps working");
    for (path, body) in [
        ("/admin/v1/tenants", json!({"name": "Bad_Name"})),
        ("/admin/v1/tenants", json!({"name": "../escape"})),
        ("/admin/v1/tenants", json!({"name": "x", "extra": 1})),
        ("/admin/v1/tenants/payments/keys", json!({"name": "-x"})),
    ] {
        assert_eq!(h.post(path, ADMIN_TOKEN, &body).await.status(), 400, "{path} {body}");
    }
    // A body that is not labelled JSON (what a form of another site could send) changes nothing.
    let form = h
        .client
        .post(h.url("/admin/v1/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "text/plain")
        .body(r#"{"name": "by-form"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 400);
    let nobody = h.post("/admin/v1/tenants/nobody/keys", ADMIN_TOKEN, &json!({"name": "ci"})).await;
    assert_eq!(nobody.status(), 404);
    let wrong = h.post("/admin/v1/tenants", "not-the-admin-token", &json!({"name": "x"})).await;
    assert_eq!(wrong.status(), 401);

    // Each change is in the audit trail, with who and what, never the key.
    eventually("the changes in the audit trail", || async {
        let (_, audit) = h.get_text("/admin/v1/audit?limit=100", ADMIN_TOKEN).await;
        audit.contains("POST /admin/v1/tenants/payments/keys")
            && audit.contains("DELETE /admin/v1/tenants/payments/keys/ci")
    })
    .await;
    let (_, audit) = h.get_text("/admin/v1/audit?limit=100", ADMIN_TOKEN).await;
    assert!(!audit.contains(&key));
}

async fn put(h: &Harness, path: &str, body: &Value) -> (u16, Value) {
    let response = h.client.put(h.url(path)).bearer_auth(ADMIN_TOKEN).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_tenants_rate_limits_and_default_budget_are_set_and_enforced_when_answered() {
    let h = Harness::start().await;
    let created = h.post("/admin/v1/tenants", ADMIN_TOKEN, &json!({"name": "payments"})).await;
    assert_eq!(created.status(), 201);
    let answer = h.post("/admin/v1/tenants/payments/keys", ADMIN_TOKEN, &json!({"name": "ci"})).await;
    let key = answer.json::<Value>().await.unwrap()["key"].as_str().unwrap().to_owned();

    // One request a minute: the second is refused as soon as the answer is here.
    let (status, body) =
        put(&h, "/admin/v1/tenants/payments/rate_limits", &json!({"requestsPerMinute": 1})).await;
    assert_eq!((status, &body["rate_limits"]), (200, &json!({"requestsPerMinute": 1})));
    assert_eq!(chat_status(&h, &key).await, 200);
    assert_eq!(chat_status(&h, &key).await, 429);
    let (_, detail) = h.get_text("/admin/v1/tenants/payments", ADMIN_TOKEN).await;
    let detail: Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(detail["rate_limits"], json!({"requestsPerMinute": 1}), "what GET shows is what PUT takes");
    let (status, _) = put(&h, "/admin/v1/tenants/payments/rate_limits", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(chat_status(&h, &key).await, 200, "no limit any more");

    // A default budget, served with its limit when answered; removed again.
    let budget = json!({"limitUsd": "12.50", "period": "Weekly", "enforcement": "Soft"});
    let (status, _) = put(&h, "/admin/v1/tenants/payments/default_budget", &budget).await;
    assert_eq!(status, 200);
    let (_, detail) = h.get_text("/admin/v1/tenants/payments", ADMIN_TOKEN).await;
    let detail: Value = serde_json::from_str(&detail).unwrap();
    let served = &detail["budgets"][0];
    assert_eq!(
        (&served["name"], &served["limit_usd"], &served["period"], &served["enforcement"]),
        (&json!("payments/default"), &json!("12.5"), &json!("Weekly"), &json!("Soft")),
        "{detail}"
    );
    let removed = h
        .client
        .delete(h.url("/admin/v1/tenants/payments/default_budget"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    let (_, detail) = h.get_text("/admin/v1/tenants/payments", ADMIN_TOKEN).await;
    assert_eq!(serde_json::from_str::<Value>(&detail).unwrap()["budgets"], json!([]));

    // Out of the schema's range, unknown fields, a zero budget, another file's tenant: refused.
    for (path, body, expected) in [
        ("rate_limits", json!({"requestsPerMinute": 0}), 400),
        ("rate_limits", json!({"tokensPerMinute": 60_000_001}), 400),
        ("rate_limits", json!({"requestsPerMinute": -1}), 400),
        ("rate_limits", json!({"requests_per_minute": 5}), 400),
        ("default_budget", json!({"limitUsd": "0", "period": "Monthly"}), 400),
        ("default_budget", json!({"limitUsd": "1e9", "period": "Monthly"}), 400),
        ("default_budget", json!({"limitUsd": "5", "period": "Hourly"}), 400),
    ] {
        let (status, answer) = put(&h, &format!("/admin/v1/tenants/payments/{path}"), &body).await;
        assert_eq!(status, expected, "{path} {body}: {answer}");
    }
    let (status, _) = put(&h, "/admin/v1/tenants/team/rate_limits", &json!({"requestsPerMinute": 5})).await;
    assert_eq!(status, 409, "the harness's tenants are base.yaml's");
}

#[tokio::test]
async fn budget_objects_are_made_enforced_and_removed_through_the_admin_api() {
    let h = Harness::start().await;
    // A Budget of a nano-dollar for tenant team (base.yaml's): its next request is refused.
    let tiny = json!({"scope": {"kind": "Tenant", "tenant": "team"}, "limitUsd": "0.000000001", "period": "Monthly"});
    let (status, answer) = put(&h, "/admin/v1/budgets/team-cap", &tiny).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["spec"]["scope"], json!({"kind": "Tenant", "tenant": "team"}));
    assert_eq!(chat_status(&h, TEAM_KEY).await, 429, "enforced when answered");
    let written = std::fs::read_to_string(h.config_dir().join("console-budget-team-cap.yaml")).unwrap();
    assert!(written.contains("kind: Budget") && written.contains("0.000000001"), "{written}");
    let (_, listed) = h.get_text("/admin/v1/budgets?tenant=team", ADMIN_TOKEN).await;
    assert!(listed.contains("\"team-cap\""), "{listed}");

    // A new spec for it: a hundred dollars, and the tenant is served again.
    let roomy = json!({"scope": {"kind": "Tenant", "tenant": "team"}, "limitUsd": "100", "period": "Daily", "enforcement": "Soft"});
    assert_eq!(put(&h, "/admin/v1/budgets/team-cap", &roomy).await.0, 200);
    assert_eq!(chat_status(&h, TEAM_KEY).await, 200);
    let removed =
        h.client.delete(h.url("/admin/v1/budgets/team-cap")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(removed.status(), 204);
    assert!(!h.config_dir().join("console-budget-team-cap.yaml").exists());
    let again =
        h.client.delete(h.url("/admin/v1/budgets/team-cap")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(again.status(), 404);

    // What the schema or the served config would refuse is refused before anything is written.
    for (body, expected) in [
        (json!({"scope": {"kind": "Persona", "tenant": "team"}, "limitUsd": "5", "period": "Monthly"}), 400),
        (
            json!({"scope": {"kind": "Persona", "tenant": "team", "persona": "nobody"}, "limitUsd": "5", "period": "Monthly"}),
            400,
        ),
        (
            json!({"scope": {"kind": "ApiKey", "tenant": "team", "apiKey": "no-such-key"}, "limitUsd": "5", "period": "Monthly"}),
            400,
        ),
        (json!({"scope": {"kind": "Tenant", "tenant": "team"}, "limitUsd": "0", "period": "Monthly"}), 400),
        (
            json!({"scope": {"kind": "Tenant", "tenant": "team"}, "limitUsd": "5", "period": "Monthly", "warnAtPercent": 0}),
            400,
        ),
        (json!({"scope": {"kind": "Tenant", "tenant": "nobody"}, "limitUsd": "5", "period": "Monthly"}), 404),
        (
            json!({"scope": {"kind": "Tenant", "tenant": "team"}, "limitUsd": "5", "period": "Monthly", "extra": 1}),
            400,
        ),
    ] {
        let (status, answer) = put(&h, "/admin/v1/budgets/refused", &body).await;
        assert_eq!(status, expected, "{body}: {answer}");
    }
    assert!(!h.config_dir().join("console-budget-refused.yaml").exists());
    assert_eq!(put(&h, "/admin/v1/budgets/Bad_Name", &roomy).await.0, 400);
}

//! The tenants and routes views on SQLite and PostgreSQL: pages and prefixes of tenants with key
//! names (never hashes), limits and usage this month; a tenant's budgets with spend, remaining,
//! burn rate and forecast; routes with backends, breaker state and their last minutes; a tenant
//! key reads its own tenant only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_TOKEN, Harness, OTHER_KEY, OTHER_TENANT, TEAM_KEY, UPSTREAM_KEY, eventually};
use serde_json::{Value, json};

const BUDGET: &str = r#"
apiVersion: switchboard.dev/v1alpha1
kind: Budget
metadata: {name: team-monthly}
spec:
  scope: {kind: Tenant, tenant: team}
  limitUsd: "10"
  period: Monthly
  enforcement: Hard
"#;

const PERSONA: &str = r#"
apiVersion: switchboard.dev/v1alpha1
kind: Persona
metadata: {name: sage}
spec:
  tenant: team
  systemPrompt: You are Sage.
  model: fake-model
"#;

async fn get(h: &Harness, path: &str, key: &str) -> (u16, Value) {
    let (status, text) = h.get_text(path, key).await;
    assert!(!text.contains(UPSTREAM_KEY) && !text.contains(TEAM_KEY) && !text.contains("sha256"), "{text}");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn views(mut h: Harness) {
    h.restart_with("extra.yaml", &format!("{OTHER_TENANT}---\n{BUDGET}---\n{PERSONA}")).await;
    let ask = json!({"model": "fake-model", "messages": [{"role": "user", "content": "hello there"}]});
    for key in [TEAM_KEY, TEAM_KEY, OTHER_KEY] {
        assert_eq!(h.post("/v1/chat/completions", key, &ask).await.status(), 200);
    }
    // Both tenants' requests: the last one (the other tenant's) may be rolled up a moment later.
    eventually("usage this month is counted", || async {
        let (_, page) = get(&h, "/admin/v1/tenants", ADMIN_TOKEN).await;
        let requests = |name: &str| {
            let tenants = page["data"].as_array().cloned().unwrap_or_default();
            tenants.iter().find(|t| t["name"] == name).map(|t| t["usage_this_month"]["requests"].clone())
        };
        requests("team") == Some(json!(2)) && requests("other") == Some(json!(1))
    })
    .await;

    // Pages by name, a cursor to the next; key names only.
    let (status, first) = get(&h, "/admin/v1/tenants?limit=1", ADMIN_TOKEN).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["data"][0]["name"], "other");
    assert_eq!(first["data"][0]["display_name"], "The other team");
    assert_eq!(first["data"][0]["api_keys"], json!([{"name": "app", "rate_limits": {}}]));
    assert_eq!(first["data"][0]["rate_limits"]["requestsPerMinute"], 100);
    assert_eq!(first["data"][0]["usage_this_month"]["requests"], 1);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = get(&h, &format!("/admin/v1/tenants?limit=1&cursor={cursor}"), ADMIN_TOKEN).await;
    assert_eq!(second["data"][0]["name"], "team");
    assert_eq!(second["data"][0]["budgets_count"], 1);
    let (_, none) = get(&h, "/admin/v1/tenants?prefix=zzz", ADMIN_TOKEN).await;
    assert_eq!(none, json!({"data": [], "next_cursor": null}));

    // One tenant: budgets with spend and forecast, usage by model.
    let (status, team) = get(&h, "/admin/v1/tenants/team", ADMIN_TOKEN).await;
    assert_eq!(status, 200, "{team}");
    let budget = &team["budgets"][0];
    assert_eq!((budget["name"].as_str(), budget["limit_usd"].as_str()), (Some("team-monthly"), Some("10")));
    let spent: f64 = budget["spent_usd"].as_str().unwrap().parse().unwrap();
    let remaining: f64 = budget["remaining_usd"].as_str().unwrap().parse().unwrap();
    assert!(spent > 0.0 && (spent + remaining - 10.0).abs() < 1e-9, "{budget}");
    let forecast: f64 = budget["forecast_usd"].as_str().unwrap().parse().unwrap();
    assert!(forecast >= spent, "{budget}");
    assert_eq!(budget["exhausted"], false);
    assert_eq!(team["usage_this_month_by_model"][0]["model"], "fake-model");
    assert_eq!(team["usage_this_month_by_model"][0]["requests"], 2);
    assert!(team["models"].as_array().unwrap().contains(&json!("fake-model")));
    assert_eq!(get(&h, "/admin/v1/tenants/nope", ADMIN_TOKEN).await.0, 404);
    // Every budget the same way, by name; one tenant's.
    let (status, budgets) = get(&h, "/admin/v1/budgets", ADMIN_TOKEN).await;
    assert_eq!(status, 200, "{budgets}");
    assert_eq!(budgets["data"][0]["name"], "team-monthly");
    assert_eq!(budgets["data"][0]["spent_usd"], budget["spent_usd"]);
    assert_eq!(budgets["data"][0]["tenant"], "team");
    assert!(budgets["data"][0]["period_end_ms"].as_i64() > budgets["data"][0]["period_start_ms"].as_i64());
    let (_, other) = get(&h, "/admin/v1/budgets?tenant=other", ADMIN_TOKEN).await;
    assert_eq!(other, json!({"data": [], "next_cursor": null}));
    assert_eq!(get(&h, "/admin/v1/budgets?limit=501", ADMIN_TOKEN).await.0, 400);

    // A tenant key: its own tenant, and no admin view.
    let (status, own) = get(&h, "/v1/usage/tenant", OTHER_KEY).await;
    assert_eq!((status, own["name"].as_str()), (200, Some("other")));
    assert_eq!(get(&h, "/admin/v1/tenants", TEAM_KEY).await.0, 401);
    assert_eq!(get(&h, "/admin/v1/routes", TEAM_KEY).await.0, 401);

    // Routes: backends with their breakers, the last minutes.
    let (status, routes) = get(&h, "/admin/v1/routes", ADMIN_TOKEN).await;
    assert_eq!(status, 200, "{routes}");
    let route =
        routes["data"].as_array().unwrap().iter().find(|r| r["name"] == "openai-route").unwrap().clone();
    assert_eq!(route["backends"][0]["name"], "primary");
    assert_eq!(route["backends"][0]["breaker"], "closed");
    assert_eq!(route["healthy_backends"], 1);
    assert_eq!(route["models"][0]["usd_per_million"]["input"], "1");
    assert_eq!(route["last_15_minutes"]["requests"], 3);
    assert_eq!(route["last_15_minutes"]["error_rate"], 0.0);
    let recent = &route["backends"][0]["last_5_minutes"];
    assert_eq!((recent["attempts"].as_u64(), recent["failures"].as_u64()), (Some(3), Some(0)), "{recent}");
    assert!(recent["mean_latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{recent}");
    let idle =
        routes["data"].as_array().unwrap().iter().find(|r| r["name"] == "hanging-route").unwrap().clone();
    assert_eq!(idle["last_15_minutes"], Value::Null);
    // Standalone there is no operator: no conditions, and no error reading them.
    assert_eq!((&route["conditions"], &routes["conditions_error"]), (&Value::Null, &Value::Null));
    assert_eq!((&team["conditions"], &team["conditions_error"]), (&Value::Null, &Value::Null));

    // Personas: settings, what they remember, their mood after a conversation.
    let (_, before) = get(&h, "/admin/v1/personas", ADMIN_TOKEN).await;
    assert_eq!((&before["data"][0]["interactions"], &before["data"][0]["mood"]), (&json!(0), &Value::Null));
    let turn = json!({"model": "persona/sage", "user": "ada", "messages": [{"role": "user", "content": "I love hiking in the Alps, thank you so much!"}]});
    assert_eq!(h.post("/v1/chat/completions", TEAM_KEY, &turn).await.status(), 200);
    // The memory is written after the reply, off the request's path.
    eventually("sage remembers", || async {
        get(&h, "/admin/v1/personas", ADMIN_TOKEN).await.1["data"][0]["memory_count"].as_i64() >= Some(1)
    })
    .await;
    let (status, personas) = get(&h, "/admin/v1/personas", ADMIN_TOKEN).await;
    assert_eq!(status, 200, "{personas}");
    let sage = &personas["data"][0];
    assert_eq!(
        (&sage["name"], &sage["tenant"], &sage["model"]),
        (&json!("sage"), &json!("team"), &json!("fake-model"))
    );
    assert_eq!((&sage["memory"]["enabled"], &sage["memory"]["extraction"]), (&json!(true), &json!("Rules")));
    assert_eq!(sage["interactions"], 1, "{sage}");
    assert!(sage["mood"]["description"].is_string(), "{sage}");
    assert_eq!(get(&h, "/admin/v1/personas", TEAM_KEY).await.0, 401);
    // The admin API lives on its own listener only; tenant APIs are not there.
    let on_tenant_port =
        h.client.get(h.tenant_url("/admin/v1/tenants")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(on_tenant_port.status(), 404);
    let admin_port = h.url("/admin/v1/x").replace("/admin/v1/x", "");
    let models = h.client.get(format!("{admin_port}/v1/models")).bearer_auth(TEAM_KEY).send().await.unwrap();
    assert_eq!(models.status(), 404);
    for probe in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            h.client.get(format!("{admin_port}{probe}")).send().await.unwrap().status(),
            200,
            "{probe}"
        );
    }
    for bad in ["limit=0", "limit=1001", "x=1"] {
        assert_eq!(get(&h, &format!("/admin/v1/tenants?{bad}"), ADMIN_TOKEN).await.0, 400, "{bad}");
    }
    h.stop_gateway().await;
}

#[tokio::test]
async fn admin_views_on_sqlite() {
    views(Harness::start().await).await;
}

#[tokio::test]
async fn admin_views_on_postgres() {
    let url = common::fresh_postgres().await;
    views(Harness::start_with_ledger(tempfile::tempdir().unwrap(), url).await).await;
}

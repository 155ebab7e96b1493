//! Persona turns through the gateway: memory extraction by the persona's own model (with the
//! rules as fallback), and persona budgets and rate limits on the request path.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use common::*;
use serde_json::{Value, json};

/// An OpenAI-compatible upstream that answers memory-extraction requests (those with a
/// `response_format`) with `extraction`, summary requests with [`SUMMARY`], and chats with a
/// short reply; it keeps every body.
struct Extractor {
    base_url: String,
    requests: Arc<Mutex<Vec<Value>>>,
}

const SUMMARY: &str =
    r#"{"summary": "Kim paddles a kayak at dawn and is planning a trip to Norway.", "importance": 7}"#;

async fn extractor(extraction: &'static str) -> Extractor {
    extractor_summarising(extraction, SUMMARY).await
}

async fn extractor_summarising(extraction: &'static str, summary: &'static str) -> Extractor {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let app = axum::Router::new()
        .route(
            "/v1/chat/completions",
            post(move |State(seen): State<Arc<Mutex<Vec<Value>>>>, Json(body): Json<Value>| async move {
                let content = match body.pointer("/response_format/json_schema/name").and_then(Value::as_str) {
                    Some("summary") => summary,
                    Some(_) => extraction,
                    None => "Noted.",
                };
                seen.lock().unwrap().push(body);
                Json(json!({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "extractor",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60},
                }))
            }),
        )
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Extractor { base_url, requests }
}

fn persona_config(base_url: &str, extraction: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {{name: extractor-route}}
spec:
  models: [{{name: extractor, pricing: {{inputPerMillion: "1", outputPerMillion: "2"}}}}]
  backends: [{{name: extractor, provider: openai, baseUrl: "{base_url}"}}]
  retries: {{attempts: 0}}
---
apiVersion: switchboard.dev/v1alpha1
kind: Persona
metadata: {{name: sage}}
spec:
  tenant: team
  systemPrompt: You are Sage.
  model: extractor
  memory: {{extraction: {extraction}}}
{extra}
"#
    )
}

async fn memories(h: &Harness, subject: &str) -> Vec<Value> {
    let url = h.url(&format!("/v1/subjects/{subject}/memories"));
    let body: Value = h.client.get(url).bearer_auth(TEAM_KEY).send().await.unwrap().json().await.unwrap();
    body["memories"].as_array().unwrap().clone()
}

async fn say(h: &Harness, subject: &str, text: &str) -> reqwest::Response {
    let request = json!({"model": "persona/sage", "user": subject, "max_tokens": 10, "messages": [{"role": "user", "content": text}]});
    h.post("/v1/chat/completions", TEAM_KEY, &request).await
}

#[tokio::test]
async fn the_persona_model_extracts_memories_and_its_cost_is_in_the_ledger() {
    let answer = r#"{"memories": [{"content": "Shellfish makes them ill", "kind": "fact", "importance": 10, "slot": null}]}"#;
    let upstream = extractor(answer).await;
    let mut h = Harness::start().await;
    h.restart_with("sage.yaml", &persona_config(&upstream.base_url, "Model", "")).await;

    // Nothing here matches the extraction rules: only the model can find the memory.
    assert_eq!(say(&h, "sam", "By the way, shellfish makes me ill.").await.status(), 200);
    eventually("the model's memory to be stored", || {
        let h = &h;
        async move { !memories(h, "sam").await.is_empty() }
    })
    .await;
    let found = memories(&h, "sam").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0]["content"].as_str(), found[0]["importance"].as_u64()),
        (Some("Shellfish makes them ill"), Some(10))
    );

    let bodies = upstream.requests.lock().unwrap().clone();
    let extraction =
        bodies.iter().find(|b| b.get("response_format").is_some()).expect("an extraction request");
    assert_eq!(extraction["messages"][1]["content"], "By the way, shellfish makes me ill.");
    assert_eq!(extraction["model"], "extractor");

    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    let endpoints: Vec<&str> = rows.iter().filter_map(|r| r["endpoint"].as_str()).collect();
    assert_eq!(endpoints, ["chat_completions", "memory_extraction"], "{rows:?}");
    // 40 prompt tokens at 1 USD/M and 20 completion tokens at 2 USD/M, each.
    assert!(rows.iter().all(|r| r["cost_nanos"] == 80_000 && r["model"] == "persona/sage"), "{rows:?}");
}

#[tokio::test]
async fn an_unusable_model_answer_falls_back_to_the_rules() {
    let upstream = extractor("Sure! They like kayaking.").await;
    let mut h = Harness::start().await;
    h.restart_with("sage.yaml", &persona_config(&upstream.base_url, "Model", "")).await;
    assert_eq!(say(&h, "kim", "I love kayaking at dawn.").await.status(), 200);
    eventually("the rules' memory to be stored", || {
        let h = &h;
        async move { !memories(h, "kim").await.is_empty() }
    })
    .await;
    let found = memories(&h, "kim").await;
    assert_eq!(found[0]["content"], "I love kayaking at dawn.", "{found:?}");
    assert_eq!(found[0]["kind"], "preference");
}

#[tokio::test]
async fn a_refused_turn_reads_and_marks_no_memory() {
    let upstream = extractor("{}").await;
    let mut h = Harness::start().await;
    let config = persona_config(&upstream.base_url, "Rules", "  rateLimits: {requestsPerMinute: 2}\n");
    h.restart_with("sage.yaml", &config).await;
    assert_eq!(say(&h, "lee", "I love kayaking at dawn.").await.status(), 200);
    eventually("the memory to be stored", || {
        let h = &h;
        async move { !memories(h, "lee").await.is_empty() }
    })
    .await;
    // The second turn recalls the memory (it counts as used); the third is over the limit.
    assert_eq!(say(&h, "lee", "Kayaking tips?").await.status(), 200);
    let used = memories(&h, "lee").await[0]["useCount"].as_i64().unwrap();
    assert_eq!(used, 1, "the admitted turn used the memory");
    assert_eq!(say(&h, "lee", "And kayaking again?").await.status(), 429);
    assert_eq!(memories(&h, "lee").await[0]["useCount"].as_i64(), Some(1), "a refused turn uses no memory");
    let prompts = upstream.requests.lock().unwrap().clone();
    assert_eq!(prompts.len(), 2, "the refused turn reached no upstream: {prompts:?}");
    let system = prompts[1]["messages"][0]["content"].as_str().unwrap();
    assert!(system.starts_with("You are Sage.") && system.contains("I love kayaking at dawn."), "{system}");
}

#[tokio::test]
async fn persona_budgets_and_rate_limits_apply_to_its_conversations() {
    let upstream = extractor("{}").await;
    let mut h = Harness::start().await;
    let budget = r#"---
apiVersion: switchboard.dev/v1alpha1
kind: Budget
metadata: {name: sage-cap}
spec:
  scope: {kind: Persona, tenant: team, persona: sage}
  limitUsd: "0.0003"
  period: Monthly
  enforcement: Hard
"#;
    let config = persona_config(&upstream.base_url, "Off", budget)
        .replace("  memory: {extraction: Off}\n", "  memory: {extraction: Off, maxInjectedTokens: 8}\n");
    h.restart_with("sage.yaml", &config).await;
    // Each turn costs 80,000 nano-dollars. It reserves about 230,000 first: the prompt at its most,
    // with room for the persona's system message at its longest (its mood and 8 tokens of
    // memories), and 10 output tokens. The cap is 300,000: the first turn fits, the second not.
    let mut statuses = Vec::new();
    for i in 0..4 {
        let response = say(&h, "pat", &format!("hello {i}")).await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
        }
    }
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(statuses.contains(&429), "the persona's budget must refuse eventually: {statuses:?}");
    // Other models of the tenant are not capped by the persona's budget.
    let other = json!({"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(h.post("/v1/chat/completions", TEAM_KEY, &other).await.status(), 200);

    let limits = "  rateLimits: {requestsPerMinute: 2}\n";
    let config = persona_config(&upstream.base_url, "Off", "")
        .replace("  memory: {extraction: Off}\n", &format!("  memory: {{extraction: Off}}\n{limits}"));
    h.restart_with("sage.yaml", &config).await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        statuses.push(say(&h, "pat", &format!("again {i}")).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
}

#[tokio::test]
async fn the_persona_model_summarises_a_conversation_every_few_turns_and_when_it_goes_idle() {
    let upstream = extractor("{}").await;
    let mut h = Harness::start().await;
    let config = persona_config(&upstream.base_url, "Off", "").replace(
        "  memory: {extraction: Off}\n",
        "  memory: {extraction: Off, summaries: {everyTurns: 3, idleMinutes: 1}}\n",
    );
    h.restart_with("sage.yaml", &config).await;
    let mut history = Vec::new();
    for said in ["I kayak at dawn.", "Norway next summer, I think.", "Fjords, mostly."] {
        history.push(json!({"role": "user", "content": said}));
        let request = json!({"model": "persona/sage", "user": "kim", "max_tokens": 10, "messages": history});
        assert_eq!(h.post("/v1/chat/completions", TEAM_KEY, &request).await.status(), 200);
        history.push(json!({"role": "assistant", "content": "Noted."}));
    }
    // The third turn brings the summary, written by the persona's model from the conversation.
    eventually("the summary", || {
        let h = &h;
        async move { memories(h, "kim").await.iter().any(|m| m["kind"] == "summary") }
    })
    .await;
    let found = memories(&h, "kim").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0]["content"].as_str(), found[0]["importance"].as_u64()),
        (Some("Kim paddles a kayak at dawn and is planning a trip to Norway."), Some(7))
    );
    let bodies = upstream.requests.lock().unwrap().clone();
    let asked = bodies
        .iter()
        .find(|b| b.pointer("/response_format/json_schema/name") == Some(&json!("summary")))
        .unwrap();
    let transcript = asked["messages"][1]["content"].as_str().unwrap();
    assert!(
        transcript.starts_with("user: I kayak at dawn.\nassistant: Noted.\nuser: Norway next summer"),
        "{transcript}"
    );
    assert!(transcript.ends_with("user: Fjords, mostly.\n"), "{transcript}");
    // The transcript is kept only until its summary.
    let pool = sqlx::AnyPool::connect(&h.database_url).await.unwrap();
    eventually("the transcript to be dropped", || {
        let pool = pool.clone();
        async move {
            let kept: String =
                sqlx::query_scalar("SELECT transcript FROM persona_conversations WHERE subject = 'kim'")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            kept.is_empty()
        }
    })
    .await;

    // One more turn, then silence: once it is a minute old the upkeep summarises it, billed to
    // the tenant under its own key name. (The turn's time is moved back rather than waited for.)
    history.push(json!({"role": "user", "content": "Bergen first."}));
    let request = json!({"model": "persona/sage", "user": "kim", "max_tokens": 10, "messages": history});
    assert_eq!(h.post("/v1/chat/completions", TEAM_KEY, &request).await.status(), 200);
    eventually("the turn to be counted", || {
        let pool = pool.clone();
        async move {
            let moved = sqlx::query("UPDATE persona_conversations SET last_turn_at_ms = last_turn_at_ms - 120000 WHERE subject = 'kim' AND turns = 1")
                .execute(&pool).await.unwrap();
            moved.rows_affected() == 1
        }
    })
    .await;
    eventually("the idle summary", || {
        let h = &h;
        async move {
            memories(h, "kim").await.len() == 1
                && h.ledger_rows().await.iter().filter(|r| r["endpoint"] == "memory_summary").count() == 2
        }
    })
    .await;
    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    let summaries: Vec<&Value> = rows.iter().filter(|r| r["endpoint"] == "memory_summary").collect();
    assert_eq!(summaries.len(), 2, "{rows:?}");
    assert_eq!(summaries[0]["api_key"], "ci", "the turn's own caller: {rows:?}");
    assert_eq!(summaries[1]["api_key"], "switchboard:persona-memory", "{rows:?}");
    assert!(summaries.iter().all(|r| r["tenant"] == "team" && r["cost_nanos"] == 80_000), "{rows:?}");
}

#[tokio::test]
async fn a_summary_the_model_cannot_write_is_skipped_not_retried_on_every_sweep() {
    let upstream = extractor_summarising("{}", "Sorry, I cannot summarise that.").await;
    let mut h = Harness::start().await;
    let config = persona_config(&upstream.base_url, "Off", "").replace(
        "  memory: {extraction: Off}\n",
        "  memory: {extraction: Off, summaries: {idleMinutes: 1}}\n",
    );
    h.restart_with("sage.yaml", &config).await;
    assert_eq!(say(&h, "ash", "I kayak at dawn.").await.status(), 200);
    let pool = sqlx::AnyPool::connect(&h.database_url).await.unwrap();
    eventually("the turn to be counted and made idle", || {
        let pool = pool.clone();
        async move {
            sqlx::query("UPDATE persona_conversations SET last_turn_at_ms = last_turn_at_ms - 120000 WHERE subject = 'ash'")
                .execute(&pool)
                .await
                .unwrap()
                .rows_affected()
                == 1
        }
    })
    .await;
    let asked =
        || upstream.requests.lock().unwrap().iter().filter(|b| b.get("response_format").is_some()).count();
    eventually("the summary to be asked for", || async { asked() > 0 }).await;
    // The failed summary counts the turns as summarised, so no sweep selects the conversation
    // again (it reads only conversations with turns): two requests in all, the summary and the
    // exchange's one retry of a reply that fails its schema; nothing stored.
    eventually("the turns to be counted as summarised", || {
        let pool = pool.clone();
        async move {
            let turns: i64 =
                sqlx::query_scalar("SELECT turns FROM persona_conversations WHERE subject = 'ash'")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            turns == 0
        }
    })
    .await;
    assert_eq!(asked(), 2);
    assert!(memories(&h, "ash").await.is_empty());
}

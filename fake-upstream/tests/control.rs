//! Recording, the control routes, options and shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{spawn, spawn_with};
use serde_json::{Value, json};
use switchboard_fake_upstream::{Options, RecordedRequest};

#[tokio::test]
async fn records_requests_in_arrival_order() {
    let fake = spawn().await;
    let client = reqwest::Client::new();
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    client
        .post(format!("{}/chat/completions", fake.base_url()))
        .header("X-Custom-Header", "Value")
        .json(&chat)
        .send()
        .await
        .unwrap();
    client.post(format!("{}/messages", fake.base_url())).body("not json").send().await.unwrap();
    client.get(format!("{}/models", fake.base_url())).send().await.unwrap();
    client.get(format!("http://{}/healthz", fake.addr())).send().await.unwrap();

    let requests = fake.requests();
    assert_eq!(fake.request_count(), 3, "control routes are not counted");
    let summary: Vec<(&str, &str)> = requests.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(summary, [("POST", "/v1/chat/completions"), ("POST", "/v1/messages"), ("GET", "/v1/models")]);
    assert_eq!(requests[0].body, chat);
    assert_eq!(requests[0].header("x-custom-header"), Some("Value"));
    assert!(requests[0].headers.iter().all(|(name, _)| *name == name.to_lowercase()));
    assert_eq!(requests[1].body, Value::Null);
}

#[tokio::test]
async fn control_routes_list_and_clear_records() {
    let fake = spawn().await;
    let client = reqwest::Client::new();
    let root = format!("http://{}", fake.addr());
    assert_eq!(client.get(format!("{root}/healthz")).send().await.unwrap().status(), 200);
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    client.post(format!("{root}/v1/chat/completions")).json(&chat).send().await.unwrap();

    let listed: Vec<RecordedRequest> =
        client.get(format!("{root}/_fake/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, fake.requests());
    assert_eq!(listed.len(), 1);
    let raw: Value = client.get(format!("{root}/_fake/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(raw[0]["path"], "/v1/chat/completions");
    assert_eq!(raw[0]["body"], chat);

    let cleared = client.delete(format!("{root}/_fake/requests")).send().await.unwrap();
    assert!(cleared.status().is_success());
    assert!(fake.requests().is_empty());
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn without_recording_only_counts() {
    let fake = spawn_with(Options::without_recording()).await;
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.base_url()))
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(fake.requests().is_empty());
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn unknown_paths_are_404_in_api_shape() {
    let fake = spawn().await;
    let response = reqwest::get(format!("{}/audio/speech", fake.base_url())).await.unwrap();
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(fake.requests()[0].path, "/v1/audio/speech");
}

#[tokio::test]
async fn shutdown_ends_hanging_requests_and_frees_the_port() {
    let fake = spawn().await;
    let url = format!("{}/chat/completions", fake.base_url());
    let hanging = tokio::spawn(async move {
        let chat = json!({"model": "hang", "messages": []});
        reqwest::Client::new().post(url).json(&chat).send().await.map(|r| r.status())
    });
    // Wait until the hanging request has arrived.
    while fake.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let addr = fake.addr();
    tokio::time::timeout(Duration::from_secs(5), fake.shutdown()).await.unwrap().unwrap();
    let status = hanging.await.unwrap().unwrap();
    assert_eq!(status, 503);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

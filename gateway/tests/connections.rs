//! Clients that are slow or many on purpose: half-sent headers, dripping bodies and idle
//! connections are cut off at their deadlines, and normal requests are served meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn harness() -> Harness {
    let mut h = Harness::start().await;
    h.gateway_args = vec![
        "--header-timeout-seconds=1".into(),
        "--body-timeout-seconds=1".into(),
        "--max-connections=8".into(),
    ];
    h.stop_gateway().await;
    h.start_gateway().await;
    h
}

fn address(h: &Harness) -> String {
    h.url("").trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; what it sent.
async fn until_closed(what: &str, mut socket: TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut received)).await;
    assert!(
        read.is_ok(),
        "the server kept the {what} connection open: {}",
        String::from_utf8_lossy(&received)
    );
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn a_slowloris_is_cut_off_and_normal_requests_are_served_meanwhile() {
    let h = harness().await;
    // Three times the connection cap, each with half a request header.
    let mut slow = Vec::new();
    for _ in 0..24 {
        let mut socket = TcpStream::connect(address(&h)).await.unwrap();
        socket.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        slow.push(socket);
    }
    let body = json!({"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]});
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let response =
        client.post(h.url("/v1/chat/completions")).bearer_auth(TEAM_KEY).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    for socket in slow {
        until_closed("slow", socket).await;
    }
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_a_dripping_body_gets_408() {
    let h = harness().await;
    let idle = TcpStream::connect(address(&h)).await.unwrap();
    assert_eq!(until_closed("idle", idle).await, "", "closed without a word");

    let mut drip = TcpStream::connect(address(&h)).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TEAM_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"model\""
    );
    drip.write_all(head.as_bytes()).await.unwrap();
    let answer = until_closed("dripping", drip).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

//! Parts failing under load: PostgreSQL restarted (what fails closed, what fails open, no ledger
//! row lost; a ledger that cannot write refuses new requests at its backlog limit), Redis stopped
//! (rate limits counted per replica meanwhile), an upstream flapping.
//! Each test runs its own PostgreSQL or Redis (scripts/postgres.sh, scripts/redis.sh in a
//! temporary directory), so that stopping it disturbs no other test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use futures::future::join_all;
use serde_json::{Value, json};

/// A server started by one of the project's scripts in its own directory; stopped when dropped.
struct Server {
    script: PathBuf,
    dir: tempfile::TempDir,
    url: String,
}

impl Server {
    fn start(script: &str, variable: &str) -> Server {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(script);
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server { script, dir, url: String::new() };
        let output = server.run("start");
        server.url = output
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{variable}=")))
            .unwrap_or_else(|| panic!("no {variable} in {output}"))
            .to_owned();
        server
    }

    fn run(&self, command: &str) -> String {
        let output = Command::new(&self.script).arg(command).arg(self.dir.path()).output().unwrap();
        assert!(output.status.success(), "{command}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Starts it again; the URL stays the same.
    fn restart(&self) {
        let output = self.run("start");
        assert!(output.contains(&self.url), "restarted elsewhere: {output} (was {})", self.url);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(&self.script).arg("stop").arg(self.dir.path()).output();
    }
}

/// Tenants with a hard budget failing closed (the default), one failing open, and `team` (the
/// harness's) without a budget; each budget far from its limit.
const BUDGETS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: budgeted-keys}
stringData: {closed: sk-closed, open: sk-open}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: closed}
spec:
  apiKeys: [{name: app, secretRef: {name: budgeted-keys, key: closed}}]
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: open}
spec:
  apiKeys: [{name: app, secretRef: {name: budgeted-keys, key: open}}]
---
apiVersion: switchboard.dev/v1alpha1
kind: Budget
metadata: {name: closed-cap}
spec: {scope: {kind: Tenant, tenant: closed}, limitUsd: "100", period: Monthly, enforcement: Hard}
---
apiVersion: switchboard.dev/v1alpha1
kind: Budget
metadata: {name: open-cap}
spec: {scope: {kind: Tenant, tenant: open}, limitUsd: "100", period: Monthly, enforcement: Hard, failureMode: Open}
"#;

fn ask() -> Value {
    json!({"model": "fake-model", "max_tokens": 10, "messages": [{"role": "user", "content": "hello there"}]})
}

/// Status and error code of one request with `key`.
async fn status_of(h: &Harness, key: &str) -> (u16, Option<String>) {
    let response =
        h.client.post(h.url("/v1/chat/completions")).bearer_auth(key).json(&ask()).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    (status, body["error"]["code"].as_str().map(str::to_owned))
}

/// Eight requests for each key at once; the statuses per key.
async fn round(h: &Harness, keys: &[&str]) -> Vec<Vec<(u16, Option<String>)>> {
    let mut out = Vec::new();
    for key in keys {
        out.push(join_all((0..8).map(|_| status_of(h, key))).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_under_load_fails_closed_budgets_closed_and_loses_no_row() {
    let postgres = Server::start("postgres.sh", "DATABASE_URL");
    let mut h = Harness::start_with_ledger(tempfile::tempdir().unwrap(), postgres.url.clone()).await;
    h.restart_with("budgets.yaml", BUDGETS).await;
    let keys = ["sk-closed", "sk-open", TEAM_KEY];
    let mut served = 0;
    for statuses in round(&h, &keys).await {
        assert!(statuses.iter().all(|(status, _)| *status == 200), "{statuses:?}");
        served += statuses.len();
    }

    postgres.run("stop");
    let [closed, open, team] = <[_; 3]>::try_from(round(&h, &keys).await).unwrap();
    assert!(
        closed.iter().all(|(status, code)| *status == 503 && code.as_deref() == Some("budget_unavailable")),
        "a hard budget that cannot be read refuses: {closed:?}"
    );
    assert!(open.iter().all(|(status, _)| *status == 200), "failureMode: Open admits: {open:?}");
    assert!(team.iter().all(|(status, _)| *status == 200), "no budget, no database needed: {team:?}");
    served += open.len() + team.len();

    postgres.restart();
    eventually("the closed budget serves again", || async { status_of(&h, "sk-closed").await.0 == 200 })
        .await;
    served += 1;
    h.stop_gateway().await;
    // Every answered request has its row: those answered while the database was down waited in
    // the ledger writer's queue.
    let rows = h.ledger_rows().await;
    assert_eq!(rows.iter().filter(|r| r["status"] == 200).count(), served, "{} rows", rows.len());
}

/// Ledger rows not yet written, from the gateway's metrics.
async fn backlog(h: &Harness) -> usize {
    let metrics = h.metrics().await;
    let line = metrics.lines().find(|l| l.starts_with("switchboard_ledger_backlog_rows ")).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ledger_that_cannot_write_refuses_new_requests_at_its_backlog_limit_and_loses_no_row() {
    const LIMIT: usize = 5;
    let postgres = Server::start("postgres.sh", "DATABASE_URL");
    let mut h = Harness::start_with_ledger(tempfile::tempdir().unwrap(), postgres.url.clone()).await;
    h.gateway_args.push(format!("--ledger-max-backlog={LIMIT}"));
    h.stop_gateway().await;
    h.start_gateway().await;
    assert_eq!(status_of(&h, TEAM_KEY).await.0, 200);
    eventually("the first row is written", || async { backlog(&h).await == 0 }).await;

    postgres.run("stop");
    // The team has no budget: served while the rows fit the backlog, then refused before
    // anything is spent, and the readiness probe says why.
    let mut statuses = Vec::new();
    for _ in 0..LIMIT + 2 {
        statuses.push(status_of(&h, TEAM_KEY).await);
    }
    let served = statuses.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(served, LIMIT, "{statuses:?}");
    assert!(
        statuses[LIMIT..]
            .iter()
            .all(|(status, code)| *status == 503 && code.as_deref() == Some("ledger_behind")),
        "{statuses:?}"
    );
    assert_eq!(backlog(&h).await, LIMIT);
    let ready = h.client.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("rows behind"));

    postgres.restart();
    eventually("the backlog is written and requests are served again", || async {
        status_of(&h, TEAM_KEY).await.0 == 200
    })
    .await;
    assert_eq!(h.client.get(h.url("/readyz")).send().await.unwrap().status(), 200);
    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    assert_eq!(rows.iter().filter(|r| r["status"] == 200).count(), 1 + LIMIT + 1, "no row lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_stopped_under_load_rate_limits_fall_back_to_each_replica() {
    let redis = Server::start("redis.sh", "REDIS_URL");
    let mut h = Harness::start().await;
    h.gateway_args = vec![format!("--redis-url={}", redis.url)];
    h.stop_gateway().await;
    h.start_gateway().await;
    let limited = r#"
apiVersion: v1
kind: Secret
metadata: {name: paced-key}
stringData: {key: sk-paced}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: paced}
spec:
  apiKeys: [{name: app, secretRef: {name: paced-key, key: key}}]
  rateLimits: {requestsPerMinute: 20}
"#;
    h.restart_with("paced.yaml", limited).await;
    let served = |statuses: &[(u16, Option<String>)]| statuses.iter().filter(|(s, _)| *s == 200).count();
    let first = join_all((0..16).map(|_| status_of(&h, "sk-paced"))).await;
    assert_eq!(served(&first), 16);

    redis.run("stop");
    // Counted in process while Redis is away: still limited, never refused for Redis's sake.
    let during = join_all((0..32).map(|_| status_of(&h, "sk-paced"))).await;
    assert!(
        during.iter().all(|(s, code)| *s == 200 || code.as_deref() == Some("rate_limit_exceeded")),
        "{during:?}"
    );
    assert_eq!(served(&during), 20, "the replica's own count of the limit: {during:?}");

    redis.restart();
    // Shared again once Redis answers: the 16 counted there before keep counting.
    eventually("Redis counts again", || async { status_of(&h, "sk-paced").await.0 == 429 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flapping_upstream_gets_clean_errors_and_a_row_each() {
    let mut h = Harness::start().await;
    let flapping = {
        let client = h.client.clone();
        let base = h.upstream.base_url().trim_end_matches("/v1").to_owned();
        tokio::spawn(async move {
            for i in 0..60 {
                let url = format!("{base}/_fake/behavior");
                let request =
                    if i % 2 == 0 { client.put(&url).body("error-503") } else { client.delete(&url) };
                let _ = request.send().await;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    let mut answered = 0;
    while !flapping.is_finished() {
        for (status, code) in join_all((0..8).map(|_| status_of(&h, TEAM_KEY))).await {
            assert!(
                status == 200
                    || (status == 502 && code.as_deref() == Some("upstream_error"))
                    || (status == 503 && code.as_deref() == Some("no_healthy_backend")),
                "{status} {code:?}"
            );
            answered += 1;
        }
    }
    h.stop_gateway().await;
    assert_eq!(h.ledger_rows().await.len(), answered, "one row per request that reached the route");
}

//! Test harness: a fake upstream and the gateway, both in-process on loopback port 0, with a
//! config folder written for the test and a fresh SQLite (or PostgreSQL) ledger.

#![allow(dead_code)] // each test binary uses part of the harness

use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;
use sqlx::Row;
use switchboard_fake_upstream::{FakeUpstream, Options};
use switchboard_gateway::server::{self, RunningGateway};
use switchboard_gateway::settings::Settings;
use tempfile::TempDir;

pub const TEAM_KEY: &str = "sk-test-team";
pub const ADMIN_TOKEN: &str = "admin-test-token";
/// The provider key the gateway must send upstream, and never echo anywhere else.
pub const UPSTREAM_KEY: &str = "sk-upstream-secret-1234";

/// A second tenant, `other`, whose key is [`OTHER_KEY`]: for tests of what one tenant may see of
/// another's.
pub const OTHER_KEY: &str = "sk-test-other";
pub const OTHER_TENANT: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: other-key}
stringData: {key: sk-test-other}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: other}
spec:
  displayName: The other team
  apiKeys: [{name: app, secretRef: {name: other-key, key: key}}]
  rateLimits: {requestsPerMinute: 100}
"#;

/// Prices of `fake-model`: 1.00 USD per 1M input, 2.00 per 1M output.
pub const INPUT_NANOS_PER_TOKEN: i64 = 1_000;
pub const OUTPUT_NANOS_PER_TOKEN: i64 = 2_000;

pub struct Harness {
    pub upstream: FakeUpstream,
    pub gateway: Option<RunningGateway>,
    pub dir: TempDir,
    pub database_url: String,
    /// Extra gateway flags, applied at the next `start_gateway`.
    pub gateway_args: Vec<String>,
    pub client: reqwest::Client,
}

/// The manifests every test starts from. `{UPSTREAM}` is the fake's base URL.
const BASE_CONFIG: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: team-key}
stringData: {key: sk-test-team}
---
apiVersion: v1
kind: Secret
metadata: {name: upstream-key}
stringData: {key: sk-upstream-secret-1234}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: team}
spec:
  apiKeys: [{name: ci, secretRef: {name: team-key, key: key}}]
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: openai-route}
spec:
  models:
    - name: fake-model
      pricing: {inputPerMillion: "1.00", outputPerMillion: "2.00"}
    - {name: failing-model, upstreamModel: error-500}
    - {name: rejecting-model, upstreamModel: error-400}
    - {name: cut-model, upstreamModel: stream-cut}
  backends:
    - {name: primary, provider: openai, baseUrl: "{UPSTREAM}", apiKeySecretRef: {name: upstream-key, key: key}}
  retries: {attempts: 1, backoffMs: 1}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: hanging-route}
spec:
  models: [{name: hanging-model, upstreamModel: hang}]
  backends:
    - {name: slow, provider: openai, baseUrl: "{UPSTREAM}", requestTimeoutSeconds: 1}
  retries: {attempts: 0}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: fallback-route}
spec:
  models:
    - name: fallback-model
      upstreamModel: fake-model
      pricing: {inputPerMillion: "1.00", outputPerMillion: "2.00"}
  backends:
    - {name: dead, provider: openai, baseUrl: "http://127.0.0.1:9/v1", priority: 0, connectTimeoutSeconds: 1}
    - {name: alive, provider: openai, baseUrl: "{UPSTREAM}", priority: 1}
  retries: {attempts: 2, backoffMs: 1}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: anthropic-route}
spec:
  models:
    - name: claude-fake
      upstreamModel: claude-upstream
      pricing: {inputPerMillion: "3", outputPerMillion: "15", cachedInputPerMillion: "0.30", cacheWritePerMillion: "3.75"}
  backends:
    - {name: claude, provider: anthropic, baseUrl: "{UPSTREAM}", apiKeySecretRef: {name: upstream-key, key: key}}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: echo}
spec:
  models: [{name: demo-echo, pricing: {inputPerMillion: "0.15", outputPerMillion: "0.60"}}]
  backends: [{name: mock, provider: mock}]
"#;

impl Harness {
    /// Starts the fake and a gateway with a fresh SQLite ledger.
    pub async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("ledger.db").display());
        Harness::start_with_ledger(dir, url).await
    }

    /// Starts the fake and a gateway logging to `database_url`.
    pub async fn start_with_ledger(dir: TempDir, database_url: String) -> Harness {
        let upstream = FakeUpstream::spawn("127.0.0.1:0".parse().unwrap(), Options::new()).await.unwrap();
        let config = BASE_CONFIG.replace("{UPSTREAM}", &upstream.base_url());
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join("config/base.yaml"), config).unwrap();
        let mut harness = Harness {
            upstream,
            gateway: None,
            dir,
            database_url,
            gateway_args: Vec::new(),
            client: reqwest::Client::new(),
        };
        harness.start_gateway().await;
        harness
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    pub async fn start_gateway(&mut self) {
        let mut args = vec![
            "switchboard-gateway".to_owned(),
            format!("--config-dir={}", self.config_dir().display()),
            "--listen=127.0.0.1:0".into(),
            "--admin-listen=127.0.0.1:0".into(),
            format!("--database-url={}", self.database_url),
            format!("--admin-token={ADMIN_TOKEN}"),
            "--max-request-bytes=65536".into(),
            "--shutdown-grace-seconds=5".into(),
        ];
        args.extend(self.gateway_args.iter().cloned());
        let settings = Settings::try_parse_from(args).unwrap();
        self.gateway = Some(server::start(&settings).await.unwrap());
    }

    /// Adds a manifest file and restarts the gateway on the new config (deterministic, unlike
    /// waiting for the hot reload). `{UPSTREAM}` is replaced by the fake's base URL.
    pub async fn restart_with(&mut self, name: &str, yaml: &str) {
        write_config(&self.config_dir(), name, &yaml.replace("{UPSTREAM}", &self.upstream.base_url()));
        self.stop_gateway().await;
        self.start_gateway().await;
    }

    /// Graceful stop: in-flight requests finish and the ledger is flushed.
    pub async fn stop_gateway(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.stop().await;
        }
    }

    /// The URL of `path`: on the admin listener for `/admin/...`, else on the tenant-facing one.
    pub fn url(&self, path: &str) -> String {
        let gateway = self.gateway.as_ref().unwrap();
        let addr = if path.starts_with("/admin/") { gateway.admin_addr() } else { gateway.addr() };
        format!("http://{addr}{path}")
    }

    /// A GET of `path` (on its listener) with `key` as bearer token: the status and the body.
    pub async fn get_text(&self, path: &str, key: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).bearer_auth(key).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// `path` on the tenant-facing listener, whatever it is.
    pub fn tenant_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway.as_ref().unwrap().addr())
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(key).json(body).send().await.unwrap()
    }

    /// A POST of `text` as it is, labelled JSON (for bodies that are not).
    pub async fn post_text(&self, path: &str, key: &str, text: &'static str) -> reqwest::Response {
        let request = self.client.post(self.url(path)).bearer_auth(key);
        request.header("content-type", "application/json").body(text).send().await.unwrap()
    }

    /// `GET /admin/v1/usage` with the admin token.
    pub async fn admin_usage(&self) -> Value {
        let response =
            self.client.get(self.url("/admin/v1/usage")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        response.json().await.unwrap()
    }

    /// The Prometheus text of `/metrics`, as a scraper with the admin token sees it.
    pub async fn metrics(&self) -> String {
        let request = self.client.get(self.url("/metrics")).bearer_auth(ADMIN_TOKEN);
        request.send().await.unwrap().text().await.unwrap()
    }

    /// Every ledger row as JSON objects, oldest first (stop the gateway first to flush).
    pub async fn ledger_rows(&self) -> Vec<Value> {
        ledger_rows(&self.database_url).await
    }
}

pub async fn ledger_rows(database_url: &str) -> Vec<Value> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await.unwrap();
    let rows = sqlx::query(
        "SELECT id, tenant, api_key, model, route, backend, provider, endpoint, stream, status, error_code, \
         input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, cost_nanos FROM usage_ledger \
         ORDER BY created_at_ms, id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let out = rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "id": row.get::<String, _>(0), "tenant": row.get::<String, _>(1),
                "api_key": row.get::<String, _>(2), "model": row.get::<String, _>(3),
                "route": row.get::<String, _>(4), "backend": row.get::<String, _>(5),
                "provider": row.get::<String, _>(6), "endpoint": row.get::<String, _>(7),
                "stream": row.get::<i64, _>(8) == 1, "status": row.get::<i64, _>(9),
                "error_code": row.get::<Option<String>, _>(10),
                "input_tokens": row.get::<i64, _>(11), "cached_input_tokens": row.get::<i64, _>(12),
                "cache_write_tokens": row.get::<i64, _>(13), "output_tokens": row.get::<i64, _>(14),
                "cost_nanos": row.get::<i64, _>(15),
            })
        })
        .collect();
    pool.close().await;
    out
}

/// Writes a file into the config folder (a hot reload follows).
pub fn write_config(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Polls `check` every 50 ms for up to 10 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Concatenates the `data:` payloads of an SSE body (excluding `[DONE]`) as JSON values.
pub fn sse_data(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

/// A test server's URL from the environment `make test` sets (it starts the servers).
pub fn server_url(variable: &str) -> String {
    std::env::var(variable)
        .unwrap_or_else(|_| panic!("{variable} is not set: run `make test`, which starts the test servers"))
}

/// A URL to a fresh schema of the test PostgreSQL, which keeps tests and reruns independent.
pub async fn fresh_postgres() -> String {
    let url = server_url("SWITCHBOARD_TEST_POSTGRES_URL");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let schema = format!("t{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await.unwrap();
    pool.close().await;
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

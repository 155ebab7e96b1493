//! Command-line flags and their environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use switchboard_telemetry::TraceSettings;

use crate::signin::SignInSettings;

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The gateway's settings. No `Debug`: it holds the admin token.
#[derive(Clone, clap::Parser)]
#[command(name = "switchboard-gateway", version, about = "Switchboard LLM gateway")]
pub struct Settings {
    /// Folder of Kubernetes manifests (Tenants, Personas, ProviderRoutes, Budgets, Secrets) to
    /// serve, reloaded on change. Without it the gateway runs in-cluster: it reads the operator's
    /// ConfigMap with the standard kubeconfig or in-cluster credentials.
    #[arg(long, env = "SWITCHBOARD_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    /// In-cluster mode: the namespace of the operator's ConfigMap and the provider key Secrets.
    #[arg(long, env = "SWITCHBOARD_NAMESPACE", default_value = "switchboard")]
    pub namespace: String,
    /// In-cluster mode: the ConfigMap the operator renders the config into.
    #[arg(long, env = "SWITCHBOARD_CONFIGMAP", default_value = "switchboard-gateway-config")]
    pub configmap: String,
    /// In-cluster mode: the Secret the operator copies the routes' provider keys into; the only
    /// Secret the gateway reads.
    #[arg(
        long,
        env = "SWITCHBOARD_PROVIDER_KEYS_SECRET",
        default_value = "switchboard-gateway-provider-keys"
    )]
    pub provider_keys_secret: String,
    /// In-cluster mode: how often the elected replica writes usage into Budget and Tenant status.
    #[arg(long, env = "SWITCHBOARD_STATUS_INTERVAL_SECONDS", default_value_t = 10)]
    pub status_interval_seconds: u64,
    /// In-cluster mode: this replica's identity in the status Lease; defaults to the host name.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the admin listener: `/admin/v1/*` (and the probes and `/metrics`), never served
    /// on `--listen`. Keep it off the network tenants reach (the chart exposes it through its own
    /// Service, closed by a NetworkPolicy).
    #[arg(long, env = "SWITCHBOARD_ADMIN_LISTEN", default_value = "127.0.0.1:8081")]
    pub admin_listen: SocketAddr,
    /// Ledger database: `sqlite://FILE?mode=rwc` or `postgres://USER:PASSWORD@HOST/DB`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://switchboard.db?mode=rwc",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Redis shared by every replica (`redis://HOST:PORT/`) for rate limits and cached replies.
    /// Without it each replica limits and caches on its own. While Redis is unreachable, replicas
    /// fall back to local limits and local cache entries.
    #[arg(long, env = "SWITCHBOARD_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Host names `/mcp` accepts besides loopback, IP literals, single-label and cluster-internal
    /// (`*.svc`, `*.svc.cluster.local`) names: a comma-separated list where `*.example.com` matches
    /// subdomains and `*` turns the DNS-rebinding check off.
    #[arg(long, env = "SWITCHBOARD_MCP_ALLOWED_HOSTS", default_value = "")]
    pub mcp_allowed_hosts: String,
    /// Bearer token for `/admin/v1/*`. Admin endpoints are disabled without it.
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// The URL MCP clients reach `/mcp` at (e.g. `https://llm.example.com/mcp`): the audience an
    /// MCP access token must carry, and the `resource` of its protected-resource metadata.
    /// Default: each request's own URL (its checked `Host`, and `X-Forwarded-Proto`).
    #[arg(long, env = "SWITCHBOARD_MCP_RESOURCE")]
    pub mcp_resource: Option<String>,
    /// Accept Kubernetes ServiceAccount tokens minted for this audience (`kubectl create token SA
    /// --audience AUD`, or a projected token volume): a pod in a namespace that exactly one
    /// Tenant lists calls as that Tenant. The keys come from the API server's OIDC discovery.
    #[arg(long, env = "SWITCHBOARD_SERVICE_ACCOUNT_AUDIENCE")]
    pub service_account_audience: Option<String>,
    /// Client connections open at once; 0 derives it from the open-files limit (raised to its
    /// hard maximum at start), less 128 for upstream and database connections.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,
    /// How long a client has to send a request's headers after connecting, and how long a kept-alive
    /// HTTP/1 connection may sit idle between requests.
    #[arg(long, env = "SWITCHBOARD_HEADER_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_seconds: u64,
    /// How long a client has to send a request's whole body once its headers are in.
    #[arg(long, env = "SWITCHBOARD_BODY_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_seconds: u64,
    /// Largest accepted request body, bytes.
    #[arg(long, env = "SWITCHBOARD_MAX_REQUEST_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_request_bytes: usize,
    /// Requests in flight at once across all tenants (0: unlimited); more wait in the queue.
    #[arg(long, env = "SWITCHBOARD_MAX_IN_FLIGHT", default_value_t = 4096)]
    pub max_in_flight: usize,
    /// Requests waiting for a slot at most; beyond that the gateway answers 503 at once.
    #[arg(long, env = "SWITCHBOARD_QUEUE_CAPACITY", default_value_t = 1024)]
    pub queue_capacity: usize,
    /// Longest wait in the queue, milliseconds, before a 503.
    #[arg(long, env = "SWITCHBOARD_QUEUE_TIMEOUT_MS", default_value_t = 10_000)]
    pub queue_timeout_ms: u64,
    /// Memory for cached replies, MiB.
    #[arg(long, env = "SWITCHBOARD_CACHE_MAX_MIB", default_value_t = 64)]
    pub cache_max_mib: u64,
    /// Keep the request log (every request with its attempts and timings); off, only the usage
    /// ledger is written.
    #[arg(long, env = "SWITCHBOARD_REQUEST_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    pub request_log: bool,
    /// Days the request log keeps a request (0: forever). The usage ledger is never trimmed.
    #[arg(long, env = "SWITCHBOARD_REQUEST_LOG_RETENTION_DAYS", default_value_t = 30)]
    pub request_log_retention_days: u32,
    /// Ledger rows waiting for the database at most: at this backlog (the database is down,
    /// locked or too slow) new requests are refused with 503 `ledger_behind`, and /readyz fails,
    /// until the writer catches up. Bounds memory without dropping a row.
    #[arg(long, env = "SWITCHBOARD_LEDGER_MAX_BACKLOG", default_value_t = 100_000,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub ledger_max_backlog: u32,
    /// The OpenID Connect provider people sign in to the admin API with (authorization code flow
    /// with PKCE at `/auth/login` on the admin listener); roles from `--roles-file`.
    #[arg(long, env = "SWITCHBOARD_OIDC_ISSUER", requires_all = ["oidc_client_id", "oidc_client_secret"])]
    pub oidc_issuer: Option<String>,
    #[arg(long, env = "SWITCHBOARD_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    #[arg(long, env = "SWITCHBOARD_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// Where the provider sends people back (`.../auth/callback` on the admin listener, as
    /// registered with the provider). Default: the request's own URL.
    #[arg(long, env = "SWITCHBOARD_OIDC_REDIRECT_URL")]
    pub oidc_redirect_url: Option<String>,
    #[arg(long, env = "SWITCHBOARD_OIDC_SCOPES", default_value = "openid email profile")]
    pub oidc_scopes: String,
    /// The ID token claim listing the person's groups.
    #[arg(long, env = "SWITCHBOARD_OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,
    /// YAML mapping people and groups to roles (platformAdmins, viewers, tenantAdmins);
    /// docs/security.md. In cluster mode without it, the cluster's RBAC decides
    /// (SubjectAccessReview).
    #[arg(long, env = "SWITCHBOARD_ROLES_FILE")]
    pub roles_file: Option<PathBuf>,
    /// Prefixed to a signed-in person's e-mail to name them to the API server's RBAC, as its
    /// `--oidc-username-prefix` does (for example `oidc:`).
    #[arg(long, env = "SWITCHBOARD_KUBERNETES_USER_PREFIX", default_value = "")]
    pub kubernetes_user_prefix: String,
    /// Prefixed to their groups likewise (`--oidc-groups-prefix`).
    #[arg(long, env = "SWITCHBOARD_KUBERNETES_GROUP_PREFIX", default_value = "")]
    pub kubernetes_group_prefix: String,
    /// Days the audit trail keeps an event (0: forever).
    #[arg(long, env = "SWITCHBOARD_AUDIT_RETENTION_DAYS", default_value_t = 365)]
    pub audit_retention_days: u32,
    #[command(flatten)]
    pub tracing: TraceSettings,
    /// Where the console links a request's trace: a URL of the team's tracing UI with
    /// `{trace_id}` in it (for example `http://jaeger:16686/trace/{trace_id}`).
    #[arg(long, env = "SWITCHBOARD_TRACE_URL_TEMPLATE", value_parser = trace_url_template)]
    pub trace_url_template: Option<String>,
    /// Seconds to let in-flight requests finish after SIGTERM.
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    pub shutdown_grace_seconds: u64,
    /// Validate the config folder (schema, CEL rules, references, Secrets), print what it
    /// defines, and exit: 0 if it would load, 1 if not. For CI before a GitOps merge.
    #[arg(long, requires = "config_dir")]
    pub check: bool,
    /// Log format.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl Settings {
    /// The sign-in settings, when an OpenID Connect provider is configured.
    pub fn sign_in(&self) -> Option<SignInSettings> {
        Some(SignInSettings {
            issuer: self.oidc_issuer.clone()?,
            client_id: self.oidc_client_id.clone()?,
            client_secret: self.oidc_client_secret.clone()?,
            redirect_url: self.oidc_redirect_url.clone(),
            scopes: self.oidc_scopes.clone(),
            groups_claim: self.oidc_groups_claim.clone(),
            roles_file: self.roles_file.clone(),
        })
    }
}

/// A trace link template: an http(s) URL with `{trace_id}` in it.
fn trace_url_template(text: &str) -> Result<String, String> {
    let url_like = text.starts_with("https://") || text.starts_with("http://");
    if !url_like || !text.contains("{trace_id}") || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("an http(s) URL with {trace_id} in it, e.g. http://jaeger:16686/trace/{trace_id}".into());
    }
    Ok(text.to_owned())
}

impl Settings {
    /// The flags as the console's Settings view shows them: every one but the secrets, which
    /// show only whether they are set; URLs without their passwords.
    pub fn shown(&self) -> serde_json::Value {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let set = |secret: &Option<String>| secret.as_ref().map(|_| "(set, not shown)");
        serde_json::json!({
            "config-dir": path(&self.config_dir),
            "namespace": self.namespace,
            "configmap": self.configmap,
            "provider-keys-secret": self.provider_keys_secret,
            "status-interval-seconds": self.status_interval_seconds,
            "listen": self.listen.to_string(),
            "admin-listen": self.admin_listen.to_string(),
            "database-url": without_password(&self.database_url),
            "redis-url": self.redis_url.as_deref().map(without_password),
            "admin-token": set(&self.admin_token),
            "mcp-resource": self.mcp_resource,
            "service-account-audience": self.service_account_audience,
            "max-connections": self.max_connections,
            "header-timeout-seconds": self.header_timeout_seconds,
            "body-timeout-seconds": self.body_timeout_seconds,
            "max-request-bytes": self.max_request_bytes,
            "max-in-flight": self.max_in_flight,
            "queue-capacity": self.queue_capacity,
            "queue-timeout-ms": self.queue_timeout_ms,
            "cache-max-mib": self.cache_max_mib,
            "request-log": self.request_log,
            "request-log-retention-days": self.request_log_retention_days,
            "ledger-max-backlog": self.ledger_max_backlog,
            "oidc-issuer": self.oidc_issuer,
            "oidc-client-id": self.oidc_client_id,
            "oidc-client-secret": set(&self.oidc_client_secret),
            "roles-file": path(&self.roles_file),
            "kubernetes-user-prefix": self.kubernetes_user_prefix,
            "kubernetes-group-prefix": self.kubernetes_group_prefix,
            "audit-retention-days": self.audit_retention_days,
            "otlp-endpoint": self.tracing.endpoint.as_deref().map(without_password),
            "trace-sampling-ratio": self.tracing.sampling_ratio,
            "trace-url-template": self.trace_url_template,
            "shutdown-grace-seconds": self.shutdown_grace_seconds,
        })
    }
}

/// A URL without its password (`postgres://user:secret@host/db` -> `postgres://user@host/db`);
/// what does not parse as one is not shown at all.
fn without_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(None);
            }
            parsed.to_string()
        }
        Err(_) => "(set, not shown)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn flags_are_shown_without_secrets() {
        let settings = Settings::parse_from([
            "switchboard-gateway",
            "--database-url",
            "postgres://ledger:hunter2@db:5432/switchboard",
            "--admin-token",
            "sk-admin-secret",
            "--redis-url",
            "redis://:redispass@cache:6379",
        ]);
        let shown = settings.shown().to_string();
        for secret in ["hunter2", "sk-admin-secret", "redispass"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        let shown = settings.shown();
        assert_eq!(shown["database-url"], "postgres://ledger@db:5432/switchboard");
        assert_eq!(shown["admin-token"], "(set, not shown)");
        assert_eq!(shown["oidc-client-secret"], serde_json::Value::Null);
        assert_eq!(without_password("not a url"), "(set, not shown)");
    }
}

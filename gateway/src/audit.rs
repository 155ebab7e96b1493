//! The audit trail: every refused credential and every administrative request, with who (the
//! identity and its provider), what, when, from where and the outcome, as a structured log line
//! (target `audit`) and a row in `audit_log`, queried by `GET /admin/v1/audit`.
//!
//! Rows are written off the request path by one task, in batches. The queue is bounded: a flood
//! of refused credentials must not take the gateway's memory, so past [`QUEUE`] events a row is
//! dropped (counted in `switchboard_audit_dropped_total`); its log line is always written. No
//! credential ever reaches an event: the reasons name the check that failed, not the key or token.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::sync::mpsc;

use crate::db::{Bind, Conditions, Database, now_ms, page_of, row_placeholders};
use crate::metrics::Metrics;

/// Events waiting for the database at most.
const QUEUE: usize = 10_000;
/// Rows per insert statement at most.
const BATCH: usize = 64;
/// Rows per page at most.
pub const MAX_PAGE: u32 = 500;
/// The longest text kept in a field.
const MAX_FIELD: usize = 512;
const COLUMNS: [&str; 10] = [
    "id",
    "at_ms",
    "action",
    "actor",
    "identity_provider",
    "subject",
    "target",
    "outcome",
    "source",
    "detail",
];

/// One audited action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: String,
    pub at_ms: i64,
    /// `credential.refused`, `admin.request`.
    pub action: String,
    /// Who: `admin-token`, `tenant:<name>`, or `unknown` for a refused credential.
    pub actor: String,
    /// How they proved it: `admin_token`, `api_key`, a JWT issuer, `kubernetes`, or `none`.
    pub identity_provider: String,
    pub subject: Option<String>,
    /// What: the method and path (with its query) asked for.
    pub target: String,
    /// `allowed`, `denied`, or the HTTP status for a request that ran.
    pub outcome: String,
    /// The client's address.
    pub source: Option<String>,
    /// Why, for a refusal.
    pub detail: Option<String>,
}

impl AuditEvent {
    pub fn new(
        action: &str,
        actor: &str,
        identity_provider: &str,
        target: &str,
        outcome: &str,
    ) -> AuditEvent {
        AuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            at_ms: now_ms(),
            action: action.to_owned(),
            actor: bounded(actor),
            identity_provider: bounded(identity_provider),
            subject: None,
            target: bounded(target),
            outcome: outcome.to_owned(),
            source: None,
            detail: None,
        }
    }
}

fn bounded(text: &str) -> String {
    let mut text = text.to_owned();
    crate::redact::truncate_to(&mut text, MAX_FIELD);
    text
}

/// Records events; cheap to clone.
#[derive(Clone)]
pub struct Audit {
    db: Database,
    queue: mpsc::Sender<AuditEvent>,
    metrics: Metrics,
}

/// Which rows a page holds (newest first).
#[derive(Debug, Default)]
pub struct Filter {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub since_ms: Option<i64>,
    pub before: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Serialize)]
pub struct Page {
    pub data: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

impl Audit {
    /// The trail and the task that writes it (stops when every `Audit` is dropped).
    pub fn spawn(db: Database, metrics: Metrics) -> (Audit, tokio::task::JoinHandle<()>) {
        let (queue, events) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(write(db.clone(), events));
        (Audit { db, queue, metrics }, writer)
    }

    /// Logs `event` and queues its row.
    pub fn record(&self, mut event: AuditEvent) {
        event.subject = event.subject.as_deref().map(bounded);
        event.detail = event.detail.as_deref().map(bounded);
        tracing::info!(
            target: "audit",
            action = %event.action, actor = %event.actor, identity_provider = %event.identity_provider,
            subject = event.subject.as_deref().unwrap_or(""), target = %event.target, outcome = %event.outcome,
            source = event.source.as_deref().unwrap_or(""), detail = event.detail.as_deref().unwrap_or(""),
            "audit"
        );
        if self.queue.try_send(event).is_err() {
            self.metrics.audit_dropped();
        }
    }

    pub async fn page(&self, filter: &Filter) -> Result<Page, sqlx::Error> {
        let mut conditions = Conditions::new(self.db.dialect());
        conditions.equal_where_set(&[("action", &filter.action), ("actor", &filter.actor)]);
        if let Some(since) = filter.since_ms {
            conditions.compare("at_ms", ">=", Bind::Int(since));
        }
        if let Some(before) = &filter.before {
            conditions.compare("id", "<", Bind::Text(before.clone()));
        }
        let limit = filter.limit.clamp(1, MAX_PAGE);
        let sql = format!(
            "SELECT {} FROM audit_log {} ORDER BY id DESC LIMIT {}",
            COLUMNS.join(", "),
            conditions.clause(),
            limit + 1
        );
        let rows = conditions.query(&sql).fetch_all(self.db.pool()).await?;
        let rows = rows.iter().map(event).collect::<Result<Vec<_>, _>>()?;
        let (data, next_cursor) = page_of(rows, limit, |last| last.id.clone());
        Ok(Page { data, next_cursor })
    }

    /// Deletes the rows older than `days` once a day (0: keeps them).
    pub fn spawn_retention(&self, days: u32) -> Option<tokio::task::JoinHandle<()>> {
        if days == 0 {
            return None;
        }
        let db = self.db.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(86_400));
            loop {
                tick.tick().await;
                let before = now_ms().saturating_sub(i64::from(days) * 86_400_000);
                let mut conditions = Conditions::new(db.dialect());
                conditions.compare("at_ms", "<", Bind::Int(before));
                let sql = format!("DELETE FROM audit_log {}", conditions.clause());
                if let Err(error) = conditions.query(&sql).execute(db.pool()).await {
                    tracing::warn!(%error, "cannot trim the audit trail");
                }
            }
        }))
    }
}

/// Writes queued events in batches until the queue closes; a failed batch is retried once a
/// second, so a database outage delays rows instead of losing them.
async fn write(db: Database, mut events: mpsc::Receiver<AuditEvent>) {
    let mut batch = Vec::with_capacity(BATCH);
    while events.recv_many(&mut batch, BATCH).await > 0 {
        while let Err(error) = insert(&db, &batch).await {
            tracing::warn!(%error, rows = batch.len(), "cannot write the audit trail; retrying");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        batch.clear();
    }
}

async fn insert(db: &Database, events: &[AuditEvent]) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO audit_log ({}) VALUES {}",
        COLUMNS.join(", "),
        row_placeholders(db.dialect(), events.len(), COLUMNS.len())
    );
    let mut query = sqlx::query(&sql);
    for e in events {
        query = query
            .bind(e.id.clone())
            .bind(e.at_ms)
            .bind(e.action.clone())
            .bind(e.actor.clone())
            .bind(e.identity_provider.clone())
            .bind(e.subject.clone())
            .bind(e.target.clone())
            .bind(e.outcome.clone())
            .bind(e.source.clone())
            .bind(e.detail.clone());
    }
    query.execute(db.pool()).await.map(|_| ())
}

fn event(row: &AnyRow) -> Result<AuditEvent, sqlx::Error> {
    Ok(AuditEvent {
        id: row.try_get("id")?,
        at_ms: row.try_get("at_ms")?,
        action: row.try_get("action")?,
        actor: row.try_get("actor")?,
        identity_provider: row.try_get("identity_provider")?,
        subject: row.try_get("subject")?,
        target: row.try_get("target")?,
        outcome: row.try_get("outcome")?,
        source: row.try_get("source")?,
        detail: row.try_get("detail")?,
    })
}

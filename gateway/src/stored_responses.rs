//! Responses API objects kept for their tenant (`store`, the default): fetched and deleted by
//! id, and continued by `previous_response_id` with the conversation stored beside each. A tenant
//! sees only its own; rows older than [`KEEP_DAYS`] are trimmed.

use std::time::Duration;

use serde_json::Value;
use sqlx::{AnyPool, Row};

use crate::db::{Database, now_ms};

/// How long a stored response is kept, as OpenAI keeps them.
pub const KEEP_DAYS: i64 = 30;
/// The largest conversation a response may continue: past it, `previous_response_id` is refused.
pub const MAX_CONVERSATION_BYTES: usize = 16 * 1024 * 1024;
const TRIM_EVERY: Duration = Duration::from_secs(3600);

/// The store; cheap to clone.
#[derive(Clone, Debug)]
pub struct StoredResponses {
    pool: AnyPool,
}

impl StoredResponses {
    pub fn new(db: &Database) -> StoredResponses {
        StoredResponses { pool: db.pool().clone() }
    }

    /// Keeps `response` and the conversation it ends (chat messages, oldest first).
    pub async fn put(
        &self,
        tenant: &str,
        response: &Value,
        conversation: &[Value],
    ) -> Result<(), sqlx::Error> {
        let id = response["id"].as_str().unwrap_or_default();
        sqlx::query(
            "INSERT INTO stored_responses (id, tenant, created_at_ms, response_json, conversation_json) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.to_owned())
        .bind(tenant.to_owned())
        .bind(now_ms())
        .bind(response.to_string())
        .bind(Value::from(conversation.to_vec()).to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The tenant's response `id`, as it was answered.
    pub async fn response(&self, tenant: &str, id: &str) -> Result<Option<Value>, sqlx::Error> {
        self.column(tenant, id, "response_json").await
    }

    /// The conversation response `id` ends, to continue it.
    pub async fn conversation(&self, tenant: &str, id: &str) -> Result<Option<Vec<Value>>, sqlx::Error> {
        let conversation = self.column(tenant, id, "conversation_json").await?;
        Ok(conversation.map(|value| match value {
            Value::Array(messages) => messages,
            _ => Vec::new(),
        }))
    }

    /// Deletes the tenant's response `id`; whether there was one.
    pub async fn delete(&self, tenant: &str, id: &str) -> Result<bool, sqlx::Error> {
        let deleted = sqlx::query("DELETE FROM stored_responses WHERE tenant = $1 AND id = $2")
            .bind(tenant.to_owned())
            .bind(id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Trims what is older than [`KEEP_DAYS`], hourly.
    pub fn spawn_retention(&self) -> tokio::task::JoinHandle<()> {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TRIM_EVERY);
            loop {
                tick.tick().await;
                let before = now_ms().saturating_sub(KEEP_DAYS * 86_400_000);
                let trimmed = sqlx::query("DELETE FROM stored_responses WHERE created_at_ms < $1")
                    .bind(before)
                    .execute(&pool)
                    .await;
                if let Err(error) = trimmed {
                    tracing::warn!(%error, "cannot trim the stored responses");
                }
            }
        })
    }

    async fn column(&self, tenant: &str, id: &str, column: &str) -> Result<Option<Value>, sqlx::Error> {
        let row =
            sqlx::query(&format!("SELECT {column} FROM stored_responses WHERE tenant = $1 AND id = $2"))
                .bind(tenant.to_owned())
                .bind(id.to_owned())
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get(0)?;
        serde_json::from_str(&text).map(Some).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }
}

//! Long-term memory: what a persona remembers about a subject (an end user), in the ledger's
//! database (SQLite FTS5 or PostgreSQL full-text search).
//!
//! Memories belong to a tenant, a persona and a subject. Every query is bound to one tenant, so
//! memories never cross tenants; which personas' memories a persona may read is decided by the
//! caller ([`super::sharing`]) and passed in. Recall is in [`super::recall`], vectors in
//! [`super::vectors`].

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

/// What a memory records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryKind {
    #[default]
    Fact,
    Preference,
    Event,
    Summary,
}

impl MemoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fact => "fact",
            Self::Preference => "preference",
            Self::Event => "event",
            Self::Summary => "summary",
        }
    }

    pub fn parse(text: &str) -> Option<MemoryKind> {
        match text {
            "fact" => Some(Self::Fact),
            "preference" => Some(Self::Preference),
            "event" => Some(Self::Event),
            "summary" => Some(Self::Summary),
            _ => None,
        }
    }
}

/// A memory to store.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NewMemory {
    pub kind: MemoryKind,
    pub content: String,
    /// 1 (trivia) to 10 (never forget).
    pub importance: u8,
    /// The single-valued attribute the memory states ("home", "job"), if any: a newer memory of
    /// the same slot supersedes it.
    pub slot: Option<String>,
}

/// The longest slot name kept, in characters.
pub const MAX_SLOT: usize = 64;

/// A slot as stored: lowercase words joined by single spaces, at most [`MAX_SLOT`] characters;
/// `None` when nothing is left.
pub fn slot_key(slot: &str) -> Option<String> {
    let key: String = content_key(slot).chars().take(MAX_SLOT).collect();
    let key = key.trim_end().to_owned();
    (!key.is_empty()).then_some(key)
}

/// A stored memory.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    pub id: String,
    pub persona: String,
    pub subject: String,
    pub kind: MemoryKind,
    pub content: String,
    pub importance: u8,
    pub created_at_ms: i64,
    pub last_used_at_ms: i64,
    pub use_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// When a newer memory of the same slot replaced this one (history, never recalled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// The recall score, for memories that came from [`MemoryStore::recall`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// Whose memory: the tenant of the conversation, the persona that remembers, and the subject.
#[derive(Clone, Copy, Debug)]
pub struct Owner<'a> {
    pub tenant: &'a str,
    pub persona: &'a str,
    pub subject: &'a str,
}

/// The outcome of [`MemoryStore::remember`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Remembered {
    pub id: String,
    /// False when an equivalent memory existed: it was refreshed instead.
    pub created: bool,
    /// How many memories of the same slot it superseded.
    pub superseded: u64,
}

/// How many memories to keep (see the Persona's `memory` policy).
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    pub max_per_subject: u32,
    /// 0 keeps memories forever.
    pub days: u32,
}

#[derive(Clone, Debug)]
pub struct MemoryStore {
    pub(super) pool: AnyPool,
    pub(super) postgres: bool,
}

/// The columns [`decode`] reads, in its order.
pub(super) const COLUMNS: &str = "m.id, m.persona, m.subject, m.kind, m.content, m.importance, m.created_at_ms, \
    m.last_used_at_ms, m.use_count, m.slot, m.superseded_at_ms, m.superseded_by";
/// How many columns [`COLUMNS`] names: a query's own columns follow them.
pub(super) const COLUMN_COUNT: usize = 12;
/// The condition that keeps history out of recall.
pub(super) const CURRENT: &str = "m.superseded_at_ms IS NULL";

impl MemoryStore {
    pub fn new(pool: AnyPool, postgres: bool) -> MemoryStore {
        MemoryStore { pool, postgres }
    }

    /// Stores a memory, or refreshes an equivalent one (same words, case and punctuation aside):
    /// its importance becomes the higher of the two and it counts as just used (and current
    /// again, if a newer memory had superseded it). A memory with a slot supersedes the current
    /// memories of that slot, in the same transaction.
    pub async fn remember(
        &self,
        owner: Owner<'_>,
        memory: &NewMemory,
        now_ms: i64,
    ) -> Result<Remembered, sqlx::Error> {
        let id = uuid::Uuid::now_v7().to_string();
        let slot = memory.slot.as_deref().and_then(slot_key);
        let mut transaction = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO persona_memories (id, tenant, persona, subject, kind, content, content_key, \
             importance, created_at_ms, last_used_at_ms, use_count, slot) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 0, $10) \
             ON CONFLICT (tenant, persona, subject, content_key) DO UPDATE SET \
             importance = CASE WHEN excluded.importance > persona_memories.importance \
             THEN excluded.importance ELSE persona_memories.importance END, \
             last_used_at_ms = excluded.last_used_at_ms, slot = COALESCE(excluded.slot, persona_memories.slot), \
             superseded_at_ms = NULL, superseded_by = NULL RETURNING id",
        )
        .bind(id.clone())
        .bind(owner.tenant.to_owned())
        .bind(owner.persona.to_owned())
        .bind(owner.subject.to_owned())
        .bind(memory.kind.as_str())
        .bind(memory.content.trim().to_owned())
        .bind(content_key(&memory.content))
        .bind(i64::from(memory.importance.clamp(1, 10)))
        .bind(now_ms)
        .bind(slot.clone())
        .fetch_one(&mut *transaction)
        .await?;
        let stored: String = row.try_get(0)?;
        let mut superseded = 0;
        if let Some(slot) = slot {
            superseded = sqlx::query(
                "UPDATE persona_memories SET superseded_at_ms = $1, superseded_by = $2 WHERE tenant = $3 \
                 AND persona = $4 AND subject = $5 AND slot = $6 AND id <> $2 AND superseded_at_ms IS NULL",
            )
            .bind(now_ms)
            .bind(stored.clone())
            .bind(owner.tenant.to_owned())
            .bind(owner.persona.to_owned())
            .bind(owner.subject.to_owned())
            .bind(slot)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        }
        transaction.commit().await?;
        Ok(Remembered { created: stored == id, id: stored, superseded })
    }

    /// Marks memories as used now (they were injected into a prompt or recalled).
    pub async fn touch(&self, ids: &[&str], now_ms: i64) -> Result<(), sqlx::Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE persona_memories SET last_used_at_ms = $1, use_count = use_count + 1 WHERE id IN ({})",
            placeholders(2, ids.len())
        );
        let mut statement = sqlx::query(&sql).bind(now_ms);
        for id in ids {
            statement = statement.bind((*id).to_owned());
        }
        statement.execute(&self.pool).await?;
        Ok(())
    }

    /// Every memory of `subject` in `tenant`, oldest first: a subject's data export.
    /// Up to `limit` subjects of `tenant` that `personas` remember, by name, starting with `prefix`
    /// (for completing a subject argument).
    pub async fn subjects(
        &self,
        tenant: &str,
        personas: &[&str],
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, sqlx::Error> {
        if personas.is_empty() {
            return Ok(Vec::new());
        }
        let escaped: String = prefix
            .chars()
            .flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] })
            .collect();
        let sql = format!(
            "SELECT DISTINCT subject FROM persona_memories WHERE tenant = $1 AND subject LIKE $2 ESCAPE '\\' \
             AND persona IN ({}) ORDER BY subject LIMIT {limit}",
            placeholders(3, personas.len())
        );
        let query = sqlx::query(&sql).bind(tenant.to_owned()).bind(format!("{escaped}%"));
        let rows = personas
            .iter()
            .fold(query, |query, persona| query.bind((*persona).to_owned()))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| row.try_get::<String, _>(0)).collect()
    }

    pub async fn export(&self, tenant: &str, subject: &str) -> Result<Vec<Memory>, sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM persona_memories m WHERE m.tenant = $1 AND m.subject = $2 \
             ORDER BY m.created_at_ms, m.id"
        );
        let rows =
            sqlx::query(&sql).bind(tenant.to_owned()).bind(subject.to_owned()).fetch_all(&self.pool).await?;
        rows.iter().map(decode).collect()
    }

    /// Deletes memories of `subject` in `tenant`: all of them, or only one persona's, or one
    /// memory. Returns how many were deleted.
    pub async fn forget(
        &self,
        tenant: &str,
        subject: &str,
        persona: Option<&str>,
        id: Option<&str>,
    ) -> Result<u64, sqlx::Error> {
        let mut sql = String::from("DELETE FROM persona_memories WHERE tenant = $1 AND subject = $2");
        let mut next = 3;
        for (column, value) in [("persona", persona), ("id", id)] {
            if value.is_some() {
                sql.push_str(&format!(" AND {column} = ${next}"));
                next += 1;
            }
        }
        let mut statement = sqlx::query(&sql).bind(tenant.to_owned()).bind(subject.to_owned());
        for value in [persona, id].into_iter().flatten() {
            statement = statement.bind(value.to_owned());
        }
        Ok(statement.execute(&self.pool).await?.rows_affected())
    }

    /// Applies a retention policy to one subject's memories of one persona: drops those unused
    /// for longer than `days`, then beyond `max_per_subject` history first, then the least
    /// valuable (lowest importance, then least recently used). Returns how many were deleted.
    pub async fn prune(
        &self,
        owner: Owner<'_>,
        retention: Retention,
        now_ms: i64,
    ) -> Result<u64, sqlx::Error> {
        let mut deleted = 0;
        if retention.days > 0 {
            let cutoff = now_ms - i64::from(retention.days) * 86_400_000;
            deleted += sqlx::query(
                "DELETE FROM persona_memories WHERE tenant = $1 AND persona = $2 AND subject = $3 \
                 AND last_used_at_ms < $4",
            )
            .bind(owner.tenant.to_owned())
            .bind(owner.persona.to_owned())
            .bind(owner.subject.to_owned())
            .bind(cutoff)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        // SQLite needs a LIMIT before OFFSET; -1 means none.
        let offset = if self.postgres { "OFFSET $4" } else { "LIMIT -1 OFFSET $4" };
        let sql = format!(
            "DELETE FROM persona_memories WHERE id IN (SELECT id FROM persona_memories WHERE tenant = $1 \
             AND persona = $2 AND subject = $3 ORDER BY CASE WHEN superseded_at_ms IS NULL THEN 0 ELSE 1 END, \
             importance DESC, last_used_at_ms DESC, id DESC {offset})"
        );
        deleted += sqlx::query(&sql)
            .bind(owner.tenant.to_owned())
            .bind(owner.persona.to_owned())
            .bind(owner.subject.to_owned())
            .bind(i64::from(retention.max_per_subject))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted)
    }

    /// Drops the memories of `persona` (every tenant and subject) unused for more than `days`:
    /// the sweep for subjects nobody talks to any more, whose memories no write would prune.
    pub async fn expire(&self, persona: &str, days: u32, now_ms: i64) -> Result<u64, sqlx::Error> {
        let cutoff = now_ms - i64::from(days) * 86_400_000;
        let result = sqlx::query("DELETE FROM persona_memories WHERE persona = $1 AND last_used_at_ms < $2")
            .bind(persona.to_owned())
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// Memories `persona` keeps under `tenant` (other tenants' conversations with a shared
    /// persona are theirs, and not counted).
    pub async fn count(&self, tenant: &str, persona: &str) -> Result<i64, sqlx::Error> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM persona_memories WHERE tenant = $1 AND persona = $2",
        )
        .bind(tenant.to_owned())
        .bind(persona.to_owned())
        .fetch_one(&self.pool)
        .await?;
        row.try_get(0)
    }

    /// Stored memories per persona (every tenant's conversations), for Persona status.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let rows =
            sqlx::query("SELECT persona, CAST(COUNT(*) AS BIGINT) FROM persona_memories GROUP BY persona")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
    }
}

pub(super) fn decode(row: &AnyRow) -> Result<Memory, sqlx::Error> {
    let kind: String = row.try_get(3)?;
    let importance: i64 = row.try_get(5)?;
    Ok(Memory {
        id: row.try_get(0)?,
        persona: row.try_get(1)?,
        subject: row.try_get(2)?,
        kind: MemoryKind::parse(&kind).unwrap_or(MemoryKind::Fact),
        content: row.try_get(4)?,
        importance: u8::try_from(importance.clamp(1, 10)).unwrap_or(1),
        created_at_ms: row.try_get(6)?,
        last_used_at_ms: row.try_get(7)?,
        use_count: row.try_get(8)?,
        slot: row.try_get(9)?,
        superseded_at_ms: row.try_get(10)?,
        superseded_by: row.try_get(11)?,
        score: None,
    })
}

/// `$first, $first+1, ...` for an `IN (...)` list of `count` values.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// Lowercase words of a text without punctuation, joined by single spaces: two memories with the
/// same key say the same thing.
pub fn content_key(text: &str) -> String {
    words(text).collect::<Vec<_>>().join(" ")
}

/// The lowercase words of a text.
pub(super) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_case_and_punctuation() {
        assert_eq!(content_key("I love  Jazz!"), content_key("i love jazz"));
        assert_ne!(content_key("I love jazz"), content_key("I love rock"));
    }
}

//! A persona's conversations with its subjects, as far as summaries need them
//! (`spec.memory.summaries`): turns since the last summary, the time of the last turn, and that
//! turn's conversation as the client sent it, which the summary is written from. In the ledger's
//! database, so that every replica counts the same turns.

use sqlx::{AnyPool, Row};

use super::memory::Owner;

/// A conversation waiting for its summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub tenant: String,
    pub subject: String,
    pub transcript: String,
    pub last_turn_at_ms: i64,
}

#[derive(Clone, Debug)]
pub struct ConversationStore {
    pool: AnyPool,
}

impl ConversationStore {
    pub fn new(pool: AnyPool) -> ConversationStore {
        ConversationStore { pool }
    }

    /// Counts a turn of `owner`'s conversation, keeping its `transcript`; returns the turns since
    /// the last summary.
    pub async fn record_turn(
        &self,
        owner: Owner<'_>,
        transcript: &str,
        now_ms: i64,
    ) -> Result<i64, sqlx::Error> {
        let row = sqlx::query(
            "INSERT INTO persona_conversations (tenant, persona, subject, turns, last_turn_at_ms, transcript) \
             VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT (tenant, persona, subject) DO UPDATE SET \
             turns = persona_conversations.turns + 1, last_turn_at_ms = excluded.last_turn_at_ms, \
             transcript = excluded.transcript RETURNING turns",
        )
        .bind(owner.tenant.to_owned())
        .bind(owner.persona.to_owned())
        .bind(owner.subject.to_owned())
        .bind(now_ms)
        .bind(transcript.to_owned())
        .fetch_one(&self.pool)
        .await?;
        row.try_get(0)
    }

    /// Up to `limit` conversations of `persona` with turns not summarised, idle since before
    /// `idle_before_ms`, longest idle first.
    pub async fn idle(
        &self,
        persona: &str,
        idle_before_ms: i64,
        limit: usize,
    ) -> Result<Vec<Pending>, sqlx::Error> {
        let sql = format!(
            "SELECT tenant, subject, transcript, last_turn_at_ms FROM persona_conversations \
             WHERE persona = $1 AND turns > 0 AND last_turn_at_ms < $2 ORDER BY last_turn_at_ms LIMIT {limit}"
        );
        let rows =
            sqlx::query(&sql).bind(persona.to_owned()).bind(idle_before_ms).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(Pending {
                    tenant: row.try_get(0)?,
                    subject: row.try_get(1)?,
                    transcript: row.try_get(2)?,
                    last_turn_at_ms: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// Marks `owner`'s conversation as summarised up to its turn at `last_turn_at_ms`, and drops
    /// its transcript, kept only until then: a turn that came after it stays counted, with its
    /// transcript, for the next summary.
    pub async fn summarized(&self, owner: Owner<'_>, last_turn_at_ms: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE persona_conversations SET turns = 0, transcript = '' WHERE tenant = $1 AND persona = $2 \
             AND subject = $3 AND last_turn_at_ms <= $4",
        )
        .bind(owner.tenant.to_owned())
        .bind(owner.persona.to_owned())
        .bind(owner.subject.to_owned())
        .bind(last_turn_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Drops the conversations of `persona` (every tenant and subject) with no turn for more than
    /// `days`: the persona's `retentionDays` applies to them as to its memories.
    pub async fn expire(&self, persona: &str, days: u32, now_ms: i64) -> Result<u64, sqlx::Error> {
        let cutoff = now_ms.saturating_sub(i64::from(days) * 86_400_000);
        let result =
            sqlx::query("DELETE FROM persona_conversations WHERE persona = $1 AND last_turn_at_ms < $2")
                .bind(persona.to_owned())
                .bind(cutoff)
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected())
    }

    /// Forgets `subject`'s conversations in `tenant` (all, or one persona's): with its memories,
    /// the right to be forgotten.
    pub async fn forget(
        &self,
        tenant: &str,
        subject: &str,
        persona: Option<&str>,
    ) -> Result<u64, sqlx::Error> {
        let result = sqlx::query(
            "DELETE FROM persona_conversations WHERE tenant = $1 AND subject = $2 \
             AND (CAST($3 AS TEXT) IS NULL OR persona = $3)",
        )
        .bind(tenant.to_owned())
        .bind(subject.to_owned())
        .bind(persona.map(str::to_owned))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }
}

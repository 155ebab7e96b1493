//! Where moods and relationships live: the ledger's database, so that every replica sees the
//! same persona. The math is in [`super::affect`]; this module only loads, applies and stores.
//!
//! Each update is one transaction that reads the row (locked on PostgreSQL, where replicas write
//! concurrently; SQLite's single connection serialises them), applies the change and writes it.
//! Decay is applied on read, so a persona left alone calms down without any background job.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use switchboard_crds::resources::Relationship;

use super::affect::{Bond, Mood, Quality};

/// A persona's mood and interaction statistics.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonaState {
    pub mood: Mood,
    pub interactions: i64,
    /// Mean interaction valence, -1..=1 (0 before any interaction).
    pub average_quality: f64,
    pub last_interaction_ms: Option<i64>,
}

impl PersonaState {
    fn fresh(now_ms: i64) -> PersonaState {
        PersonaState {
            mood: Mood::neutral(now_ms),
            interactions: 0,
            average_quality: 0.0,
            last_interaction_ms: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct FeelingStore {
    pool: AnyPool,
    postgres: bool,
}

impl FeelingStore {
    pub fn new(pool: AnyPool, postgres: bool) -> FeelingStore {
        FeelingStore { pool, postgres }
    }

    /// The persona's state now (mood decayed to `now_ms`).
    pub async fn state(&self, tenant: &str, persona: &str, now_ms: i64) -> Result<PersonaState, sqlx::Error> {
        let row = sqlx::query(&format!("{STATE_SELECT} WHERE tenant = $1 AND persona = $2"))
            .bind(tenant.to_owned())
            .bind(persona.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        let state = row.map(|row| decode_state(&row)).transpose()?;
        Ok(state.map_or_else(|| PersonaState::fresh(now_ms), |(_, _, s)| decayed(s, now_ms)))
    }

    /// Every persona's state now, as `(tenant, persona, state)`, for Persona status.
    pub async fn states(&self, now_ms: i64) -> Result<Vec<(String, String, PersonaState)>, sqlx::Error> {
        let rows = sqlx::query(STATE_SELECT).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                decode_state(row).map(|(tenant, persona, state)| (tenant, persona, decayed(state, now_ms)))
            })
            .collect()
    }

    /// Applies one interaction of the given quality to the persona's mood and statistics.
    pub async fn record(
        &self,
        tenant: &str,
        persona: &str,
        quality: Quality,
        now_ms: i64,
    ) -> Result<PersonaState, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let lock = if self.postgres { " FOR UPDATE" } else { "" };
        let row = sqlx::query(&format!("{STATE_SELECT} WHERE tenant = $1 AND persona = $2{lock}"))
            .bind(tenant.to_owned())
            .bind(persona.to_owned())
            .fetch_optional(&mut *tx)
            .await?;
        let before = row.map(|row| decode_state(&row)).transpose()?.map(|(_, _, state)| state);
        let before = before.unwrap_or_else(|| PersonaState::fresh(now_ms));
        let interactions = before.interactions + 1;
        let after = PersonaState {
            mood: before.mood.after(quality, now_ms),
            interactions,
            average_quality: before.average_quality
                + (quality.valence - before.average_quality) / interactions as f64,
            last_interaction_ms: Some(now_ms),
        };
        sqlx::query(
            "INSERT INTO persona_states (tenant, persona, valence, arousal, at_ms, interactions, quality_sum, \
             last_interaction_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant, persona) DO UPDATE SET \
             valence = excluded.valence, arousal = excluded.arousal, at_ms = excluded.at_ms, \
             interactions = excluded.interactions, quality_sum = excluded.quality_sum, \
             last_interaction_ms = excluded.last_interaction_ms",
        )
        .bind(tenant.to_owned())
        .bind(persona.to_owned())
        .bind(after.mood.valence)
        .bind(after.mood.arousal)
        .bind(after.mood.at_ms)
        .bind(after.interactions)
        .bind(after.average_quality * interactions as f64)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// How `persona` relates to `other` now: the stored bond decayed to `now_ms`, or the
    /// starting point from the Persona spec.
    pub async fn bond(
        &self,
        tenant: &str,
        persona: &str,
        other: &str,
        start: Option<&Relationship>,
        now_ms: i64,
    ) -> Result<Bond, sqlx::Error> {
        let row = sqlx::query(&format!("{BOND_SELECT} WHERE tenant = $1 AND persona = $2 AND other = $3"))
            .bind(tenant.to_owned())
            .bind(persona.to_owned())
            .bind(other.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => decode_bond(&row)?.decayed(start, now_ms),
            None => Bond::initial(start, now_ms),
        })
    }

    /// Applies one interaction between `persona` and `other` to `persona`'s side of the bond.
    pub async fn interact(
        &self,
        tenant: &str,
        persona: &str,
        other: &str,
        start: Option<&Relationship>,
        quality: Quality,
        now_ms: i64,
    ) -> Result<Bond, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let lock = if self.postgres { " FOR UPDATE" } else { "" };
        let row =
            sqlx::query(&format!("{BOND_SELECT} WHERE tenant = $1 AND persona = $2 AND other = $3{lock}"))
                .bind(tenant.to_owned())
                .bind(persona.to_owned())
                .bind(other.to_owned())
                .fetch_optional(&mut *tx)
                .await?;
        let before = match row {
            Some(row) => decode_bond(&row)?,
            None => Bond::initial(start, now_ms),
        };
        let after = before.after(start, quality, now_ms);
        sqlx::query(
            "INSERT INTO persona_relationships (tenant, persona, other, affinity, trust, familiarity, interactions, \
             last_interaction_ms, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (tenant, persona, other) DO UPDATE SET affinity = excluded.affinity, \
             trust = excluded.trust, familiarity = excluded.familiarity, interactions = excluded.interactions, \
             last_interaction_ms = excluded.last_interaction_ms, at_ms = excluded.at_ms",
        )
        .bind(tenant.to_owned())
        .bind(persona.to_owned())
        .bind(other.to_owned())
        .bind(after.affinity)
        .bind(after.trust)
        .bind(after.familiarity)
        .bind(i64::try_from(after.interactions).unwrap_or(i64::MAX))
        .bind(after.last_interaction_ms)
        .bind(after.at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(after)
    }
}

const STATE_SELECT: &str = "SELECT tenant, persona, valence, arousal, at_ms, interactions, quality_sum, last_interaction_ms FROM persona_states";
const BOND_SELECT: &str = "SELECT affinity, trust, familiarity, interactions, last_interaction_ms, at_ms FROM persona_relationships";

fn decode_state(row: &AnyRow) -> Result<(String, String, PersonaState), sqlx::Error> {
    let interactions: i64 = row.try_get(5)?;
    let quality_sum: f64 = row.try_get(6)?;
    let state = PersonaState {
        mood: Mood { valence: row.try_get(2)?, arousal: row.try_get(3)?, at_ms: row.try_get(4)? },
        interactions,
        average_quality: if interactions > 0 { quality_sum / interactions as f64 } else { 0.0 },
        last_interaction_ms: Some(row.try_get(7)?),
    };
    Ok((row.try_get(0)?, row.try_get(1)?, state))
}

fn decode_bond(row: &AnyRow) -> Result<Bond, sqlx::Error> {
    let interactions: i64 = row.try_get(3)?;
    Ok(Bond {
        affinity: row.try_get(0)?,
        trust: row.try_get(1)?,
        familiarity: row.try_get(2)?,
        interactions: u64::try_from(interactions).unwrap_or(0),
        last_interaction_ms: row.try_get(4)?,
        at_ms: row.try_get(5)?,
    })
}

fn decayed(state: PersonaState, now_ms: i64) -> PersonaState {
    PersonaState { mood: state.mood.decayed(now_ms), ..state }
}

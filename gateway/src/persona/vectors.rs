//! Memories' vectors for recall by meaning: stored beside each memory as unit-length
//! little-endian `f32`s with the model that made them and their dimension, so that a change of
//! the persona's embedding model is seen row by row and re-embedded ([`MemoryStore::unembedded`]
//! finds what is left, which makes the work resumable from any replica).

use sqlx::Row;

use super::memory::MemoryStore;

/// The largest vector accepted from an embedding model: above every model's size.
pub const MAX_DIMENSION: usize = 8192;

/// A text's vector by a named embedding model.
#[derive(Clone, Debug, PartialEq)]
pub struct Meaning {
    pub model: String,
    /// Unit length.
    pub vector: Vec<f32>,
}

impl Meaning {
    /// A model's vector, checked (1 to [`MAX_DIMENSION`] finite numbers, not all zero) and scaled
    /// to unit length, so that similarity is a dot product.
    pub fn new(model: &str, mut vector: Vec<f32>) -> Result<Meaning, String> {
        if vector.is_empty() || vector.len() > MAX_DIMENSION {
            return Err(format!("a vector of {} numbers (1 to {MAX_DIMENSION} expected)", vector.len()));
        }
        if vector.iter().any(|x| !x.is_finite()) {
            return Err("a vector with a number that is not finite".into());
        }
        let norm = vector.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return Err("a vector of zeros".into());
        }
        for x in &mut vector {
            *x = (f64::from(*x) / norm) as f32;
        }
        Ok(Meaning { model: model.to_owned(), vector })
    }
}

/// Cosine similarity of a unit vector with a stored one (its bytes as [`MemoryStore::set_embedding`]
/// wrote them), read in place; `None` if the bytes do not hold a vector of the same length.
pub fn similarity_to_stored(vector: &[f32], bytes: &[u8]) -> Option<f64> {
    (bytes.len() == vector.len() * 4).then(|| {
        let stored = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        vector.iter().zip(stored).map(|(x, y)| f64::from(*x) * f64::from(y)).sum()
    })
}

fn bytes_of(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A memory waiting for its vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unembedded {
    pub id: String,
    pub tenant: String,
    pub content: String,
}

/// Which memories of a persona to look at: all of them, or one tenant's with one subject.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub persona: &'a str,
    pub subject: Option<(&'a str, &'a str)>,
}

impl MemoryStore {
    /// Stores a memory's vector (unless the memory was deleted meanwhile).
    pub async fn set_embedding(&self, id: &str, meaning: &Meaning) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE persona_memories SET embedding = $1, embedding_model = $2, embedding_dim = $3 WHERE id = $4",
        )
        .bind(bytes_of(&meaning.vector))
        .bind(meaning.model.clone())
        .bind(i64::try_from(meaning.vector.len()).unwrap_or(i64::MAX))
        .bind(id.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Up to `limit` memories in `scope` without a vector by `model` (none yet, or another
    /// model's), newest first: what was just learnt is recalled by meaning soonest.
    pub async fn unembedded(
        &self,
        scope: Scope<'_>,
        model: &str,
        limit: usize,
    ) -> Result<Vec<Unembedded>, sqlx::Error> {
        let sql = format!(
            "SELECT id, tenant, content FROM persona_memories WHERE {UNEMBEDDED} ORDER BY created_at_ms DESC LIMIT {limit}"
        );
        let rows = bind(sqlx::query(&sql), scope, model).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(Unembedded { id: row.try_get(0)?, tenant: row.try_get(1)?, content: row.try_get(2)? })
            })
            .collect()
    }

    /// How many memories of `persona` wait for a vector by `model` (for the admin API).
    pub async fn count_unembedded(&self, persona: &str, model: &str) -> Result<i64, sqlx::Error> {
        let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) FROM persona_memories WHERE {UNEMBEDDED}");
        let scope = Scope { persona, subject: None };
        bind(sqlx::query(&sql), scope, model).fetch_one(&self.pool).await?.try_get(0)
    }
}

/// Current memories of persona `$1` lacking a vector by model `$2` (history is never recalled,
/// so never embedded), of tenant `$3` and subject `$4` unless they are NULL.
const UNEMBEDDED: &str = "persona = $1 AND (embedding_model IS NULL OR embedding_model <> $2) \
    AND superseded_at_ms IS NULL AND (CAST($3 AS TEXT) IS NULL OR (tenant = $3 AND subject = $4))";

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bind<'q>(query: Query<'q>, scope: Scope<'_>, model: &str) -> Query<'q> {
    let (tenant, subject) =
        scope.subject.map_or((None, None), |(t, s)| (Some(t.to_owned()), Some(s.to_owned())));
    query.bind(scope.persona.to_owned()).bind(model.to_owned()).bind(tenant).bind(subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_checked_and_scaled_to_unit_length() {
        let meaning = Meaning::new("m", vec![3.0, 4.0]).unwrap();
        assert_eq!(meaning.vector, [0.6, 0.8]);
        let itself = similarity_to_stored(&meaning.vector, &bytes_of(&meaning.vector)).unwrap();
        assert!((itself - 1.0).abs() < 1e-6);
        assert!(Meaning::new("m", vec![]).is_err());
        assert!(Meaning::new("m", vec![0.0, 0.0]).is_err());
        assert!(Meaning::new("m", vec![1.0, f32::NAN]).is_err());
        assert!(Meaning::new("m", vec![f32::MAX, f32::MAX]).is_ok(), "no overflow: summed in f64");
        assert!(Meaning::new("m", vec![1.0; MAX_DIMENSION + 1]).is_err());
    }

    #[test]
    fn stored_bytes_are_compared_in_place_or_not_at_all() {
        let stored = bytes_of(&[0.25f32, -1.5, 3.0]);
        assert_eq!(similarity_to_stored(&[1.0, 2.0, 1.0], &stored), Some(0.25 - 3.0 + 3.0));
        assert_eq!(similarity_to_stored(&[1.0, 2.0], &stored), None);
        assert_eq!(similarity_to_stored(&[1.0], &[1, 2, 3]), None);
    }
}

//! Recall: a subject's memories ranked for a query, by relevance scaled by importance and by
//! recency of use ([`score`], weighted by the Persona's `spec.memory.recall`).
//!
//! Relevance comes from words and, when the persona has an embedding model, from meaning: the
//! database's full-text search (SQLite FTS5 or PostgreSQL) picks the best candidates by words,
//! and an exact scan of the subject's vectors the best by meaning (cosine similarity); the two
//! are fused by score, not by rank (a memory twice as similar stays ahead after importance and
//! recency, which rank fusion would flatten). The final order is computed here, so it is the
//! same on both databases. Every query is bound to one tenant and subject, and reads only current
//! memories (not those a newer memory of the same slot superseded).

use std::collections::HashMap;

use sqlx::Row;
use switchboard_crds::resources::RecallWeights;

use super::memory::{COLUMN_COUNT, COLUMNS, CURRENT, Memory, MemoryStore, decode, placeholders};
use super::vectors::{Meaning, similarity_to_stored};

/// Candidates fetched by words, and kept by meaning, before ranking.
const CANDIDATES: usize = 100;
const DAY_MS: f64 = 86_400_000.0;

/// What to recall memories for.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    pub text: &'a str,
    /// The text's vector by the persona's embedding model; `None` recalls by words alone.
    pub meaning: Option<&'a Meaning>,
    pub weights: &'a RecallWeights,
}

/// A candidate and how relevant it is by words (against the best) and by meaning.
struct Candidate {
    memory: Memory,
    words: f64,
    meaning: Option<f64>,
}

impl MemoryStore {
    /// The `limit` best memories of `subject` in `tenant`, from the memories of `personas`, for
    /// `query` (all memories rank by importance and recency alone when the query has no words
    /// and no vector).
    pub async fn recall(
        &self,
        tenant: &str,
        subject: &str,
        personas: &[&str],
        query: &Query<'_>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<Memory>, sqlx::Error> {
        if personas.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut candidates: HashMap<String, Candidate> = HashMap::new();
        let words = terms(query.text);
        if !words.is_empty() || query.meaning.is_none() {
            for (memory, words) in self.by_words(tenant, subject, personas, &words).await? {
                candidates.insert(memory.id.clone(), Candidate { memory, words, meaning: None });
            }
        }
        if let Some(meaning) = query.meaning {
            for (memory, similar) in self.by_meaning(tenant, subject, personas, meaning).await? {
                candidates
                    .entry(memory.id.clone())
                    .or_insert(Candidate { memory, words: 0.0, meaning: None })
                    .meaning = Some(similar);
            }
        }
        let share = f64::from(query.weights.meaning_weight.min(100)) / 100.0;
        let mut ranked: Vec<Memory> = candidates
            .into_values()
            .map(|Candidate { mut memory, words, meaning }| {
                // A memory not embedded yet is judged by its words alone.
                let relevance = meaning.map_or(words, |m| share * m.max(0.0) + (1.0 - share) * words);
                memory.score =
                    Some(score(relevance, memory.importance, memory.last_used_at_ms, now_ms, query.weights));
                memory
            })
            .collect();
        ranked.sort_by(|a, b| {
            b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal).then(a.id.cmp(&b.id))
        });
        ranked.truncate(limit);
        Ok(ranked)
    }

    /// The best full-text candidates for `words`, each with its relevance against the best
    /// (1.0 for every memory when there are no words: then importance and recency pick).
    async fn by_words(
        &self,
        tenant: &str,
        subject: &str,
        personas: &[&str],
        words: &[String],
    ) -> Result<Vec<(Memory, f64)>, sqlx::Error> {
        let in_list = placeholders(3, personas.len());
        let search = format!("${}", 3 + personas.len());
        let filter = format!("m.tenant = $1 AND m.subject = $2 AND m.persona IN ({in_list}) AND {CURRENT}");
        let sql = match (words.is_empty(), self.postgres) {
            (true, _) => format!(
                "SELECT {COLUMNS}, 1.0 FROM persona_memories m WHERE {filter} \
                 ORDER BY m.importance DESC, m.last_used_at_ms DESC LIMIT {CANDIDATES}"
            ),
            (false, false) => format!(
                "SELECT {COLUMNS}, -bm25(persona_memories_fts) FROM persona_memories_fts \
                 JOIN persona_memories m ON m.seq = persona_memories_fts.rowid \
                 WHERE persona_memories_fts MATCH {search} AND {filter} \
                 ORDER BY bm25(persona_memories_fts) LIMIT {CANDIDATES}"
            ),
            (false, true) => format!(
                "SELECT {COLUMNS}, CAST(ts_rank(m.search, q) AS DOUBLE PRECISION) AS rank \
                 FROM persona_memories m, to_tsquery('english', {search}) q WHERE m.search @@ q \
                 AND {filter} ORDER BY rank DESC LIMIT {CANDIDATES}"
            ),
        };
        let mut statement = sqlx::query(&sql).bind(tenant.to_owned()).bind(subject.to_owned());
        for persona in personas {
            statement = statement.bind((*persona).to_owned());
        }
        if !words.is_empty() {
            statement = statement.bind(self.search_expression(words));
        }
        let rows = statement.fetch_all(&self.pool).await?;
        let mut found = Vec::with_capacity(rows.len());
        let mut best = 0.0f64;
        for row in &rows {
            let relevance: f64 = row.try_get(COLUMN_COUNT)?;
            best = best.max(relevance);
            found.push((decode(row)?, relevance));
        }
        Ok(found
            .into_iter()
            .map(|(memory, relevance)| (memory, if best > 0.0 { relevance / best } else { 1.0 }))
            .collect())
    }

    /// Each word as the stemmer sees it, and long words by prefix too, which covers inflections
    /// the stemmers miss ("allergies", "allergic"). Quoted for FTS5 so that words like NEAR or
    /// AND are never operators.
    fn search_expression(&self, words: &[String]) -> String {
        let mut search = Vec::new();
        for word in words {
            search.push(if self.postgres { word.clone() } else { format!("\"{word}\"") });
            if let Some(p) = prefix(word) {
                search.push(if self.postgres { format!("{p}:*") } else { format!("\"{p}\"*") });
            }
        }
        search.join(if self.postgres { " | " } else { " OR " })
    }

    /// The memories most similar in meaning to the query: an exact scan of the subject's vectors
    /// made by the query's model (memories of personas with another model are found by words).
    /// The scan reads ids and vectors only; the [`CANDIDATES`] best are then read whole.
    async fn by_meaning(
        &self,
        tenant: &str,
        subject: &str,
        personas: &[&str],
        meaning: &Meaning,
    ) -> Result<Vec<(Memory, f64)>, sqlx::Error> {
        let sql = format!(
            "SELECT m.id, m.embedding FROM persona_memories m WHERE m.tenant = $1 AND m.subject = $2 \
             AND m.embedding_model = $3 AND m.embedding_dim = $4 AND {CURRENT} AND m.persona IN ({})",
            placeholders(5, personas.len())
        );
        let dimension = i64::try_from(meaning.vector.len()).unwrap_or(i64::MAX);
        let mut statement = sqlx::query(&sql)
            .bind(tenant.to_owned())
            .bind(subject.to_owned())
            .bind(meaning.model.clone())
            .bind(dimension);
        for persona in personas {
            statement = statement.bind((*persona).to_owned());
        }
        let mut scored = Vec::new();
        for row in statement.fetch_all(&self.pool).await? {
            let bytes: Vec<u8> = row.try_get(1)?;
            if let Some(similar) = similarity_to_stored(&meaning.vector, &bytes) {
                scored.push((row.try_get::<String, _>(0)?, similar));
            }
        }
        let by_similarity =
            |a: &(String, f64), b: &(String, f64)| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal);
        if scored.len() > CANDIDATES {
            scored.select_nth_unstable_by(CANDIDATES, by_similarity);
            scored.truncate(CANDIDATES);
        }
        if scored.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM persona_memories m WHERE m.id IN ({})",
            placeholders(1, scored.len())
        );
        let statement = scored.iter().fold(sqlx::query(&sql), |query, (id, _)| query.bind(id.clone()));
        let similar: HashMap<String, f64> = scored.into_iter().collect();
        let mut found = Vec::with_capacity(similar.len());
        for row in statement.fetch_all(&self.pool).await? {
            let memory = decode(&row)?;
            let score = similar.get(&memory.id).copied().unwrap_or_default();
            found.push((memory, score));
        }
        Ok(found)
    }
}

/// The ranking: relevance (0..1) scaled by importance and by recency of use, each by its weight.
/// With the default weights (importance 50, recency 40) relevance decides among memories about
/// the topic, while an important, recent memory still beats a trivial, stale one of equal
/// relevance.
pub fn score(
    relevance: f64,
    importance: u8,
    last_used_at_ms: i64,
    now_ms: i64,
    weights: &RecallWeights,
) -> f64 {
    let age_days = (now_ms.saturating_sub(last_used_at_ms) as f64 / DAY_MS).max(0.0);
    let half_life = f64::from(weights.recency_half_life_days.max(1));
    let recency = 0.5f64.powf(age_days / half_life);
    let (by_importance, by_recency) = (
        f64::from(weights.importance_weight.min(100)) / 100.0,
        f64::from(weights.recency_weight.min(100)) / 100.0,
    );
    let importance = f64::from(importance.clamp(1, 10)) / 10.0;
    relevance * (1.0 - by_importance + by_importance * importance) * (1.0 - by_recency + by_recency * recency)
}

/// The search terms of a query: its words minus common English stop words, deduplicated, at
/// most 32 (only letters and digits, so they are safe inside FTS5 and tsquery syntax).
pub fn terms(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in super::memory::words(query) {
        if word.len() > 1 && !STOP_WORDS.contains(&word.as_str()) && !out.contains(&word) {
            out.push(word);
        }
        if out.len() == 32 {
            break;
        }
    }
    out
}

/// The prefix a long word is searched by: it drops the last three letters (at most), which
/// covers English inflections the stemmers miss. Short words are searched whole.
fn prefix(word: &str) -> Option<String> {
    let letters = word.chars().count();
    (letters >= 6).then(|| word.chars().take((letters - 3).max(5)).collect())
}

const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by",
    "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into",
    "is", "it", "its", "just", "me", "my", "of", "on", "or", "our", "so", "that", "the", "their", "them",
    "then", "there", "these", "they", "this", "to", "tell", "us", "was", "we", "were", "what", "when",
    "where", "which", "who", "why", "will", "with", "would", "you", "your", "know", "remember",
];

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn relevance_dominates_and_importance_and_recency_break_ties() {
        let w = RecallWeights::default();
        let now = 1000 * DAY;
        assert!(score(1.0, 3, now, now, &w) > score(0.4, 10, now, now, &w));
        assert!(score(0.8, 9, now, now, &w) > score(0.8, 2, now, now, &w));
        assert!(score(0.8, 5, now, now, &w) > score(0.8, 5, now - 90 * DAY, now, &w));
        let half = score(1.0, 5, now - 30 * DAY, now, &w) / score(1.0, 5, now, now, &w);
        assert!((half - 0.8 / 1.0).abs() < 1e-9, "one half-life of recency: {half}");
    }

    #[test]
    fn weights_of_zero_leave_relevance_alone() {
        let w = RecallWeights { importance_weight: 0, recency_weight: 0, ..RecallWeights::default() };
        let now = 1000 * DAY;
        assert_eq!(score(0.7, 1, now - 900 * DAY, now, &w), 0.7);
        assert_eq!(score(0.7, 10, now, now, &w), 0.7);
    }

    #[test]
    fn long_words_are_searched_by_prefix() {
        assert_eq!(prefix("allergies").as_deref(), Some("allerg"));
        assert_eq!(prefix("sailing").as_deref(), Some("saili"));
        assert_eq!(prefix("lives"), None);
    }

    #[test]
    fn terms_drop_stop_words_and_syntax() {
        assert_eq!(terms("What is my favourite \"food\"? (AND) NEAR*"), ["favourite", "food", "near"]);
        assert!(terms("what is it").is_empty());
    }
}

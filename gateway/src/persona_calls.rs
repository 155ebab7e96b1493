//! The gateway's own model calls for personas, each an ordinary exchange billed to the caller
//! whose conversation it serves (rate limits, budgets, ledger row and request log as for any
//! request): memory extraction and conversation summaries by the persona's model (endpoints
//! `memory_extraction` and `memory_summary`), and the vectors of memories and queries by the
//! persona's embedding model (`memory_embedding`), which recall by meaning reads
//! ([`crate::persona::recall`]).
//!
//! All of it is best effort: a failing embedding model leaves recall to words (logged), and
//! nothing here fails a conversation. [`spawn_upkeep`] does, a few at a time, what no request
//! waits for: memories left without a vector (a failure, a new `embeddingModel`) and summaries of
//! conversations gone idle, found from the database's state, so the work resumes wherever it
//! stopped, on any replica.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value};
use switchboard_crds::config::PersonaConfig;
use tokio::task::JoinHandle;

use crate::auth::Authenticated;
use crate::chat_request::ChatRequest;
use crate::db::now_ms;
use crate::embeddings_request::{EmbeddingsRequest, Input};
use crate::error::ApiError;
use crate::exchange::{Endpoint, Exchange, Served, ServedReply};
use crate::payload::Payload;
use crate::persona::memory::{NewMemory, Owner};
use crate::persona::turn::Turn;
use crate::persona::vectors::{Meaning, Scope, Unembedded};
use crate::persona::{model_extraction, summary};
use crate::serving::runtime::Caller;
use crate::state::AppState;

/// Memories embedded in one request.
const BATCH: usize = 32;
/// The most of a recall's query text that is embedded, in bytes.
const MAX_QUERY_BYTES: usize = 2048;
/// How often the upkeep looks for work: at most [`BATCH`] memories to embed and [`IDLE_BATCH`]
/// conversations to summarise per persona per tick, so a change of model re-embeds at a bounded
/// rate.
const UPKEEP_TICK: Duration = Duration::from_secs(2);
const IDLE_BATCH: usize = 8;
/// A persona found with every memory embedded by its model is looked at again only when its
/// model changes, or every this many ticks (two minutes: what a failed call left, on any replica):
/// finding nothing missing scans the persona's memories.
const RECHECK_TICKS: u64 = 60;
/// The key name the upkeep's calls are metered under, in the tenant whose memories they are (no
/// API key can be named so: key names are Kubernetes names).
pub const BACKGROUND_KEY: &str = "switchboard:persona-memory";

/// Runs one of the gateway's own requests for `persona` as `caller`: begun, admitted and
/// forwarded like a client's request, with the persona's model resolved for its owner.
async fn call(
    state: &AppState,
    caller: &Arc<Caller>,
    persona: &PersonaConfig,
    payload: Payload<'_>,
    endpoint: Endpoint,
) -> Result<Served, ApiError> {
    let auth = Authenticated { runtime: state.runtime.load(), caller: caller.clone() };
    let exchange = Exchange::begin(state, auth, payload, endpoint, &HeaderMap::new(), Some(persona), 0)?;
    Arc::new(exchange).serve(state, payload).await
}

/// Asks the persona's model for the memories in the user's message of `turn`.
pub async fn extract(state: &AppState, turn: &Turn) -> Result<Vec<NewMemory>, String> {
    let request = turn.extraction_request();
    let reply = chat(state, &turn.caller, &turn.persona, &request, Endpoint::MemoryExtraction).await?;
    model_extraction::memories_in_reply(&reply)
}

/// After a turn: counts it and, once the persona's `summaries.everyTurns` are reached, has the
/// persona's model summarise the conversation into a memory.
pub async fn summarize_if_due(state: &AppState, turn: &Turn) {
    let (Some(subject), Some(transcript)) = (&turn.subject, &turn.transcript) else { return };
    let persona = &turn.persona;
    let owner = Owner { tenant: &turn.caller.tenant, persona: &persona.name, subject };
    let now = now_ms();
    let every = i64::from(persona.memory.summaries.every_turns);
    match state.personas.conversations.record_turn(owner, transcript, now).await {
        Ok(turns) if every > 0 && turns >= every => {
            summarize(state, &turn.caller, persona, subject, transcript, now).await;
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(persona = %persona.name, %error, "cannot count the conversation's turn"),
    }
}

/// Has the persona's model summarise `transcript` (its conversation with `subject` up to its turn
/// at `turn_at_ms`) into a memory of kind `summary`, embedded like any other, as `caller`. A
/// failure is logged and the turns are counted as summarised all the same: a model that cannot
/// answer costs one call per `everyTurns` or idle period, never one per tick.
async fn summarize(
    state: &AppState,
    caller: &Arc<Caller>,
    persona: &PersonaConfig,
    subject: &str,
    transcript: &str,
    turn_at_ms: i64,
) {
    let request = summary::request(&persona.model, transcript);
    let found = chat(state, caller, persona, &request, Endpoint::MemorySummary).await;
    let owner = Owner { tenant: &caller.tenant, persona: &persona.name, subject };
    let personas = &state.personas;
    match found.and_then(|reply| summary::summary_in_reply(&reply)) {
        Ok(memory) => match personas.memories.remember(owner, &memory, now_ms()).await {
            Ok(_) => embed_new(state, caller, persona, subject).await,
            Err(error) => {
                tracing::warn!(persona = %persona.name, %error, "cannot store a conversation summary")
            }
        },
        Err(problem) => {
            tracing::warn!(persona = %persona.name, %problem, "conversation summary failed; skipped until the next turns")
        }
    }
    if let Err(error) = personas.conversations.summarized(owner, turn_at_ms).await {
        tracing::warn!(persona = %persona.name, %error, "cannot mark the conversation summarised");
    }
}

/// Runs one of the gateway's own chats and returns its reply.
async fn chat(
    state: &AppState,
    caller: &Arc<Caller>,
    persona: &PersonaConfig,
    request: &ChatRequest,
    endpoint: Endpoint,
) -> Result<Value, String> {
    match call(state, caller, persona, Payload::Chat(request), endpoint)
        .await
        .map_err(|e| e.to_string())?
        .reply
    {
        ServedReply::Complete(body) => body.to_value().map_err(|e| e.to_string()),
        ServedReply::Stream(_) => Err("the model answered with a stream".into()),
    }
}

/// The vectors of `texts` by the persona's embedding model, in their order.
pub async fn embed(
    state: &AppState,
    caller: &Arc<Caller>,
    persona: &PersonaConfig,
    texts: Vec<String>,
) -> Result<Vec<Meaning>, String> {
    let model = persona.memory.embedding_model.as_deref().ok_or("the persona has no embedding model")?;
    let count = texts.len();
    let request = EmbeddingsRequest {
        model: model.to_owned(),
        input: Input::Texts(texts),
        encoding_format: None,
        dimensions: None,
        user: None,
        rest: Map::new(),
    };
    let served = call(state, caller, persona, Payload::Embeddings(&request), Endpoint::MemoryEmbedding);
    match served.await.map_err(|e| e.to_string())?.reply {
        ServedReply::Complete(body) => vectors_in(body.json(), model, count),
        ServedReply::Stream(_) => Err("the embedding model answered with a stream".into()),
    }
}

/// The vector of a recall's query text, if the persona has an embedding model; `None` (recall by
/// words alone, with a warning) if the model fails.
pub async fn query_meaning(
    state: &AppState,
    caller: &Arc<Caller>,
    persona: &PersonaConfig,
    text: &str,
) -> Option<Meaning> {
    persona.memory.embedding_model.as_ref()?;
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    // Embedding models read a few hundred tokens at most: a long message's end (where its
    // question usually is) stands for it, and the call stays cheap.
    let text = summary::latest(text, MAX_QUERY_BYTES);
    match embed(state, caller, persona, vec![text.to_owned()]).await {
        Ok(mut meanings) => meanings.pop(),
        Err(problem) => {
            tracing::warn!(persona = %persona.name, %problem, "memory embedding failed; recalling by words");
            None
        }
    }
}

/// Embeds the memories `caller`'s tenant keeps about `subject` that have no vector by the
/// persona's model yet (what was just remembered), as `caller`. Best effort: what fails is
/// left to [`spawn_upkeep`].
pub async fn embed_new(state: &AppState, caller: &Arc<Caller>, persona: &PersonaConfig, subject: &str) {
    let Some(model) = &persona.memory.embedding_model else { return };
    let scope = Scope { persona: &persona.name, subject: Some((&caller.tenant, subject)) };
    match state.personas.memories.unembedded(scope, model, BATCH).await {
        Ok(waiting) if !waiting.is_empty() => {
            if let Err(problem) = embed_and_store(state, caller, persona, waiting).await {
                tracing::warn!(persona = %persona.name, %problem, "cannot embed new memories; will retry");
            }
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(persona = %persona.name, %error, "cannot read memories to embed"),
    }
}

async fn embed_and_store(
    state: &AppState,
    caller: &Arc<Caller>,
    persona: &PersonaConfig,
    memories: Vec<Unembedded>,
) -> Result<(), String> {
    let (ids, texts): (Vec<String>, Vec<String>) = memories.into_iter().map(|m| (m.id, m.content)).unzip();
    let meanings = embed(state, caller, persona, texts).await?;
    for (id, meaning) in ids.iter().zip(&meanings) {
        state.personas.memories.set_embedding(id, meaning).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Starts the upkeep: every tick, for each persona with an embedding model (and memories left
/// without a vector at the last look), up to [`BATCH`] of its memories without a vector by that
/// model are embedded, and for each persona with
/// `summaries.idleMinutes`, up to [`IDLE_BATCH`] conversations idle that long are summarised;
/// each billed to the tenant whose memories they are, under [`BACKGROUND_KEY`].
pub fn spawn_upkeep(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Persona -> the model all its memories had a vector by at the last look.
        let mut embedded: HashMap<String, String> = HashMap::new();
        for ticks in 1u64.. {
            tick.tick().await;
            let runtime = state.runtime.load();
            for persona in runtime.config.personas.values() {
                if let Some(model) = &persona.memory.embedding_model {
                    let known = embedded.get(&persona.name) == Some(model);
                    if !known || ticks % RECHECK_TICKS == 0 {
                        match reembed(&state, persona, model).await {
                            true => embedded.insert(persona.name.clone(), model.clone()),
                            false => embedded.remove(&persona.name),
                        };
                    }
                }
                if persona.memory.summaries.idle_minutes > 0 {
                    summarize_idle(&state, persona).await;
                }
            }
        }
    })
}

/// The caller the upkeep's calls for `tenant`'s memories are billed to.
fn background_caller(tenant: String) -> Arc<Caller> {
    Arc::new(Caller { tenant, key_id: BACKGROUND_KEY.into(), subject: None, claims: None })
}

async fn summarize_idle(state: &AppState, persona: &PersonaConfig) {
    let idle = i64::from(persona.memory.summaries.idle_minutes) * 60_000;
    let idle_before = now_ms().saturating_sub(idle);
    match state.personas.conversations.idle(&persona.name, idle_before, IDLE_BATCH).await {
        Ok(pending) => {
            for conversation in pending {
                let caller = background_caller(conversation.tenant);
                let (subject, at) = (&conversation.subject, conversation.last_turn_at_ms);
                summarize(state, &caller, persona, subject, &conversation.transcript, at).await;
            }
        }
        Err(error) => tracing::warn!(persona = %persona.name, %error, "cannot read idle conversations"),
    }
}

/// Embeds up to [`BATCH`] memories of `persona` without a vector by `model`; true if none was
/// missing.
async fn reembed(state: &AppState, persona: &PersonaConfig, model: &str) -> bool {
    let scope = Scope { persona: &persona.name, subject: None };
    let mut waiting = match state.personas.memories.unembedded(scope, model, BATCH).await {
        Ok(waiting) => waiting,
        Err(error) => {
            tracing::warn!(persona = %persona.name, %error, "cannot read memories to embed");
            return false;
        }
    };
    waiting.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    for theirs in waiting.chunk_by(|a, b| a.tenant == b.tenant) {
        let caller = background_caller(theirs[0].tenant.clone());
        if let Err(problem) = embed_and_store(state, &caller, persona, theirs.to_vec()).await {
            tracing::warn!(persona = %persona.name, tenant = %caller.tenant, %problem, "cannot embed memories; will retry");
        }
    }
    waiting.is_empty()
}

/// The vectors of an OpenAI embeddings list answering `count` inputs, in input order: one per
/// input (by `index`), all of one dimension, each checked and of unit length.
fn vectors_in(json: &[u8], model: &str, count: usize) -> Result<Vec<Meaning>, String> {
    #[derive(Deserialize)]
    struct List {
        data: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        index: usize,
        embedding: Vec<f32>,
    }
    let list: List = serde_json::from_slice(json)
        .map_err(|e| format!("the embedding model's answer is not a list of vectors: {e}"))?;
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; count];
    for item in list.data {
        let slot =
            vectors.get_mut(item.index).ok_or("the embedding model answered an input it was not sent")?;
        if slot.replace(item.embedding).is_some() {
            return Err("the embedding model answered one input twice".into());
        }
    }
    let vectors: Vec<Vec<f32>> =
        vectors.into_iter().collect::<Option<_>>().ok_or("the embedding model left an input unanswered")?;
    if vectors.windows(2).any(|pair| pair[0].len() != pair[1].len()) {
        return Err("the embedding model answered vectors of different lengths".into());
    }
    vectors.into_iter().map(|vector| Meaning::new(model, vector)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_come_back_in_input_order_and_checked() {
        let json = br#"{"data":[{"index":1,"embedding":[0,2]},{"index":0,"embedding":[3,4]}]}"#;
        let meanings = vectors_in(json, "m", 2).unwrap();
        assert_eq!(meanings[0].vector, [0.6, 0.8]);
        assert_eq!(meanings[1].vector, [0.0, 1.0]);
        for (json, problem) in [
            (&br#"{"data":[{"index":0,"embedding":[1]}]}"#[..], "unanswered"),
            (br#"{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[1]}]}"#, "twice"),
            (br#"{"data":[{"index":0,"embedding":[1]},{"index":2,"embedding":[1]}]}"#, "not sent"),
            (br#"{"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[1,2]}]}"#, "different lengths"),
            (br#"{"data":[{"index":0,"embedding":[0]},{"index":1,"embedding":[1]}]}"#, "zeros"),
            (br#"{"data":"no"}"#, "not a list"),
        ] {
            let error = vectors_in(json, "m", 2).unwrap_err();
            assert!(error.contains(problem), "{error}");
        }
    }
}

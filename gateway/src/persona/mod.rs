//! Personas: named assistants that remember the people they talk with, have a mood, and relate
//! to the other personas of their tenant.
//!
//! [`turn`] is the request path (rewrite the request, learn afterwards); [`memory`] (with
//! [`recall`] and [`vectors`]), [`feelings`] and [`conversations`] are the stores, in the
//! ledger's database so that every replica shares them; [`extract`], [`model_extraction`],
//! [`summary`], [`sharing`], [`prompt`] and [`affect`] are pure rules and math. The gateway's own
//! model calls for personas are in [`crate::persona_calls`].

pub mod affect;
pub mod conversations;
pub mod extract;
pub mod feelings;
pub mod memory;
pub mod model_extraction;
pub mod prompt;
pub mod recall;
pub mod sharing;
pub mod summary;
pub mod turn;
pub mod vectors;

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::db::Database;
use crate::serving::live::LiveRuntime;
use conversations::ConversationStore;
use feelings::FeelingStore;
use memory::MemoryStore;

/// The persona stores; cheap to clone.
#[derive(Clone, Debug)]
pub struct Personas {
    pub memories: MemoryStore,
    pub feelings: FeelingStore,
    pub conversations: ConversationStore,
}

impl Personas {
    /// Stores in the gateway's database (its migrations created the tables).
    pub fn new(db: &Database) -> Personas {
        let postgres = db.is_postgres();
        Personas {
            memories: MemoryStore::new(db.pool().clone(), postgres),
            feelings: FeelingStore::new(db.pool().clone(), postgres),
            conversations: ConversationStore::new(db.pool().clone()),
        }
    }
}

impl Personas {
    /// Forgets `subject` in `tenant`: its memories (all, one persona's, or the memory `id`) and,
    /// unless one memory is named, the conversations kept for its summaries. Returns how many
    /// memories were deleted.
    pub async fn forget(
        &self,
        tenant: &str,
        subject: &str,
        persona: Option<&str>,
        id: Option<&str>,
    ) -> Result<u64, sqlx::Error> {
        let deleted = self.memories.forget(tenant, subject, persona, id).await?;
        if id.is_none() {
            self.conversations.forget(tenant, subject, persona).await?;
        }
        Ok(deleted)
    }
}

/// How often every replica sweeps expired memories (idempotent deletes, so replicas need not agree).
const EXPIRY_SWEEP: Duration = Duration::from_secs(3600);

impl Personas {
    /// Starts the hourly sweep that applies each persona's `retentionDays` to all its memories
    /// and the conversations kept for its summaries.
    pub fn spawn_expiry(&self, live: LiveRuntime) -> JoinHandle<()> {
        let (memories, conversations) = (self.memories.clone(), self.conversations.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EXPIRY_SWEEP);
            loop {
                tick.tick().await;
                let runtime = live.load();
                for persona in runtime.config.personas.values().filter(|p| p.memory.retention_days > 0) {
                    let days = persona.memory.retention_days;
                    match memories.expire(&persona.name, days, crate::db::now_ms()).await {
                        Ok(0) => {}
                        Ok(deleted) => tracing::info!(persona = %persona.name, deleted, "expired memories"),
                        Err(error) => {
                            tracing::warn!(persona = %persona.name, %error, "cannot expire memories")
                        }
                    }
                    if let Err(error) = conversations.expire(&persona.name, days, crate::db::now_ms()).await {
                        tracing::warn!(persona = %persona.name, %error, "cannot expire conversations");
                    }
                }
            }
        })
    }
}

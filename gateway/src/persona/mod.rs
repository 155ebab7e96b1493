//! Personas: named assistants that remember the people they talk with, have a mood, and relate
//! to the other personas of their tenant.
//!
//! [`turn`] is the request path (rewrite the request, learn afterwards); [`memory`] and
//! [`feelings`] are the stores, in the ledger's database so that every replica shares them;
//! [`extract`], [`model_extraction`], [`sharing`], [`prompt`] and [`affect`] are pure rules and
//! math.

pub mod affect;
pub mod extract;
pub mod feelings;
pub mod memory;
pub mod model_extraction;
pub mod prompt;
pub mod sharing;
pub mod turn;

use crate::ledger::Ledger;
use feelings::FeelingStore;
use memory::MemoryStore;

/// The persona stores; cheap to clone.
#[derive(Clone, Debug)]
pub struct Personas {
    pub memories: MemoryStore,
    pub feelings: FeelingStore,
}

impl Personas {
    /// Stores in the ledger's database (its migrations created the tables).
    pub fn new(ledger: &Ledger) -> Personas {
        let postgres = ledger.is_postgres();
        Personas {
            memories: MemoryStore::new(ledger.pool().clone(), postgres),
            feelings: FeelingStore::new(ledger.pool().clone(), postgres),
        }
    }
}

//! Switchboard's data plane: an OpenAI- and Anthropic-compatible LLM gateway with tenant keys,
//! routing with fallback, and a cost ledger.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod breaker;
pub mod budget;
pub mod cache;
pub mod db;
pub mod drain;
pub mod error;
pub mod exchange;
pub mod identity;
pub mod ledger;
pub mod listener;
pub mod mcp;
pub mod metrics;
pub mod persona;
pub mod pipeline;
pub mod providers;
pub mod queue;
pub mod ratelimit;
pub mod recent_attempts;
pub mod record;
pub mod redact;
pub mod request_log;
pub mod server;
pub mod serving;
pub mod settings;
pub mod state;
pub mod stats;
pub mod status;
pub mod telemetry;
pub mod translate;
pub mod usage;
pub mod validate;

//! Switchboard's custom resources, the gateway configuration model and `render()`.
//!
//! The operator and the standalone gateway both call [`render::render`] on the same typed
//! resources, so the two modes can never disagree about what a set of manifests means.

pub mod config;
pub mod decimal;
pub mod manifest;
pub mod policy;
pub mod provider_keys;
pub mod reference;
pub mod render;
pub mod resources;
pub mod secret_store;
pub mod shards;
pub mod watch;

pub use config::GatewayConfig;
pub use render::{RenderError, Resources, SecretStore, render};
pub use resources::{Budget, Persona, ProviderRoute, Tenant};

/// The API group of every Switchboard resource.
pub const GROUP: &str = "switchboard.dev";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";

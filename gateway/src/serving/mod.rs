//! The serving config: where it comes from ([`folder`]: a folder of manifests, standalone;
//! [`cluster`]: the operator's ConfigMaps), what is built from it ([`runtime`]), and the live
//! swap every handler reads through ([`live`]). A config that does not load never replaces the
//! one being served; [`ConfigError`] says why, naming the file, ConfigMap or resource.

pub mod cluster;
pub mod conditions;
pub mod edits;
pub mod folder;
pub mod identities;
pub mod live;
pub mod policies;
pub mod published;
pub mod runtime;

use std::path::PathBuf;

use switchboard_crds::manifest::ManifestError;
use switchboard_crds::render::RenderErrors;
use switchboard_crds::shards::JoinError;

use self::runtime::RuntimeError;

/// Why a config was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config dir {}: {source}", dir.display())]
    ReadDir { dir: PathBuf, source: std::io::Error },
    #[error("{}", list(.0))]
    Manifests(Vec<ManifestError>),
    #[error(transparent)]
    Render(#[from] RenderErrors),
    #[error("ConfigMap {namespace}/{name} not found (is the operator running?)")]
    NoHead { namespace: String, name: String },
    #[error("ConfigMap {namespace}/{name} is not a config head: {reason}")]
    InvalidHead { namespace: String, name: String, reason: String },
    #[error(
        "ConfigMap {namespace}/{name}, a shard the head names, is missing (deleted by hand? the operator restores it)"
    )]
    NoShard { namespace: String, name: String },
    #[error(transparent)]
    Shards(#[from] JoinError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("the config build failed: {0}")]
    Build(String),
}

fn list(errors: &[ManifestError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

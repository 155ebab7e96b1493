//! Standalone config source: a folder of manifests, rendered and hot-reloaded.
//!
//! A change builds a new [`Runtime`] aside and swaps it in atomically; if anything fails
//! (YAML, schema, CEL, render, provider keys) the last good runtime keeps serving, the reason
//! is logged and `switchboard_config_synchronized` drops to 0. The folder, not each file, is
//! watched, because Kubernetes updates mounted ConfigMaps and Secrets by swapping a symlink.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use switchboard_crds::manifest::ManifestError;
use switchboard_crds::{Resources, SecretStore, manifest, render};
use tokio::sync::mpsc;

use super::ConfigError;
use super::live::LiveRuntime;
use super::runtime::Runtime;

/// Quiet time after the last change before reloading, so editors' multi-step saves land once.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// Reads, validates and renders every manifest in `dir` into a runtime.
/// `previous` is the runtime being served, whose unchanged backends the new one keeps.
pub fn load_dir(dir: &Path, previous: &Runtime) -> Result<Runtime, ConfigError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| ConfigError::ReadDir { dir: dir.to_owned(), source })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| is_manifest(path))
        .collect();
    files.sort();
    let mut resources = Resources::default();
    let mut secrets = SecretStore::default();
    let mut problems = Vec::new();
    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                if let Err(errors) = manifest::load_yaml(&text, &name, &mut resources, &mut secrets) {
                    problems.extend(errors);
                }
            }
            Err(e) => problems.push(ManifestError { origin: name, message: e.to_string() }),
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError::Manifests(problems));
    }
    let config = render(&resources, &secrets)?;
    Ok(Runtime::build(config, &secrets, previous)?)
}

/// YAML and JSON files, skipping hidden ones (editor swap files, Kubernetes' `..data`).
fn is_manifest(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    !name.starts_with('.') && matches!(extension, "yaml" | "yml" | "json") && path.is_file()
}

/// Watches `dir` and swaps in each good new config until the returned watcher is dropped.
pub fn watch(dir: PathBuf, live: LiveRuntime) -> notify::Result<notify::RecommendedWatcher> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Debounce: wait for a quiet period, dropping the events that arrive meanwhile.
            while tokio::time::timeout(DEBOUNCE, rx.recv()).await.is_ok_and(|e| e.is_some()) {}
            let dir = dir.clone();
            live.rebuild(move |previous| load_dir(&dir, &previous)).await;
        }
    });
    Ok(watcher)
}

//! The shipped samples load, validate and render.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

use std::fs;

use switchboard_crds::{Resources, SecretStore, manifest, render};

fn load_dir(dir: &str) -> (Resources, SecretStore) {
    let mut resources = Resources::default();
    let mut secrets = SecretStore::default();
    let mut files: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for path in files {
        let text = fs::read_to_string(&path).unwrap();
        manifest::load_yaml(&text, &path.display().to_string(), &mut resources, &mut secrets).unwrap();
    }
    (resources, secrets)
}

#[test]
fn samples_render_into_a_config_without_secret_values() {
    let (resources, secrets) = load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/samples"));
    let config = render(&resources, &secrets).unwrap();
    assert_eq!(config.tenants["demo"].api_keys.len(), 1);
    assert_eq!(
        config.tenants["demo"].api_keys[0].sha256,
        switchboard_crds::render::hash_key(b"sk-switchboard-demo")
    );
    assert!(config.find_model("demo-echo").is_some());
    assert_eq!(
        config.find_model("local-model").unwrap().0.backends[0].base_url.as_deref(),
        Some("http://127.0.0.1:18080/v1")
    );
    assert_eq!(config.personas["ada"].tenant, "demo");
    assert_eq!(config.budgets.len(), 1);
    let json = serde_json::to_string(&config).unwrap();
    assert!(!json.contains("sk-switchboard-demo"), "a secret value leaked into the config");
    assert_eq!(config.version.len(), 64);
}

//! The CRDs checked into the Helm chart are exactly what the Rust types generate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

use switchboard_crds::resources::crd_yaml;

#[test]
fn chart_crds_match_the_rust_types() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/switchboard/templates/crds");
    for (file, generated) in crd_yaml() {
        let path = format!("{dir}/{file}");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == generated, "{path} is stale: run `make crds` and commit the result");
    }
}

#[test]
fn resource_reference_matches_the_rust_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/resources.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(committed == switchboard_crds::reference::markdown(), "{path} is stale: run `make crds`");
}

#[test]
fn generated_schema_carries_validation_and_printer_columns() {
    let budgets = crd_yaml().into_iter().find(|(file, _)| file == "budgets.yaml").unwrap().1;
    for expected in [
        "x-kubernetes-validations",
        "scope.persona is required when kind is Persona",
        "limitUsd must be greater than zero",
        "jsonPath: .status.spentUsd",
        "helm.sh/resource-policy: keep",
        "- Daily",
        "subresources:",
    ] {
        assert!(budgets.contains(expected), "budgets CRD lacks {expected:?}");
    }
}

//! Fuzz target (bolero) for the manifest loader: any text, and texts built like manifests
//! (documents separated by `---`, apiVersion, kind, metadata and spec with nested maps, lists and
//! YAML's anchors, tags and block scalars), load or fail with errors saying where, the same way
//! every time. Under `cargo test` it runs for a second after its corpus (the shipped samples and
//! a few more); `cargo bolero test fuzz_load_yaml_fails_cleanly_and_repeatably` fuzzes it with
//! libFuzzer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

use std::fmt;
use std::ops::Bound;
use std::time::Duration;

use bolero::{Driver, TypeGenerator};
use switchboard_crds::manifest::{self, DEFAULT_NAMESPACE, ManifestError};
use switchboard_crds::{Resources, SecretStore};

/// Real manifests (the target's corpus), which generated ones start from.
const SAMPLES: [&str; 8] = [
    include_str!("__fuzz__/load_yaml_fails_cleanly_and_repeatably/corpus/sample-budget-demo.yaml"),
    include_str!("__fuzz__/load_yaml_fails_cleanly_and_repeatably/corpus/sample-persona-ada.yaml"),
    include_str!("__fuzz__/load_yaml_fails_cleanly_and_repeatably/corpus/sample-route-demo-echo.yaml"),
    include_str!("__fuzz__/load_yaml_fails_cleanly_and_repeatably/corpus/sample-route-local-model.yaml"),
    include_str!("__fuzz__/load_yaml_fails_cleanly_and_repeatably/corpus/sample-secrets.yaml"),
    include_str!("__fuzz__/load_yaml_fails_cleanly_and_repeatably/corpus/sample-tenant-demo.yaml"),
    include_str!("__fuzz__/load_yaml_fails_cleanly_and_repeatably/corpus/all-kinds-in-one-file.yaml"),
    include_str!("__fuzz__/load_yaml_fails_cleanly_and_repeatably/corpus/invalid-documents.yaml"),
];

#[rustfmt::skip]
const API_VERSIONS: [&str; 5] = [
    "switchboard.dev/v1alpha1", "v1", "switchboard.dev/v1", "", "apps/v1",
];

#[rustfmt::skip]
const KINDS: [&str; 9] = [
    "Tenant", "Persona", "ProviderRoute", "Budget", "Secret", "List", "Namespace", "Gadget", "",
];

/// Field names of the four kinds, of Secrets and of Lists.
#[rustfmt::skip]
const KEYS: [&str; 48] = [
    "apiVersion", "kind", "metadata", "name", "namespace", "spec", "displayName", "namespaces", "apiKeys",
    "secretRef", "key", "rateLimits", "requestsPerMinute", "tokensPerMinute", "maxConcurrent", "priority",
    "scope", "tenant", "persona", "apiKey", "limitUsd", "period", "enforcement", "warnAtPercent",
    "failureMode", "models", "upstreamModel", "pricing", "inputPerMillion", "outputPerMillion", "backends",
    "provider", "baseUrl", "weight", "requestTimeoutSeconds", "retries", "attempts", "systemPrompt", "model",
    "memory", "extraction", "retentionDays", "sharing", "items", "data", "stringData", "type", "labels",
];

/// Values the kinds take, and others of the same types.
#[rustfmt::skip]
const SCALARS: [&str; 36] = [
    "demo", "m", "mock", "openai", "anthropic", "Tenant", "Persona", "ProviderRoute", "Budget", "Monthly",
    "Daily", "Hourly", "Hard", "Soft", "Closed", "Rules", "Private", "\"100\"", "'0.15'", "\"-5\"", "-5", "0",
    "1", "5000", "4294967296", "true", "null", "\"\"", "http://127.0.0.1:18080/v1", "c2stdGVzdA==",
    "switchboard.dev/v1alpha1", "[]", "{}", "[a, b]", "{name: x, key: y}", "2026-01-01",
];

/// YAML's odder forms: anchors and aliases, tags, escapes, special numbers.
#[rustfmt::skip]
const ODD_SCALARS: [&str; 10] = [
    "&a x", "*a", "!!binary aGk=", "!!str 5", "'it''s'", "\"\\u0000\\ud800\"", ".inf", "0x1F", "1e400", "~",
];

fn below<D: Driver>(d: &mut D, n: usize) -> Option<usize> {
    d.gen_usize(Bound::Included(&0), Bound::Excluded(&n.max(1)))
}

fn one_in<D: Driver>(d: &mut D, n: usize) -> Option<bool> {
    Some(below(d, n)? == 0)
}

fn pick<'a, D: Driver>(d: &mut D, items: &[&'a str]) -> Option<&'a str> {
    items.get(below(d, items.len())?).copied()
}

/// Up to a dozen characters: of YAML's syntax and letters most often, else any.
fn random_text<D: Driver>(d: &mut D) -> Option<String> {
    const YAML: &[u8] = b": -\n\t{}[],&*!|>'\"#%@`?~=.0aZ";
    let any = one_in(d, 3)?;
    (0..below(d, 12)?)
        .map(|_| {
            if any {
                d.gen_char(Bound::Unbounded, Bound::Unbounded)
            } else {
                Some(char::from(YAML[below(d, YAML.len())?]))
            }
        })
        .collect()
}

/// A value for a key at column `indent`.
fn scalar<D: Driver>(d: &mut D, indent: usize) -> Option<String> {
    Some(match below(d, 24)? {
        0 => random_text(d)?,
        1 => pick(d, &ODD_SCALARS)?.to_owned(),
        2 => format!(
            "{}\n{}  a block\n{}  scalar",
            pick(d, &["|", ">-", "|+"])?,
            " ".repeat(indent),
            " ".repeat(indent)
        ),
        _ => pick(d, &SCALARS)?.to_owned(),
    })
}

fn key<D: Driver>(d: &mut D) -> Option<String> {
    if one_in(d, 25)? { random_text(d) } else { pick(d, &KEYS).map(str::to_owned) }
}

/// A block map at `indent`, each value a scalar, a nested map, a list or a flow map.
fn map<D: Driver>(d: &mut D, indent: usize, depth: usize, out: &mut String) -> Option<()> {
    let pad = " ".repeat(indent);
    for _ in 0..=below(d, 4)? {
        let name = key(d)?;
        match below(d, if depth < 4 { 5 } else { 2 })? {
            0 | 1 => out.push_str(&format!("{pad}{name}: {}\n", scalar(d, indent)?)),
            2 => {
                out.push_str(&format!("{pad}{name}:\n"));
                map(d, indent + 2, depth + 1, out)?;
            }
            3 => {
                out.push_str(&format!("{pad}{name}:\n"));
                for _ in 0..=below(d, 3)? {
                    if one_in(d, 2)? {
                        out.push_str(&format!("{pad}  - {}\n", scalar(d, indent + 2)?));
                    } else {
                        // A map as a list item: its first key on the dash's line.
                        let mut item = String::new();
                        map(d, indent + 4, depth + 1, &mut item)?;
                        out.push_str(&format!("{pad}  - {}", &item[indent + 4..]));
                    }
                }
            }
            _ => out.push_str(&format!(
                "{pad}{name}: {{{}: {}, {}: {}}}\n",
                key(d)?,
                pick(d, &SCALARS)?,
                key(d)?,
                pick(d, &SCALARS)?
            )),
        }
    }
    Some(())
}

/// One document: a sample with a few lines changed, or one built like a manifest.
fn document<D: Driver>(d: &mut D) -> Option<String> {
    if one_in(d, 3)? {
        let mut lines: Vec<String> = pick(d, &SAMPLES)?.lines().map(str::to_owned).collect();
        for _ in 0..below(d, 4)? {
            let at = below(d, lines.len())?;
            match below(d, 5)? {
                0 if at < lines.len() => {
                    lines.remove(at);
                }
                1 if at < lines.len() => lines.insert(at, lines[at].clone()),
                2 if at < lines.len() => {
                    let line = &mut lines[at];
                    let cut = line.find(": ").map_or(line.len(), |colon| colon + 2);
                    line.truncate(cut);
                    line.push_str(&scalar(d, 2)?);
                }
                3 if at < lines.len() => lines[at].insert_str(0, pick(d, &[" ", "  ", "\t", "- ", "? "])?),
                _ => {
                    let mut inserted = String::new();
                    let indent = 2 * below(d, 3)?;
                    map(d, indent, 2, &mut inserted)?;
                    lines.insert(at, inserted.trim_end().to_owned());
                }
            }
        }
        return Some(lines.join("\n") + "\n");
    }
    let mut doc = format!(
        "apiVersion: {}\nkind: {}\nmetadata:\n  name: {}\n",
        pick(d, &API_VERSIONS)?,
        pick(d, &KINDS)?,
        scalar(d, 2)?
    );
    if one_in(d, 4)? {
        doc.push_str(&format!("  namespace: {}\n", scalar(d, 2)?));
    }
    let body = pick(d, &["spec", "items", "data", "stringData", "spec"])?;
    doc.push_str(&format!("{body}:\n"));
    map(d, 2, 0, &mut doc)?;
    Some(doc)
}

/// A manifest file's text: a corpus file as it is, else generated documents or any text.
struct Yaml(String);

impl fmt::Debug for Yaml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl TypeGenerator for Yaml {
    fn generate<D: Driver>(d: &mut D) -> Option<Yaml> {
        let raw = d.gen_from_bytes(
            || (0, Some(0)),
            |bytes| Some((bytes.len(), std::str::from_utf8(bytes).ok()?.to_owned())),
        );
        if let Some(text) = raw.filter(|text| !text.is_empty()) {
            return Some(Yaml(text));
        }
        if one_in(d, 8)? {
            return (0..below(d, 8)?).map(|_| random_text(d)).collect::<Option<String>>().map(Yaml);
        }
        let mut text = String::new();
        for i in 0..=below(d, 2)? {
            if i > 0 || one_in(d, 4)? {
                text.push_str(pick(d, &["---\n", "--- \n", "---\n\n", "...\n---\n", "--- # next\n"])?);
            }
            text.push_str(&document(d)?);
        }
        Some(Yaml(text))
    }
}

fn load(text: &str) -> (Result<(), Vec<ManifestError>>, Resources, SecretStore) {
    let mut resources = Resources::default();
    let mut secrets = SecretStore::default();
    let loaded = manifest::load_yaml(text, "fuzz.yaml", &mut resources, &mut secrets);
    (loaded, resources, secrets)
}

#[test]
fn fuzz_load_yaml_fails_cleanly_and_repeatably() {
    bolero::check!().with_type::<Yaml>().with_test_time(Duration::from_secs(2)).for_each(|yaml| {
        let (loaded, resources, secrets) = load(&yaml.0);
        if let Err(errors) = &loaded {
            assert!(!errors.is_empty(), "a failure without an error");
            for error in errors {
                assert!(error.origin.starts_with("fuzz.yaml#"), "the error says where: {error}");
            }
        }
        let names = resources
            .tenants
            .iter()
            .map(|t| &t.metadata)
            .chain(resources.personas.iter().map(|p| &p.metadata));
        let names = names
            .chain(resources.routes.iter().map(|r| &r.metadata))
            .chain(resources.budgets.iter().map(|b| &b.metadata));
        for metadata in names {
            assert!(
                metadata.name.as_deref().is_some_and(|name| !name.is_empty()),
                "an object without a name"
            );
            assert!(
                metadata.namespace.is_some(),
                "an object without a namespace (default: {DEFAULT_NAMESPACE})"
            );
        }
        let (again, resources_again, secrets_again) = load(&yaml.0);
        assert_eq!(again, loaded, "the same text loads the same way");
        assert_eq!(format!("{resources_again:?}"), format!("{resources:?}"));
        assert_eq!(secrets_again, secrets);
    });
}

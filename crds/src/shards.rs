//! How a [`GatewayConfig`] travels through the Kubernetes API: split into content-addressed
//! shards small enough for a ConfigMap (1 MiB), and a head listing them.
//!
//! One ConfigMap cannot hold a large platform's config (10,000 Tenants are several MiB), and
//! rewriting all of it for every new key would be slow. So each resource's entry goes to a shard
//! chosen by a hash of its kind and name: a change rewrites one shard, and a shard's name is the
//! hash of its content, so an unchanged shard is never written again. The head names the shards
//! of one version; writing it is the commit point. A reader swaps only when every shard the head
//! names is present and matches its hash, so it never serves half a config.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{BudgetConfig, GatewayConfig, PersonaConfig, RouteConfig, TenantConfig};

/// Shards aim at this size: small enough that one change rewrites little.
pub const TARGET_SHARD_BYTES: usize = 256 * 1024;
/// No shard exceeds this, well under the API server's 1 MiB per object (metadata included).
pub const MAX_SHARD_BYTES: usize = 900 * 1024;
/// The ConfigMap key of the head and of each shard.
pub const HEAD_KEY: &str = "head.json";
pub const SHARD_KEY: &str = "shard.json";
/// Label on the head and every shard, valued with the head's name: what readers watch.
pub const CONFIG_LABEL: &str = "switchboard.dev/config";
/// Hex digits of a shard id (64 bits of SHA-256).
const ID_LEN: usize = 16;

/// The commit record: the config version and its shards, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub version: String,
    pub shards: Vec<String>,
}

/// One shard: its id (the hash of `json`) and its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub id: String,
    pub json: String,
}

/// One resource's entry in the config, as the operator names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    pub kind: &'static str,
    pub name: String,
}

/// A config ready to publish.
#[derive(Debug)]
pub struct Sharded {
    pub head: Head,
    pub shards: Vec<Shard>,
    /// A fingerprint of each entry's content, to tell which entries a publication carried.
    pub entries: BTreeMap<Entry, u64>,
}

/// Entries too large for any shard: they cannot be published and must be set aside.
#[derive(Debug, PartialEq, Eq)]
pub struct Oversized(pub Vec<(Entry, usize)>);

/// A shard's content; the config is the union of its shards.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    #[serde(default)]
    pub tenants: BTreeMap<String, Arc<TenantConfig>>,
    #[serde(default)]
    pub routes: BTreeMap<String, Arc<RouteConfig>>,
    #[serde(default)]
    pub personas: BTreeMap<String, Arc<PersonaConfig>>,
    #[serde(default)]
    pub budgets: Vec<Arc<BudgetConfig>>,
}

/// The four sections of a shard, in the order they are written.
const SECTIONS: [&str; 4] = ["tenants", "routes", "personas", "budgets"];

/// One serialized entry on its way into a shard.
struct Item {
    section: usize,
    entry: Entry,
    /// The name as a JSON string, the entry's key in its section.
    key: String,
    json: String,
    bucket_hash: u64,
}

/// Splits `config` into shards of at most [`MAX_SHARD_BYTES`]. Deterministic: equal configs give
/// equal shards on every operator instance.
pub fn split(config: &GatewayConfig) -> Result<Sharded, Oversized> {
    let mut items = Vec::new();
    let mut entries = BTreeMap::new();
    let mut push = |section: usize, kind: &'static str, key: &str, json: String| {
        let entry = Entry { kind, name: key.to_owned() };
        entries.insert(entry.clone(), fingerprint(&json));
        let bucket_hash = u64_of(&Sha256::digest(format!("{kind}/{key}")));
        let key = serde_json::to_string(key).unwrap_or_default();
        items.push(Item { section, entry, key, json, bucket_hash });
    };
    for (name, tenant) in &config.tenants {
        push(0, "Tenant", name, to_json(tenant));
    }
    for (name, route) in &config.routes {
        push(1, "ProviderRoute", name, to_json(route));
    }
    for (name, persona) in &config.personas {
        push(2, "Persona", name, to_json(persona));
    }
    for budget in &config.budgets {
        push(3, "Budget", &budget.name, to_json(budget));
    }
    // Room for the section names, braces and separators around the largest entry.
    let limit = MAX_SHARD_BYTES - 64;
    let oversized: Vec<(Entry, usize)> =
        items.iter().filter(|i| i.size() > limit).map(|i| (i.entry.clone(), i.size())).collect();
    if !oversized.is_empty() {
        return Err(Oversized(oversized));
    }
    let total: usize = items.iter().map(Item::size).sum();
    let mut count = total.div_ceil(TARGET_SHARD_BYTES).max(1).next_power_of_two();
    let buckets = loop {
        let mut buckets: Vec<Vec<&Item>> = vec![Vec::new(); count];
        for item in &items {
            buckets[bucket(item.bucket_hash, count)].push(item);
        }
        let fits = buckets.iter().all(|b| b.iter().map(|i| i.size()).sum::<usize>() <= limit);
        // Each doubling halves every bucket's expected load; entries are under the limit, so
        // this ends long before the hash runs out of bits.
        if fits || count >= 1 << 20 {
            break buckets;
        }
        count *= 2;
    };
    let shards: Vec<Shard> = buckets.iter().filter(|b| !b.is_empty()).map(|b| shard(b)).collect();
    let head =
        Head { version: config.version.clone(), shards: shards.iter().map(|s| s.id.clone()).collect() };
    Ok(Sharded { head, shards, entries })
}

impl Item {
    fn size(&self) -> usize {
        self.key.len() + self.json.len() + 2
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn u64_of(digest: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

/// Top bits of the hash: when the count doubles, each bucket splits in two.
fn bucket(hash: u64, count: usize) -> usize {
    let bits = count.trailing_zeros();
    if bits == 0 { 0 } else { (hash >> (64 - bits)) as usize }
}

/// A cheap in-process fingerprint of an entry's JSON (never persisted).
fn fingerprint(json: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut hasher);
    hasher.finish()
}

/// Writes one shard's JSON from entries already serialized (each is serialized once).
fn shard(items: &[&Item]) -> Shard {
    let mut json = String::with_capacity(items.iter().map(|i| i.size()).sum::<usize>() + 64);
    json.push('{');
    let mut first_section = true;
    for (section, name) in SECTIONS.iter().enumerate() {
        let mut in_section: Vec<&&Item> = items.iter().filter(|i| i.section == section).collect();
        if in_section.is_empty() {
            continue;
        }
        in_section.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.json.cmp(&b.json)));
        if !first_section {
            json.push(',');
        }
        first_section = false;
        let budgets = section == 3;
        let _ = write!(json, "\"{name}\":{}", if budgets { '[' } else { '{' });
        for (index, item) in in_section.iter().enumerate() {
            if index > 0 {
                json.push(',');
            }
            if !budgets {
                json.push_str(&item.key);
                json.push(':');
            }
            json.push_str(&item.json);
        }
        json.push(if budgets { ']' } else { '}' });
    }
    json.push('}');
    Shard { id: shard_id(&json), json }
}

/// The ConfigMap name of shard `id` of the config whose head is `head_name`.
pub fn shard_name(head_name: &str, id: &str) -> String {
    format!("{head_name}-{id}")
}

/// The id of a shard's content.
pub fn shard_id(json: &str) -> String {
    let digest = hex::encode(Sha256::digest(json.as_bytes()));
    digest[..ID_LEN].to_owned()
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoinError {
    #[error("shard {0} is not there yet")]
    Missing(String),
    #[error("shard {0} does not match its id")]
    Corrupt(String),
    #[error("shard {id} does not parse: {message}")]
    Invalid { id: String, message: String },
    #[error("{kind} {name:?} is in more than one shard")]
    Duplicate { kind: &'static str, name: String },
}

/// Parses one shard's JSON after checking it against its id.
pub fn parse_shard(id: &str, json: &str) -> Result<Part, JoinError> {
    if shard_id(json) != id {
        return Err(JoinError::Corrupt(id.to_owned()));
    }
    serde_json::from_str(json).map_err(|e| JoinError::Invalid { id: id.to_owned(), message: e.to_string() })
}

/// Assembles the config `head` names from its parsed shards, which `take` hands over by id.
pub fn join(head: &Head, mut take: impl FnMut(&str) -> Option<Part>) -> Result<GatewayConfig, JoinError> {
    let mut config = GatewayConfig { version: head.version.clone(), ..GatewayConfig::default() };
    for id in &head.shards {
        let part = take(id).ok_or_else(|| JoinError::Missing(id.clone()))?;
        merge(&mut config.tenants, part.tenants, "Tenant")?;
        merge(&mut config.routes, part.routes, "ProviderRoute")?;
        merge(&mut config.personas, part.personas, "Persona")?;
        config.budgets.extend(part.budgets);
    }
    sort_budgets(&mut config.budgets);
    Ok(config)
}

fn merge<V>(
    into: &mut BTreeMap<String, V>,
    from: BTreeMap<String, V>,
    kind: &'static str,
) -> Result<(), JoinError> {
    for (name, value) in from {
        if into.contains_key(&name) {
            return Err(JoinError::Duplicate { kind, name });
        }
        into.insert(name, value);
    }
    Ok(())
}

/// The canonical order of budgets (by namespace and name, then content), which `render` also
/// produces, so that a joined config equals the rendered one.
pub fn sort_budgets(budgets: &mut [Arc<BudgetConfig>]) {
    budgets.sort_by_cached_key(|b| (b.namespace.clone(), b.name.clone(), to_json(b)));
}

#[cfg(test)]
mod tests;

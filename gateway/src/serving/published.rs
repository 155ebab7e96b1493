//! The operator's published config as the gateway holds it: the head and the shards, each shard
//! parsed once, when its ConfigMap arrives.
//!
//! Shards are content-addressed and immutable, so a parsed shard stays valid for as long as its
//! id is published, and a new version costs only its new shards. Shards arrive before the head
//! that names them (the head is the operator's commit point), so by the time a head arrives its
//! shards are usually parsed already, and assembling the config shares their entries (`Arc`)
//! instead of parsing or copying them. The raw JSON is not kept: one parsed copy, shared with the
//! served config, is all the memory a shard costs.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::runtime::watcher;
use switchboard_crds::GatewayConfig;
use switchboard_crds::shards::{self, HEAD_KEY, Head, JoinError, Part, SHARD_KEY};

use super::ConfigError;

/// A shard as parsed: its content, or why it cannot be used.
type Parsed = Arc<Result<Part, JoinError>>;

/// The head and shards one watch has seen.
#[derive(Default)]
struct Seen {
    /// The head, or why it does not parse.
    head: Option<Result<Head, String>>,
    shards: HashMap<String, Parsed>,
}

/// The published config of the head ConfigMap `name` in `namespace`, kept current by watch events.
pub struct Published {
    namespace: String,
    name: String,
    seen: Seen,
    /// What a relist found so far; it replaces `seen` when the relist completes.
    relisting: Option<Seen>,
    listed: bool,
}

/// One head with the shards it names: what a build needs, detached from the watch.
pub struct Snapshot {
    namespace: String,
    name: String,
    head: Head,
    shards: Vec<(String, Option<Parsed>)>,
}

impl Published {
    pub fn new(namespace: &str, name: &str) -> Published {
        Published {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            seen: Seen::default(),
            relisting: None,
            listed: false,
        }
    }

    /// Takes one watch event in. A relist replaces everything at its end, so ConfigMaps deleted
    /// while the watch was down are forgotten; shards already parsed are not parsed again.
    pub fn apply(&mut self, event: watcher::Event<ConfigMap>) {
        match event {
            watcher::Event::Init => self.relisting = Some(Seen::default()),
            watcher::Event::InitApply(config_map) => {
                let item = self.item(&config_map);
                self.relisting.get_or_insert_with(Seen::default).insert(item);
            }
            watcher::Event::InitDone => {
                if let Some(relisted) = self.relisting.take() {
                    self.seen = relisted;
                }
                self.listed = true;
            }
            watcher::Event::Apply(config_map) => {
                let item = self.item(&config_map);
                self.seen.insert(item);
            }
            watcher::Event::Delete(config_map) => match self.item_name(&config_map.name_any()) {
                Some(ItemName::Head) => self.seen.head = None,
                Some(ItemName::Shard(id)) => {
                    self.seen.shards.remove(id);
                }
                None => {}
            },
        }
    }

    /// Whether a first full list has been seen.
    pub fn is_listed(&self) -> bool {
        self.listed
    }

    /// The head's version, if a head that parses is published.
    pub fn version(&self) -> Option<&str> {
        match &self.seen.head {
            Some(Ok(head)) => Some(&head.version),
            _ => None,
        }
    }

    /// The current head and its shards, or why there is no head to build from.
    pub fn snapshot(&self) -> Result<Snapshot, ConfigError> {
        let (namespace, name) = (self.namespace.clone(), self.name.clone());
        let head = match &self.seen.head {
            None => return Err(ConfigError::NoHead { namespace, name }),
            Some(Err(reason)) => {
                return Err(ConfigError::InvalidHead { namespace, name, reason: reason.clone() });
            }
            Some(Ok(head)) => head.clone(),
        };
        let shards = head.shards.iter().map(|id| (id.clone(), self.seen.shards.get(id).cloned())).collect();
        Ok(Snapshot { namespace, name, head, shards })
    }

    /// What `config_map` is, parsed; a shard already parsed under its id is not parsed again.
    fn item(&self, config_map: &ConfigMap) -> Option<Item> {
        let data = |key: &str| config_map.data.as_ref().and_then(|data| data.get(key));
        match self.item_name(&config_map.name_any())? {
            ItemName::Head => {
                let head = data(HEAD_KEY).ok_or_else(|| format!("no key {HEAD_KEY}"));
                Some(Item::Head(head.and_then(|json| serde_json::from_str(json).map_err(|e| e.to_string()))))
            }
            ItemName::Shard(id) => {
                let known = [Some(&self.seen), self.relisting.as_ref()]
                    .into_iter()
                    .flatten()
                    .find_map(|seen| seen.shards.get(id).filter(|parsed| parsed.is_ok()));
                let parsed = known.cloned().unwrap_or_else(|| {
                    Arc::new(match data(SHARD_KEY) {
                        Some(json) => shards::parse_shard(id, json),
                        None => Err(JoinError::Invalid {
                            id: id.to_owned(),
                            message: format!("no key {SHARD_KEY}"),
                        }),
                    })
                });
                Some(Item::Shard(id.to_owned(), parsed))
            }
        }
    }

    /// Whether the ConfigMap `name` is this config's head or one of its shards (and which).
    fn item_name<'a>(&self, name: &'a str) -> Option<ItemName<'a>> {
        if name == self.name {
            return Some(ItemName::Head);
        }
        name.strip_prefix(self.name.as_str())?.strip_prefix('-').map(ItemName::Shard)
    }
}

enum ItemName<'a> {
    Head,
    Shard(&'a str),
}

/// One published ConfigMap, parsed.
enum Item {
    Head(Result<Head, String>),
    Shard(String, Parsed),
}

impl Seen {
    fn insert(&mut self, item: Option<Item>) {
        match item {
            Some(Item::Head(head)) => self.head = Some(head),
            Some(Item::Shard(id, parsed)) => {
                self.shards.insert(id, parsed);
            }
            None => {}
        }
    }
}

impl Snapshot {
    pub fn version(&self) -> &str {
        &self.head.version
    }

    /// The config the head names, if every shard it names is present and intact.
    pub fn join(&self) -> Result<GatewayConfig, ConfigError> {
        let mut parts = HashMap::with_capacity(self.shards.len());
        for (id, parsed) in &self.shards {
            let parsed = parsed.as_ref().ok_or_else(|| ConfigError::NoShard {
                namespace: self.namespace.clone(),
                name: shards::shard_name(&self.name, id),
            })?;
            let part = parsed.as_ref().as_ref().map_err(|error| ConfigError::Shards(error.clone()))?;
            parts.insert(id.as_str(), part);
        }
        Ok(shards::join(&self.head, |id| parts.remove(id).cloned())?)
    }
}

#[cfg(test)]
mod tests;

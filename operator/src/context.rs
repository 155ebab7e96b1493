//! What every reconcile step shares: the client, the watched stores, and what was published.

use std::collections::BTreeMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Client;
use kube::core::DeserializeGuard;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use switchboard_crds::resources::{Budget, Persona, ProviderRoute, Tenant};
use switchboard_crds::shards::Entry;

use crate::isolate::Reported;
use crate::last_good::LastGoodPolicies;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::traces::Traces;

/// The field manager of everything the operator writes.
pub const MANAGER: &str = "switchboard-operator";

/// The watched objects, kept current by reflectors. The four kinds are guarded so that an object
/// that does not decode is kept (as metadata and error) instead of failing its whole watch.
/// Secrets are not: the API server validates core types strictly, and an Event about a Secret
/// that failed to decode could quote its value. The operator's own ConfigMaps and NetworkPolicies
/// are watched so that only what differs is written.
#[derive(Clone)]
pub struct Stores {
    pub tenants: Store<DeserializeGuard<Tenant>>,
    pub personas: Store<DeserializeGuard<Persona>>,
    pub routes: Store<DeserializeGuard<ProviderRoute>>,
    pub budgets: Store<DeserializeGuard<Budget>>,
    pub secrets: Store<Secret>,
    pub config_maps: Store<ConfigMap>,
    pub policies: Store<NetworkPolicy>,
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    /// A span per reconcile, when tracing is on.
    pub traces: Traces,
    pub settings: Settings,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub stores: Stores,
    /// Undecodable objects already reported; locked only briefly, never across an await.
    pub reported: Mutex<Reported>,
    /// The fingerprint of every entry of the last config known to be published (empty at start:
    /// the first reconcile publishes or finds it published).
    pub published: Mutex<BTreeMap<Entry, u64>>,
    /// The policy of each resource that last compiled; locked only while rendering.
    pub last_good_policies: Mutex<LastGoodPolicies>,
}

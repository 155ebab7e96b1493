//! In-cluster: usage written back to the resources' status by one gateway replica.
//!
//! Replicas elect a holder of the Lease `switchboard-gateway-status`; only it writes, every
//! `--status-interval-seconds`, and only what changed: Budget `spentUsd`, `remainingUsd`,
//! `periodStart` and the `Exhausted` and `ThresholdReached` conditions (with a Warning Event when
//! either turns true); Tenant `requests`, `tokens` and `spendUsd` for the current calendar month
//! (UTC); ProviderRoute `healthyBackends` as this replica's circuit breakers see them; Persona
//! `memoryCount`, `interactions`, `lastInteraction` and `mood` (rounded, so that a mood drifting
//! back to neutral is not rewritten on every tick). Totals come
//! from the ledger, so with several replicas the ledger must be shared (PostgreSQL). The operator
//! owns the other conditions; the list is keyed by type.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube_lease_manager::LeaseManagerBuilder;
use serde_json::{Value, json};
use switchboard_crds::config::BudgetConfig;
use switchboard_crds::decimal::NanoUsd;
use switchboard_crds::resources::{Budget, BudgetPeriod, MoodStatus, Persona, ProviderRoute, Tenant};
use tokio::task::JoinHandle;

use crate::budget::period_start;
use crate::ledger::{Ledger, Scope};
use crate::persona::Personas;
use crate::persona::feelings::PersonaState;
use crate::serving::live::LiveRuntime;

const MANAGER: &str = "switchboard-gateway";

/// Starts the Lease and the writer loop; the task runs until aborted.
pub async fn spawn(
    client: Client,
    namespace: String,
    identity: String,
    live: LiveRuntime,
    ledger: Ledger,
    interval: Duration,
) -> Result<JoinHandle<()>, kube_lease_manager::LeaseManagerError> {
    let lease = LeaseManagerBuilder::new(client.clone(), "switchboard-gateway-status")
        .with_namespace(&namespace)
        .with_identity(&identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await?;
    Ok(tokio::spawn(async move {
        let (leader, _lease_task) = lease.watch().await;
        let reporter = Reporter { controller: MANAGER.into(), instance: Some(identity) };
        let recorder = Recorder::new(client.clone(), reporter);
        let personas = Personas::new(ledger.database());
        let mut writer = Writer {
            client,
            namespace,
            live,
            ledger,
            personas,
            recorder,
            written: HashMap::new(),
            budgets: HashMap::new(),
        };
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            if *leader.borrow() {
                writer.write_all().await;
            }
        }
    }))
}

struct Writer {
    client: Client,
    namespace: String,
    live: LiveRuntime,
    ledger: Ledger,
    personas: Personas,
    recorder: Recorder,
    /// A fingerprint of the last status written per object, so unchanged ones are not patched
    /// again. Fingerprints, not the statuses: at 10,000 Tenants those would hold megabytes.
    written: HashMap<(&'static str, String), u64>,
    /// The last status written per Budget: its conditions' transitions are computed from it.
    budgets: HashMap<String, Value>,
}

impl Writer {
    async fn write_all(&mut self) {
        // The runtime, not a copy of its config: at 10,000 Tenants a copy is megabytes per tick.
        let runtime = self.live.load();
        let config = &runtime.config;
        let now = Timestamp::now();
        // A Tenant's default budget has no Budget object to write to.
        for budget in config.budgets.iter().filter(|b| !b.is_tenant_default()) {
            match self.budget_status(budget, now).await {
                Ok(status) => {
                    self.announce(budget, self.budgets.get(&budget.name), &status).await;
                    if self.patch::<Budget>("Budget", &budget.name, &status).await {
                        self.budgets.insert(budget.name.clone(), status);
                    }
                }
                Err(error) => tracing::warn!(%error, budget = %budget.name, "cannot total the ledger"),
            }
        }
        // This replica's view of its breakers: each replica ejects on what it sees.
        for route in runtime.routes() {
            let healthy = route.backends.iter().filter(|b| b.breaker.is_closed()).count();
            let status = json!({"healthyBackends": healthy});
            self.patch::<ProviderRoute>("ProviderRoute", &route.config.name, &status).await;
        }
        let month = period_start(BudgetPeriod::Monthly, now);
        for tenant in config.tenants.keys() {
            let scope = Scope { tenant, persona: None, api_key: None };
            match self.ledger.totals(&scope, month.as_millisecond()).await {
                Ok(totals) => {
                    let status = json!({
                        "requests": totals.requests, "tokens": totals.tokens,
                        "spendUsd": NanoUsd(totals.cost_nanos).to_string(),
                    });
                    self.patch::<Tenant>("Tenant", tenant, &status).await;
                }
                Err(error) => tracing::warn!(%error, %tenant, "cannot total the ledger"),
            }
        }
        self.write_personas(config, now).await;
    }

    /// Persona status from the memory and mood stores.
    async fn write_personas(&mut self, config: &switchboard_crds::config::GatewayConfig, now: Timestamp) {
        let now_ms = now.as_millisecond();
        let (counts, states) =
            match (self.personas.memories.counts().await, self.personas.feelings.states(now_ms).await) {
                (Ok(counts), Ok(states)) => (counts, states),
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(%error, "cannot read persona memories and moods");
                    return;
                }
            };
        let counts: HashMap<String, i64> = counts.into_iter().collect();
        for persona in config.personas.values() {
            let state =
                states.iter().find(|(t, p, _)| *t == persona.tenant && *p == persona.name).map(|s| s.2);
            let status = persona_status(counts.get(&persona.name).copied().unwrap_or(0), state);
            self.patch::<Persona>("Persona", &persona.name, &status).await;
        }
    }

    async fn budget_status(
        &self,
        budget: &BudgetConfig,
        now: Timestamp,
    ) -> Result<Value, crate::ledger::LedgerError> {
        let start = period_start(budget.period, now);
        let scope = Scope {
            tenant: &budget.tenant,
            persona: budget.persona.as_deref(),
            api_key: budget.api_key.as_deref(),
        };
        let spent = NanoUsd(self.ledger.totals(&scope, start.as_millisecond()).await?.cost_nanos);
        let remaining = NanoUsd((budget.limit.0 - spent.0).max(0));
        let exhausted = spent >= budget.limit;
        let threshold =
            i128::from(spent.0) * 100 >= i128::from(budget.limit.0) * i128::from(budget.warn_at_percent);
        let previous = self.budgets.get(&budget.name);
        let spent_text = format!("spent {spent} of {} USD this period", budget.limit);
        let conditions = [
            condition(previous, "Exhausted", exhausted, ("LimitReached", "WithinLimit"), &spent_text, now),
            condition(
                previous,
                "ThresholdReached",
                threshold,
                ("AboveThreshold", "BelowThreshold"),
                &format!("{spent_text} (warning at {}%)", budget.warn_at_percent),
                now,
            ),
        ];
        Ok(json!({
            "spentUsd": spent.to_string(),
            "remainingUsd": remaining.to_string(),
            "periodStart": start.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "conditions": conditions,
        }))
    }

    /// Publishes a Warning Event for each budget condition that just turned true.
    async fn announce(&self, budget: &BudgetConfig, before: Option<&Value>, after: &Value) {
        for (kind, reason) in
            [("ThresholdReached", "BudgetThresholdReached"), ("Exhausted", "BudgetExhausted")]
        {
            let is_true = |status: Option<&Value>| condition_status(status, kind) == Some("True");
            if !is_true(Some(after)) || is_true(before) {
                continue;
            }
            let note = after["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == kind))
                .and_then(|c| c["message"].as_str())
                .map(str::to_owned);
            let event = Event {
                type_: EventType::Warning,
                reason: reason.into(),
                note,
                action: "Spend".into(),
                secondary: None,
            };
            let reference = ObjectReference {
                api_version: Some(Budget::api_version(&()).into_owned()),
                kind: Some("Budget".into()),
                name: Some(budget.name.clone()),
                namespace: Some(self.namespace.clone()),
                ..ObjectReference::default()
            };
            if let Err(error) = self.recorder.publish(&event, &reference).await {
                tracing::warn!(%error, budget = %budget.name, "cannot publish budget event");
            }
        }
    }

    /// Server-side applies `status` unless it equals the last one written. True when the object
    /// holds `status` now.
    async fn patch<K>(&mut self, kind: &'static str, name: &str, status: &Value) -> bool
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let key = (kind, name.to_owned());
        let fingerprint = fingerprint(status);
        if self.written.get(&key) == Some(&fingerprint) {
            return true;
        }
        let body = json!({"apiVersion": K::api_version(&()), "kind": kind, "status": status});
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        match api.patch_status(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body)).await {
            Ok(_) => {
                self.written.insert(key, fingerprint);
                true
            }
            // Deleted since the config was published.
            Err(kube::Error::Api(e)) if e.is_not_found() => false,
            Err(error) => {
                tracing::warn!(%error, kind, name, "cannot write status");
                false
            }
        }
    }
}

/// A fingerprint of a status's JSON (in memory only; a collision would skip one write).
fn fingerprint(status: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    status.to_string().hash(&mut hasher);
    hasher.finish()
}

fn persona_status(memories: i64, state: Option<PersonaState>) -> Value {
    let mut status = json!({"memoryCount": memories});
    if let Some(state) = state {
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let mood = MoodStatus {
            valence: round(state.mood.valence),
            arousal: round(state.mood.arousal),
            description: state.mood.describe().to_owned(),
        };
        status["interactions"] = json!(state.interactions);
        status["mood"] = json!(mood);
        if let Some(ms) = state.last_interaction_ms.and_then(|ms| Timestamp::from_millisecond(ms).ok()) {
            status["lastInteraction"] = json!(ms.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
    }
    status
}

/// A condition that keeps its `lastTransitionTime` while its status is unchanged.
fn condition(
    previous: Option<&Value>,
    kind: &str,
    is_true: bool,
    (true_reason, false_reason): (&str, &str),
    message: &str,
    now: Timestamp,
) -> Value {
    let status = if is_true { "True" } else { "False" };
    let unchanged = condition_status(previous, kind) == Some(status);
    let transition = previous
        .and_then(|p| p["conditions"].as_array())
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .map(|c| c["lastTransitionTime"].clone())
        .filter(|_| unchanged)
        .unwrap_or_else(|| Value::String(now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
    json!({
        "type": kind,
        "status": status,
        "reason": if is_true { true_reason } else { false_reason },
        "message": message,
        "lastTransitionTime": transition,
    })
}

fn condition_status<'a>(status: Option<&'a Value>, kind: &str) -> Option<&'a str> {
    status?["conditions"].as_array()?.iter().find(|c| c["type"] == kind)?["status"].as_str()
}

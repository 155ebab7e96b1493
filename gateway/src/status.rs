//! In-cluster: usage written back to the resources' status by one gateway replica.
//!
//! Replicas elect a holder of the Lease `switchboard-gateway-status`; only it writes, every
//! `--status-interval-seconds`, and only what changed: Budget `spentUsd`, `remainingUsd`,
//! `periodStart` and the `Exhausted` condition; Tenant `requests`, `tokens` and `spendUsd` for the
//! current calendar month (UTC). Totals come from the ledger, so with several replicas the ledger
//! must be shared (PostgreSQL). The operator owns the other conditions; the list is keyed by type.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube_lease_manager::LeaseManagerBuilder;
use serde_json::{Value, json};
use switchboard_crds::config::BudgetConfig;
use switchboard_crds::decimal::NanoUsd;
use switchboard_crds::resources::{Budget, BudgetPeriod, Tenant};
use tokio::task::JoinHandle;

use crate::budget::period_start;
use crate::ledger::{Ledger, Scope};
use crate::live::LiveRuntime;

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
        let mut writer = Writer { client, namespace, live, ledger, written: HashMap::new() };
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
    /// The last status written per object, so unchanged ones are not patched again.
    written: HashMap<(&'static str, String), Value>,
}

impl Writer {
    async fn write_all(&mut self) {
        let config = self.live.load().config.clone();
        let now = Timestamp::now();
        for budget in &config.budgets {
            match self.budget_status(budget, now).await {
                Ok(status) => self.patch::<Budget>("Budget", &budget.name, status).await,
                Err(error) => tracing::warn!(%error, budget = %budget.name, "cannot total the ledger"),
            }
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
                    self.patch::<Tenant>("Tenant", tenant, status).await;
                }
                Err(error) => tracing::warn!(%error, %tenant, "cannot total the ledger"),
            }
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
        let previous = self.written.get(&("Budget", budget.name.clone()));
        let was_exhausted = previous.and_then(|s| s.pointer("/conditions/0/status")).and_then(Value::as_str);
        let now_text = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let status_text = if exhausted { "True" } else { "False" };
        let transition =
            match (was_exhausted, previous.and_then(|s| s.pointer("/conditions/0/lastTransitionTime"))) {
                (Some(was), Some(time)) if was == status_text => time.clone(),
                _ => Value::String(now_text),
            };
        Ok(json!({
            "spentUsd": spent.to_string(),
            "remainingUsd": remaining.to_string(),
            "periodStart": start.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "conditions": [{
                "type": "Exhausted",
                "status": status_text,
                "reason": if exhausted { "LimitReached" } else { "WithinLimit" },
                "message": format!("spent {spent} of {} USD this period", budget.limit),
                "lastTransitionTime": transition,
            }],
        }))
    }

    /// Server-side applies `status` unless it equals the last one written.
    async fn patch<K>(&mut self, kind: &'static str, name: &str, status: Value)
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let key = (kind, name.to_owned());
        if self.written.get(&key) == Some(&status) {
            return;
        }
        let body = json!({"apiVersion": K::api_version(&()), "kind": kind, "status": status});
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        match api.patch_status(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body)).await {
            Ok(_) => {
                self.written.insert(key, status);
            }
            // Tenants' default budgets have no Budget object of their own.
            Err(kube::Error::Api(e)) if e.is_not_found() => {}
            Err(error) => tracing::warn!(%error, kind, name, "cannot write status"),
        }
    }
}

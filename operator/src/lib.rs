//! Switchboard's operator: reconciles Tenants, Personas, ProviderRoutes and Budgets into the
//! gateway's ConfigMap and NetworkPolicies, and reports conditions and Events on each resource.

pub mod build;
pub mod conditions;
pub mod context;
pub mod controller;
pub mod enforce;
pub mod finalizers;
pub mod isolate;
pub mod last_good;
pub mod metrics;
pub mod policies;
pub mod publish;
pub mod reconciler;
pub mod settings;
pub mod status;
pub mod traces;

//! The config's Rego policies, compiled once per config: each tenant's and each route's, to
//! regorus's register VM (two to three times faster than its interpreter on bench/policy.rego:
//! 6.9 against 15 us an evaluation), or for the interpreter when the VM's compiler cannot take one.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::vm::RegoVM;
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{CompiledPolicy, Value};
use switchboard_crds::config::GatewayConfig;
use switchboard_crds::policy::{self, ENTRYPOINT, EVALUATION_LIMIT};

/// VM instructions an evaluation may run (the VM's default, 25,000, is tight for real policies).
const MAX_INSTRUCTIONS: usize = 1_000_000;

/// A compiled policy and whose it is, for messages.
#[derive(Clone)]
pub struct Compiled {
    pub owner: String,
    policy: CompiledPolicy,
    program: Option<Arc<Program>>,
}

impl Compiled {
    fn new(owner: String, rego: &str) -> Result<Compiled, String> {
        let policy = policy::compile(rego).map_err(|e| format!("{owner}: {e}"))?;
        let program = Compiler::compile_from_policy(&policy, &[ENTRYPOINT])
            .map_err(|error| tracing::info!(%owner, %error, "a policy runs in the interpreter: the VM cannot compile it"))
            .ok();
        Ok(Compiled { owner, policy, program })
    }

    /// The policy's decision on `input`: the package `switchboard` as an object of its rules.
    pub fn decide(&self, input: Value) -> Result<Value, String> {
        let Some(program) = &self.program else {
            return self.policy.eval_with_input(input).map_err(|e| e.to_string());
        };
        let mut vm = RegoVM::new();
        vm.load_program(program.clone());
        vm.set_max_instructions(MAX_INSTRUCTIONS);
        if let Some(check_interval) = NonZeroU32::new(64) {
            vm.set_execution_timer_config(Some(ExecutionTimerConfig {
                limit: EVALUATION_LIMIT,
                check_interval,
            }));
        }
        vm.set_input(input);
        vm.execute().map_err(|e| e.to_string())
    }
}

#[derive(Clone, Default)]
pub struct Policies {
    tenants: HashMap<String, Compiled>,
    routes: HashMap<String, Compiled>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("tenants", &self.tenants.len())
            .field("routes", &self.routes.len())
            .finish()
    }
}

impl Policies {
    /// Compiles every policy of `config`; the first that does not compile is the error (the
    /// config's render already compiled them, so only a hand-edited ConfigMap gets here).
    pub fn build(config: &GatewayConfig) -> Result<Policies, String> {
        let mut policies = Policies::default();
        for tenant in config.tenants.values() {
            if let Some(rego) = &tenant.policy {
                let compiled = Compiled::new(format!("Tenant {}", tenant.name), rego)?;
                policies.tenants.insert(tenant.name.clone(), compiled);
            }
        }
        for route in config.routes.values() {
            if let Some(rego) = &route.policy {
                let compiled = Compiled::new(format!("ProviderRoute {}", route.name), rego)?;
                policies.routes.insert(route.name.clone(), compiled);
            }
        }
        Ok(policies)
    }

    /// The policies a request of `tenant` to `route` must pass, the tenant's first.
    pub fn applying(&self, tenant: &str, route: Option<&str>) -> impl Iterator<Item = &Compiled> {
        self.tenants.get(tenant).into_iter().chain(route.and_then(|r| self.routes.get(r)))
    }

    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty() && self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The VM and the interpreter decide alike, and the VM takes the policies the project ships.
    #[test]
    fn the_vm_decides_as_the_interpreter_does() {
        let rego = include_str!("../../../bench/policy.rego");
        let compiled = Compiled::new("Tenant bench".into(), rego).unwrap_or_else(|e| panic!("{e}"));
        assert!(compiled.program.is_some(), "bench/policy.rego runs in the interpreter");
        for input in [
            serde_json::json!({"key": "k", "max_tokens": 40000, "estimated_input_tokens": 5, "identity": {"kind": "api_key"}}),
            serde_json::json!({"key": "k", "max_tokens": null, "estimated_input_tokens": 200000, "identity": {"kind": "service_account"}}),
        ] {
            let input = Value::from(input);
            let by_vm = compiled.decide(input.clone()).unwrap_or_else(|e| panic!("{e}"));
            let by_interpreter = compiled.policy.eval_with_input(input).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(by_vm, by_interpreter);
            assert!(by_vm["deny"].as_set().is_ok_and(|reasons| !reasons.is_empty()), "{by_vm}");
        }
    }
}

//! Rego policies on Tenants and ProviderRoutes (`spec.policy.rego`), compiled here: the operator
//! and the standalone loader compile them while rendering (a policy that does not compile makes
//! its resource not Ready with the compiler's message, and the last good config keeps serving),
//! and the gateway compiles them for evaluation.
//!
//! A policy is a Rego module in package `switchboard` that may define, from `input` (the
//! caller, tenant, model, route, persona, endpoint and token estimates; docs/security.md):
//! - `deny`: a set of reasons; any reason refuses the request (403 `policy_denied`);
//! - `models`: the models allowed, a set or array of names;
//! - `max_tokens`: a cap on the reply's tokens (the request's own limit is lowered to it, or set).
//!
//! The gateway evaluates one entry point, the package as a whole ([`ENTRYPOINT`]), so a request
//! costs one evaluation per policy; rules a policy leaves undefined are absent from it.

use std::num::NonZeroU32;
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{CompiledPolicy, Engine};

/// The package a policy must declare.
const PACKAGE: &str = "data.switchboard";
/// The rule the gateway evaluates, in a module of its own next to the policy.
pub const ENTRYPOINT: &str = "data.switchboard_gateway.decision";
/// The whole package: its rules that are defined, by name. A third cheaper to evaluate than
/// gathering the three rules with `object.get` (9.3 against 12.7 us for bench/policy.rego).
const ENTRYPOINT_MODULE: &str = "package switchboard_gateway\n\ndecision := data.switchboard\n";
/// The longest policy accepted (the CRD says the same).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// An evaluation that runs longer is stopped, and the request refused.
pub const EVALUATION_LIMIT: Duration = Duration::from_millis(50);

/// Compiles `rego` with the gateway's entry point, or says why it does not compile.
pub fn compile(rego: &str) -> Result<CompiledPolicy, String> {
    if rego.len() > MAX_POLICY_BYTES {
        return Err(format!("the policy is longer than {MAX_POLICY_BYTES} bytes"));
    }
    let mut engine = Engine::new();
    if let Some(check_interval) = NonZeroU32::new(64) {
        engine.set_execution_timer_config(ExecutionTimerConfig { limit: EVALUATION_LIMIT, check_interval });
    }
    engine.add_policy("policy.rego".into(), rego.into()).map_err(|e| e.to_string())?;
    let packages = engine.get_packages().map_err(|e| e.to_string())?;
    if !packages.iter().any(|package| package == PACKAGE) {
        return Err(format!(
            "the policy must be in package `switchboard` (it declares {})",
            packages.join(", ")
        ));
    }
    engine
        .add_policy("switchboard_gateway.rego".into(), ENTRYPOINT_MODULE.into())
        .map_err(|e| e.to_string())?;
    engine.compile_with_entrypoint(&ENTRYPOINT.into()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(rego: &str, input: serde_json::Value) -> serde_json::Value {
        let policy = compile(rego).unwrap_or_else(|e| panic!("{e}"));
        let decision = policy.eval_with_input(regorus::Value::from(input)).unwrap_or_else(|e| panic!("{e}"));
        serde_json::to_value(decision).unwrap_or_default()
    }

    #[test]
    fn a_policy_decides_deny_models_and_max_tokens() {
        let rego = r#"package switchboard
import rego.v1
deny contains "no streaming for batch keys" if { input.stream; input.key == "batch" }
models := {"small", "medium"}
max_tokens := 256 if input.endpoint == "mcp"
"#;
        let decision = decide(rego, serde_json::json!({"stream": true, "key": "batch", "endpoint": "mcp"}));
        assert_eq!(decision["deny"], serde_json::json!(["no streaming for batch keys"]));
        assert_eq!(decision["max_tokens"], 256);
        let mut models: Vec<String> = serde_json::from_value(decision["models"].clone()).unwrap_or_default();
        models.sort();
        assert_eq!(models, ["medium", "small"]);
        let decision = decide(rego, serde_json::json!({"stream": false, "key": "batch", "endpoint": "chat"}));
        assert_eq!(decision["deny"], serde_json::json!([]));
        assert_eq!(decision.get("max_tokens"), None);
    }

    #[test]
    fn an_empty_policy_allows() {
        let decision = decide("package switchboard\n", serde_json::json!({}));
        assert_eq!(decision, serde_json::json!({}));
    }

    #[test]
    fn compile_errors_say_where() {
        let error = compile("package switchboard\ndeny contains x if {").err().unwrap_or_default();
        assert!(error.contains("policy.rego"), "{error}");
        let error = compile("package other\n").err().unwrap_or_default();
        assert!(error.contains("package `switchboard`"), "{error}");
    }
}

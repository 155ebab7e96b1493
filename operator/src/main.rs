//! `switchboard-operator`: the Kubernetes controller. Not built yet; the standalone gateway
//! (`switchboard-gateway --config-dir`) serves the same resources without a cluster meanwhile.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "switchboard-operator {}: the controller is not built yet. Run the gateway standalone with \
         `switchboard-gateway --config-dir DIR` (see README.md).",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}

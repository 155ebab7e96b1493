//! Command-line flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;

#[derive(Clone, Debug, clap::Parser)]
#[command(name = "switchboard-operator", version, about = "Switchboard Kubernetes operator")]
pub struct Settings {
    /// Namespace holding the Switchboard resources, the gateway and its ConfigMap.
    #[arg(long, env = "SWITCHBOARD_NAMESPACE", default_value = "switchboard")]
    pub namespace: String,
    /// Name of the ConfigMap the gateway reads its config from.
    #[arg(long, env = "SWITCHBOARD_CONFIGMAP", default_value = "switchboard-gateway-config")]
    pub configmap: String,
    /// Name of the Secret the provider keys are copied into: the only Secret the gateway reads.
    #[arg(
        long,
        env = "SWITCHBOARD_PROVIDER_KEYS_SECRET",
        default_value = "switchboard-gateway-provider-keys"
    )]
    pub provider_keys_secret: String,
    /// The cluster's DNS domain: backends at `svc.ns.svc.<domain>` are reached in-cluster.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Labels of the gateway pods (`k=v,k2=v2`), which the NetworkPolicies select.
    #[arg(long, default_value = "app.kubernetes.io/name=switchboard,app.kubernetes.io/component=gateway", value_parser = parse_labels)]
    pub gateway_selector: BTreeMap<String, String>,
    /// The gateway pods' HTTP port, opened to tenant namespaces.
    #[arg(long, default_value_t = 8080)]
    pub gateway_port: i32,
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "SWITCHBOARD_METRICS_LISTEN", default_value = "0.0.0.0:8081")]
    pub metrics_listen: SocketAddr,
    /// Identity in the leader-election Lease; defaults to the pod name or host name.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    #[command(flatten)]
    pub tracing: switchboard_telemetry::TraceSettings,
}

fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not key=value"))?;
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_label_selectors() {
        let labels = super::parse_labels("a=1, b=two").unwrap();
        assert_eq!(labels.len(), 2);
        assert_eq!(labels["b"], "two");
        assert!(super::parse_labels("nope").is_err());
    }
}

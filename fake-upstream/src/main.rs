//! The `fake-upstream` binary: the library's server on a fixed address, for Python SDK tests,
//! `make run` demos and `make bench`.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use switchboard_fake_upstream::{FakeUpstream, Options};

/// A deterministic fake OpenAI / Anthropic upstream.
#[derive(Debug, Parser)]
#[command(name = "fake-upstream", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "FAKE_UPSTREAM_LISTEN", default_value = "127.0.0.1:18080")]
    listen: SocketAddr,
    /// Do not record requests (for benchmarks: no lock, no body buffering).
    #[arg(long)]
    no_record: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let server = FakeUpstream::spawn(args.listen, Options { record: !args.no_record })
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(addr = %server.addr(), record = !args.no_record, "fake-upstream listening");
    shutdown_signal().await?;
    tracing::info!("shutting down");
    server.shutdown().await.context("serving")?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what `make run` and Kubernetes send).
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

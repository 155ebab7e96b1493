//! `switchboard-gateway`: serves the gateway until SIGTERM or Ctrl-C, then drains and flushes.

use anyhow::Context;
use clap::Parser;
use switchboard_gateway::server;
use switchboard_gateway::settings::{LogFormat, Settings};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

/// glibc's malloc contended on its arena locks between the runtime's worker threads under load
/// (futex waits in malloc and free in the profile); mimalloc's thread-local heaps do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    if let (true, Some(dir)) = (settings.check, &settings.config_dir) {
        return check(dir);
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    // Before the listener opens: a SIGTERM right after the first request must drain, not kill.
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let gateway = server::start(&settings).await.context("cannot start the gateway")?;
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: draining"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: draining"),
    }
    gateway.stop().await;
    Ok(())
}

/// `--check`: loads the folder as a reload would and reports, without serving.
fn check(dir: &std::path::Path) -> anyhow::Result<()> {
    match switchboard_gateway::serving::folder::load_dir(
        dir,
        &switchboard_gateway::serving::runtime::Runtime::empty(),
    ) {
        Ok(runtime) => {
            let config = &runtime.config;
            println!(
                "{}: valid (config {}): {} tenants, {} routes, {} personas, {} budgets",
                dir.display(),
                &config.version[..12],
                config.tenants.len(),
                config.routes.len(),
                config.personas.len(),
                config.budgets.len()
            );
            Ok(())
        }
        Err(reason) => {
            eprintln!("{}: invalid: {reason}", dir.display());
            std::process::exit(1);
        }
    }
}

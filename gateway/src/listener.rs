//! Serving connections without trusting clients to be quick or few: a cap on open connections,
//! a deadline for request headers (which on a kept-alive HTTP/1 connection also bounds the idle
//! wait for the next request), a deadline for the request body, and a graceful stop.
//!
//! `axum::serve` sets none of these: a client that sends half a header, or a body one byte a
//! minute, or just connects and waits, holds a task and a file descriptor for as long as it
//! likes; enough of them and `accept` fails with "Too many open files" for everyone.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Layer;

use crate::error::{ApiError, Dialect};

/// File descriptors kept for what is not a client connection: upstream and database
/// connections, the config folder, logs.
const RESERVED_DESCRIPTORS: u64 = 128;

/// What a client may take.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Client connections open at once; past it, new ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// From accepting a connection (or finishing its last response) to its next request's
    /// complete header.
    pub header_timeout: Duration,
}

impl ConnectionLimits {
    /// `max_connections` 0 derives the cap from the open-files limit, raised first to its hard
    /// maximum as Go's runtime does, so that the cap, not `accept`, is what stops a flood.
    pub fn new(max_connections: usize, header_timeout: Duration) -> ConnectionLimits {
        let max_connections = match max_connections {
            0 => {
                let files = raise_open_files_limit();
                usize::try_from(files.saturating_sub(RESERVED_DESCRIPTORS).max(16)).unwrap_or(usize::MAX)
            }
            n => n,
        };
        ConnectionLimits { max_connections, header_timeout }
    }
}

/// Raises the soft limit on open files to the hard one; returns the limit in force.
fn raise_open_files_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = raised;
        }
    }
    // `None` is unlimited.
    limit.current.unwrap_or(1 << 20)
}

/// Serves `app` on `listener` until `stop` resolves, then stops accepting and waits for the
/// open connections to finish their requests (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(limits.header_timeout));
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut stop = std::pin::pin!(stop);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut stop => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors or a connection reset before accept: let the moment pass.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Streams are many small writes: without TCP_NODELAY each waits on the client's delayed ACK.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        // The client's address, for the audit trail.
        let service = TowerToHyperService::new(Extension(ConnectInfo(peer)).layer(app.clone()));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // The protocol sniffing of the auto builder waits for a first byte with no deadline
            // of its own (hyper's header timeout starts after it): a silent client is let go here.
            let first_byte = tokio::time::timeout(limits.header_timeout, tcp.peek(&mut [0; 1])).await;
            if !matches!(first_byte, Ok(Ok(1))) {
                return;
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
            let _ = watcher.watch(connection.into_owned()).await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The request body read whole within `timeout` and at most `max_bytes` (the handler then reads
/// it from memory): a client dripping a body is cut off with 408, as one sending too much is
/// with 413.
pub async fn read_body_within(
    State((timeout, max_bytes)): State<(Duration, usize)>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let error = match tokio::time::timeout(timeout, axum::body::to_bytes(body, max_bytes)).await {
        Ok(Ok(bytes)) => return next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Err(error)) if is_too_large(&error) => ApiError::PayloadTooLarge(max_bytes),
        Ok(Err(error)) => ApiError::BadRequest(format!("cannot read request body: {error}"), None),
        Err(_) => ApiError::BodyTimeout(timeout.as_secs()),
    };
    error.into_response_for(Dialect::of_path(parts.uri.path()))
}

fn is_too_large(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}

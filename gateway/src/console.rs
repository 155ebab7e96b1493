//! The console (docs/console.md): the single-page app in `console/`, bundled by esbuild into
//! `console/dist` and embedded in the binary, served on the admin listener at `/console/`. Its
//! files hold no data: the app reads the admin API with the signed-in person's session cookie or
//! the admin token, so they are served to anyone who reaches the admin listener. The content
//! security policy lets the page load and call nothing but the gateway itself.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::state::AppState;

/// Each file of the built console: its name under `/console/`, its type, its bytes.
const FILES: [(&str, &str, &[u8]); 4] = [
    ("index.html", "text/html; charset=utf-8", include_bytes!("../../console/dist/index.html")),
    ("console.js", "text/javascript; charset=utf-8", include_bytes!("../../console/dist/console.js")),
    ("console.css", "text/css; charset=utf-8", include_bytes!("../../console/dist/console.css")),
    ("uplot.css", "text/css; charset=utf-8", include_bytes!("../../console/dist/uplot.css")),
];

/// Only the gateway's own origin, for everything the page loads or calls.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(|| async { file("index.html") }))
        .route("/console/{name}", get(|Path(name): Path<String>| async move { file(&name) }))
}

fn file(name: &str) -> Response {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(file, ..)| *file == name) else {
        return (StatusCode::NOT_FOUND, "no such console file").into_response();
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        // A new gateway version brings a new console: never a stale file from the browser's cache.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, *bytes).into_response()
}

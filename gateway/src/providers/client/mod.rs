//! The HTTP client for upstream calls: HTTP/1.1 over TCP or TLS, through the environment's
//! proxy, with connections kept between requests. It does only what an upstream call needs (a
//! POST to a URL parsed once per config, with its headers built once per config), and the task
//! that waits for a reply drives its connection ([`pool`] says why). Redirects are not followed:
//! an API upstream that answers 3xx is misconfigured, and the status says so.

mod connect;
mod pool;

use std::future::Future as _;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, PROXY_AUTHORIZATION};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::proxy::matcher::Matcher;
use tokio_rustls::rustls::ClientConfig;

use self::connect::{Connector, Route};
pub use self::pool::ResponseBody;
use self::pool::{Conn, Pool};

/// A failed call, before or while its reply was read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Connect(String),
    #[error("{0}")]
    Protocol(String),
}

impl HttpError {
    fn from_hyper(error: &hyper::Error) -> HttpError {
        if error.is_timeout() {
            return HttpError::Timeout;
        }
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        HttpError::Protocol(text)
    }
}

/// The proxy rules, from the environment as the process started.
static PROXIES: LazyLock<Arc<Matcher>> = LazyLock::new(|| Arc::new(Matcher::from_env()));
/// The TLS settings, the same for every upstream.
static TLS: LazyLock<Result<Arc<ClientConfig>, String>> =
    LazyLock::new(|| connect::tls_config().map(Arc::new));

/// Connections to upstreams, with one connect timeout.
pub struct HttpClient {
    connector: Connector,
    pool: Arc<Pool>,
}

/// An upstream URL, parsed and routed once.
pub struct Endpoint {
    uri: Uri,
    /// The request line's target: origin form, or the whole URL for a forwarding proxy.
    target: Uri,
    /// Every call's headers: the caller's, `host`, `content-type` and the proxy's credentials.
    headers: HeaderMap,
    route: Route,
    /// The pool's key: scheme and authority.
    upstream: Arc<str>,
}

/// A reply's status and headers; its body is read from [`ResponseBody`].
pub struct Sent {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: ResponseBody,
}

impl Endpoint {
    /// The upstream's `host:port` as written in its URL.
    pub fn authority(&self) -> &str {
        self.uri.authority().map_or("", |a| a.as_str())
    }
}

impl HttpClient {
    pub fn new(connect_timeout: Duration) -> Result<HttpClient, String> {
        let tls = TLS.clone()?;
        Ok(HttpClient {
            connector: Connector::new(connect_timeout, PROXIES.clone(), tls),
            pool: Arc::default(),
        })
    }

    /// Parses and routes an `http` or `https` URL, whose calls carry `headers`. Credentials in the
    /// URL are refused (keys come from Secrets), and never repeated in the error.
    pub fn endpoint(&self, url: &str, mut headers: HeaderMap) -> Result<Endpoint, String> {
        let uri: Uri = url.parse().map_err(|e| format!("{e}"))?;
        let scheme = uri.scheme_str().unwrap_or_default();
        if scheme != "http" && scheme != "https" {
            return Err("the URL must start with http:// or https://".into());
        }
        let authority = uri.authority().ok_or("the URL has no host")?;
        if authority.as_str().contains('@') {
            return Err("credentials in the URL are not supported: give the key by Secret".into());
        }
        let host = HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?;
        let route = self.connector.route(&uri)?;
        headers.insert(HOST, host);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(auth) = route.forward_auth() {
            headers.insert(PROXY_AUTHORIZATION, auth.clone());
        }
        let target = match route {
            Route::Forward { .. } => uri.clone(),
            Route::Direct | Route::Tunnel { .. } => {
                uri.path_and_query().map_or_else(|| Uri::from_static("/"), |p| Uri::from(p.clone()))
            }
        };
        Ok(Endpoint { upstream: format!("{scheme}://{authority}").into(), uri, target, headers, route })
    }

    /// POSTs a JSON body with the endpoint's headers and `extra` (trace context); the whole call,
    /// reading the reply's body included, ends at `timeout`.
    pub async fn post(
        &self,
        endpoint: &Endpoint,
        body: Bytes,
        timeout: Duration,
        extra: &[(HeaderName, HeaderValue)],
    ) -> Result<Sent, HttpError> {
        let mut deadline = Box::pin(tokio::time::sleep(timeout));
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = endpoint.target.clone();
        *request.headers_mut() = endpoint.headers.clone();
        for (name, value) in extra {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let (response, conn) = tokio::select! {
            biased;
            exchanged = self.exchange(endpoint, request) => exchanged?,
            () = &mut deadline => return Err(HttpError::Timeout),
        };
        let (head, body) = response.into_parts();
        let home = (self.pool.clone(), endpoint.upstream.clone());
        Ok(Sent {
            status: head.status,
            headers: head.headers,
            body: ResponseBody::new(body, conn, home, deadline),
        })
    }

    /// Sends the request on a waiting connection, or a new one, and waits for the reply's head.
    /// A waiting connection the upstream has just closed hands the request back unsent, and it
    /// goes on a new connection.
    async fn exchange(
        &self,
        endpoint: &Endpoint,
        mut request: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Conn), HttpError> {
        if let Some(mut conn) = self.pool.checkout(&endpoint.upstream)
            && conn.ready().await.is_ok()
        {
            match send(&mut conn, request).await {
                Ok(response) => return Ok((response, conn)),
                Err(Unsent(unsent)) => request = *unsent,
                Err(Failed(error)) => return Err(error),
            }
        }
        let io = self.connector.connect(&endpoint.uri, &endpoint.route).await?;
        let (sender, driver) = hyper::client::conn::http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| HttpError::Connect(e.to_string()))?;
        let mut conn = Conn::new(sender, driver);
        conn.ready().await?;
        match send(&mut conn, request).await {
            Ok(response) => Ok((response, conn)),
            Err(Unsent(_)) => {
                Err(HttpError::Protocol("the connection closed before the request was sent".into()))
            }
            Err(Failed(error)) => Err(error),
        }
    }
}

/// Why a request got no reply: it was never sent (and can go elsewhere), or it failed.
enum NotSent {
    Unsent(Box<Request<Full<Bytes>>>),
    Failed(HttpError),
}
use NotSent::{Failed, Unsent};

/// Sends on `conn`, driving it until the reply's head is in.
async fn send(conn: &mut Conn, request: Request<Full<Bytes>>) -> Result<Response<Incoming>, NotSent> {
    let mut response = std::pin::pin!(conn.send.try_send_request(request));
    std::future::poll_fn(|cx| {
        // A connection error reaches the response too, which is where it is read.
        let _ = conn.drive(cx);
        response.as_mut().poll(cx)
    })
    .await
    .map_err(|mut error| match error.take_message() {
        Some(request) => Unsent(Box::new(request)),
        None => Failed(HttpError::from_hyper(error.error())),
    })
}

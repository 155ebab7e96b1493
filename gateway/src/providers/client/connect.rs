//! New connections to an upstream: TCP (with the backend's connect timeout), through the
//! environment's proxy when it names one for the host, then TLS for `https`. The proxy rules are
//! curl's (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, read once at start, as reqwest
//! did before); `https` upstreams behind a proxy go through an HTTP `CONNECT` tunnel, `http` ones
//! are sent to the proxy in absolute form.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};
use tower::Service;

use super::HttpError;

/// A byte stream to an upstream, plain or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

pub type Io = TokioIo<Box<dyn Stream>>;

/// How requests to one upstream travel.
#[derive(Clone, Debug)]
pub enum Route {
    Direct,
    /// An `http` upstream through a proxy: requests go to the proxy in absolute form.
    Forward {
        proxy: Uri,
        auth: Option<HeaderValue>,
    },
    /// An `https` upstream through a proxy's `CONNECT` tunnel.
    Tunnel {
        proxy: Uri,
        auth: Option<HeaderValue>,
    },
}

impl Route {
    /// The proxy's `proxy-authorization` for requests sent to it in absolute form.
    pub fn forward_auth(&self) -> Option<&HeaderValue> {
        match self {
            Self::Forward { auth, .. } => auth.as_ref(),
            Self::Direct | Self::Tunnel { .. } => None,
        }
    }
}

/// Opens connections; one per connect timeout for the process (see `providers::shared_client`).
pub struct Connector {
    tcp: HttpConnector,
    tls: TlsConnector,
    proxies: Arc<Matcher>,
}

impl Connector {
    pub fn new(connect_timeout: Duration, proxies: Arc<Matcher>, tls: Arc<ClientConfig>) -> Connector {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        Connector { tcp, tls: TlsConnector::from(tls), proxies }
    }

    /// The route to `uri`, by the proxy rules.
    pub fn route(&self, uri: &Uri) -> Result<Route, String> {
        let Some(intercept) = self.proxies.intercept(uri) else { return Ok(Route::Direct) };
        let proxy = intercept.uri().clone();
        if proxy.scheme_str() != Some("http") {
            return Err(format!(
                "proxy {}://{} for {}: only http:// proxies are supported",
                proxy.scheme_str().unwrap_or_default(),
                proxy.authority().map_or("", |a| a.as_str()),
                uri.host().unwrap_or_default()
            ));
        }
        let auth = intercept.basic_auth().cloned();
        Ok(if uri.scheme_str() == Some("https") {
            Route::Tunnel { proxy, auth }
        } else {
            Route::Forward { proxy, auth }
        })
    }

    /// A new connection to `uri` by `route`.
    pub async fn connect(&self, uri: &Uri, route: &Route) -> Result<Io, HttpError> {
        let tcp = match route {
            Route::Direct => self.tcp.clone().call(uri.clone()).await.map_err(connect_error)?,
            Route::Forward { proxy, .. } => {
                self.tcp.clone().call(proxy.clone()).await.map_err(connect_error)?
            }
            Route::Tunnel { proxy, auth } => {
                let mut tunnel = Tunnel::new(proxy.clone(), self.tcp.clone());
                if let Some(auth) = auth {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                tunnel.call(uri.clone()).await.map_err(connect_error)?
            }
        };
        let tcp: TcpStream = tcp.into_inner();
        if uri.scheme_str() != Some("https") {
            return Ok(TokioIo::new(Box::new(tcp)));
        }
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| HttpError::Connect(format!("invalid TLS server name {host:?}: {e}")))?;
        let tls = self.tls.connect(name, tcp).await.map_err(|e| HttpError::Connect(format!("TLS: {e}")))?;
        Ok(TokioIo::new(Box::new(tls)))
    }
}

/// The TLS settings for upstreams: the Mozilla roots (webpki-roots), plus the PEM certificates in
/// `SSL_CERT_FILE` when it is set (a company CA, a TLS-inspecting proxy); HTTP/1.1 by ALPN.
pub fn tls_config() -> Result<ClientConfig, String> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        let shown = file.to_string_lossy().into_owned();
        let certs: Vec<_> = CertificateDer::pem_file_iter(&file)
            .map_err(|e| format!("SSL_CERT_FILE {shown}: {e}"))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("SSL_CERT_FILE {shown}: {e}"))?;
        // A system bundle may hold a certificate rustls cannot use; the others still count.
        let (added, ignored) = roots.add_parsable_certificates(certs);
        tracing::info!(file = %shown, added, ignored, "trusting the certificates in SSL_CERT_FILE for upstreams");
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A connect failure with its causes, which name the host and port but never a URL's userinfo.
fn connect_error(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> HttpError {
    let error = error.into();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    HttpError::Connect(text)
}

//! A real police client: rustls with a client certificate, HTTP/1.1 over
//! hyper, one keep-alive connection per `Connection`. Used by `kim demo`,
//! the integration tests and the benchmarks — never by the daemon itself.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::ingest::tls::{load_certs, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("client TLS setup: {0}")]
    Config(String),
    #[error("connect: {0}")]
    Io(#[from] std::io::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
}

/// An answer from kim.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sees every answer with its request's method and path: the integration
/// tests check each one against `docs/openapi.yaml`.
pub type Observer = Arc<dyn Fn(&Method, &str, &Answer) + Send + Sync>;

/// TLS settings for a police client.
#[derive(Clone)]
pub struct PoliceClient {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    observer: Option<Observer>,
}

impl PoliceClient {
    /// `ca` verifies kim's server certificate; `cert`/`key` are the force's
    /// client certificate (omit both to connect without one).
    pub fn new(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, ClientError> {
        Self::with_versions(ca, identity, rustls::DEFAULT_VERSIONS)
    }

    pub fn with_versions(
        ca: &Path,
        identity: Option<(&Path, &Path)>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<Self, ClientError> {
        let mut roots = RootCertStore::empty();
        for c in load_certs("CA", ca)? {
            roots
                .add(c)
                .map_err(|e| ClientError::Config(e.to_string()))?;
        }
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(versions)
                .map_err(|e| ClientError::Config(e.to_string()))?
                .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => {
                let chain = load_certs("client certificate", cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| ClientError::Config(format!("client key: {e}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| ClientError::Config(e.to_string()))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            server_name: ServerName::try_from("localhost").expect("valid name"),
            observer: None,
        })
    }

    /// The same client, verifying kim's certificate for `name` (a DNS name
    /// or an IP address) instead of `localhost`.
    pub fn for_server(mut self, name: &str) -> Result<Self, ClientError> {
        self.server_name = ServerName::try_from(name.to_owned()).map_err(|_| {
            ClientError::Config(format!("{name:?} is not a DNS name or IP address"))
        })?;
        Ok(self)
    }

    /// The same client, showing every answer to `observer` first.
    pub fn observed(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Opens a raw mTLS stream, for tests that speak HTTP by hand.
    pub async fn connect_tls(
        &self,
        addr: SocketAddr,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ClientError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await?)
    }

    /// Opens one mTLS connection (the handshake completes here).
    pub async fn connect(&self, addr: SocketAddr) -> Result<Connection, ClientError> {
        let tls = self.connect_tls(addr).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection {
            sender,
            driver,
            observer: self.observer.clone(),
        })
    }

    /// One request on a fresh connection.
    pub async fn once(
        &self,
        addr: SocketAddr,
        method: Method,
        path: &str,
        json: Option<&[u8]>,
    ) -> Result<Answer, ClientError> {
        let mut c = self.connect(addr).await?;
        c.send(method, path, json).await
    }
}

/// A keep-alive HTTP/1.1 connection over mTLS.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<()>,
    observer: Option<Observer>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Connection {
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        json: Option<&[u8]>,
    ) -> Result<Answer, ClientError> {
        self.send_with_type(method, path, json, "application/json")
            .await
    }

    pub async fn send_with_type(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        content_type: &str,
    ) -> Result<Answer, ClientError> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("host", "localhost");
        if body.is_some() {
            req = req.header("content-type", content_type);
        }
        let req = req.body(Full::new(Bytes::copy_from_slice(body.unwrap_or_default())))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        let answer = Answer {
            status,
            headers,
            body,
        };
        if let Some(o) = &self.observer {
            o(&method, path, &answer);
        }
        Ok(answer)
    }
}

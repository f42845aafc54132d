//! CRLs kim fetches itself (`[server] crl_urls`, issue 13 item 2): one
//! HTTP(S) GET per distribution point with a size and a time limit, the
//! fetched CRL checked like a CRL file (`super::crl`: version 2, issued and
//! signed by a CA in `client_ca`) and kept only when it is not older than
//! the copy held; the last good copy of each URL lives in the store
//! folder's `crl/` subfolder (one DER file per URL, named by the URL's
//! SHA-256), so a restart uses it when the distribution point is down.
//! Putting a fetched copy in force is the reload's job (`daemon::reload`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, ServerName};

use super::crl::{CrlError, LoadedCrl};

/// The most a distribution point may send.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// The longest one fetch may take (connect, TLS, request, body).
pub const TIME_LIMIT: Duration = Duration::from_secs(30);

/// Why a fetch gave nothing usable. Every variant names the URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("CRL URL {url}: not fetched: {why}")]
    Fetch { url: String, why: String },
    #[error("CRL URL {url}: ignored: {source}")]
    Bad {
        url: String,
        #[source]
        source: CrlError,
    },
    #[error(
        "CRL URL {url}: ignored: the fetched CRL ({fetched}) is older than the one held ({held})"
    )]
    Older {
        url: String,
        fetched: String,
        held: String,
    },
    #[error("CRL URL {url}: cannot keep the fetched copy in {path}: {source}")]
    Cache {
        url: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Whether `url` is a distribution point kim can fetch: `http://` or
/// `https://` with a host. The reason otherwise (for `[server] crl_urls`).
pub fn check_url(url: &str) -> Result<(), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(format!(
                "`{url}`: only http:// and https:// URLs are fetched"
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    Ok(())
}

/// The folder holding the last good copy of each fetched CRL.
pub fn cache_dir(store: &Path) -> PathBuf {
    store.join("crl")
}

/// The cached copy of `url` under `dir`.
pub fn cache_file(dir: &Path, url: &str) -> PathBuf {
    let d = ring::digest::digest(&ring::digest::SHA256, url.as_bytes());
    let hex: String = d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    dir.join(format!("{hex}.crl"))
}

/// The cached copies of `urls` that still check against `cas` (each
/// [`LoadedCrl::path`] is its URL). A missing copy is skipped; an unusable
/// one is skipped with a warning naming the URL.
pub fn load_cached(dir: &Path, urls: &[String], cas: &[CertificateDer<'_>]) -> Vec<LoadedCrl> {
    let mut out = Vec::new();
    for url in urls {
        let file = cache_file(dir, url);
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::warn!(url = %url, file = %file.display(), error = %e, "cannot read the kept copy of a fetched CRL");
                continue;
            }
        };
        match super::crl::parse_bytes(Path::new(url), bytes, cas) {
            Ok(crls) => out.extend(crls),
            Err(e) => tracing::warn!(file = %file.display(), "kept copy not used: {e}"),
        }
    }
    out
}

/// How one fetch turned out when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// A newer CRL (or the first one), now kept in the cache.
    New,
    /// The same CRL as the one held.
    Unchanged,
}

/// Fetches `url`, checks the CRL against `cas`, compares it with the copy
/// in `dir` and keeps it there when it is newer. Blocking file I/O is small
/// (one CRL); the network part is async.
pub async fn refresh(
    url: &str,
    dir: &Path,
    cas: &[CertificateDer<'_>],
) -> Result<Fetched, FetchError> {
    let bytes = fetch(url, MAX_BYTES, TIME_LIMIT).await?;
    let fetched =
        super::crl::parse_bytes(Path::new(url), bytes.clone(), cas).map_err(|source| {
            FetchError::Bad {
                url: url.to_owned(),
                source,
            }
        })?;
    let file = cache_file(dir, url);
    let held = std::fs::read(&file).unwrap_or_default();
    if held == bytes {
        return Ok(Fetched::Unchanged);
    }
    if let Ok(held) = super::crl::parse_bytes(Path::new(url), held, cas) {
        if let Some(f) = fetched
            .iter()
            .find(|f| held.iter().any(|h| f.older_than(h)))
        {
            let h = held.iter().find(|h| f.older_than(h)).unwrap_or(f);
            return Err(FetchError::Older {
                url: url.to_owned(),
                fetched: describe(f),
                held: describe(h),
            });
        }
        if fetched
            .iter()
            .all(|f| held.iter().any(|h| !f.newer_than(h) && !h.newer_than(f)))
        {
            // Same number and date, other bytes (re-encoded): keep the held one.
            return Ok(Fetched::Unchanged);
        }
    }
    keep(&file, &bytes).map_err(|source| FetchError::Cache {
        url: url.to_owned(),
        path: file.clone(),
        source,
    })?;
    Ok(Fetched::New)
}

fn describe(c: &LoadedCrl) -> String {
    let when = jiff::Timestamp::from_second(c.this_update)
        .map(|t| t.to_string())
        .unwrap_or_default();
    match &c.number {
        Some(n) => format!(
            "CRL number {}, thisUpdate {when}",
            x509_parser::num_bigint::BigUint::from_bytes_be(n)
        ),
        None => format!("thisUpdate {when}"),
    }
}

/// Writes `bytes` to `file` atomically (a temporary file renamed over it),
/// creating the folder (mode 0700) when needed.
fn keep(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = file.parent().unwrap_or(Path::new("."));
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(file).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// One GET of `url`: the body of a 200 answer of at most `limit` bytes,
/// within `time`.
pub async fn fetch(url: &str, limit: usize, time: Duration) -> Result<Vec<u8>, FetchError> {
    let failed = |why: String| FetchError::Fetch {
        url: url.to_owned(),
        why,
    };
    match tokio::time::timeout(time, get(url, limit)).await {
        Ok(r) => r.map_err(failed),
        Err(_) => Err(failed(format!(
            "no complete answer within {} s",
            time.as_secs()
        ))),
    }
}

async fn get(url: &str, limit: usize) -> Result<Vec<u8>, String> {
    check_url(url)?;
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().unwrap_or_default().to_owned();
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let path = uri
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or(host);
    if https {
        let name = ServerName::try_from(bare).map_err(|e| format!("bad host name: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(client_config()?)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        request(TokioIo::new(tls), &authority, &path, limit).await
    } else {
        request(TokioIo::new(tcp), &authority, &path, limit).await
    }
}

async fn request<T>(io: T, authority: &str, path: &str, limit: usize) -> Result<Vec<u8>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::USER_AGENT, "kim-crl-fetch")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("HTTP: {e}"))?;
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let status = res.status();
    let body = Limited::new(res.into_body(), limit)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                format!("the answer is larger than {} MiB", limit >> 20)
            } else {
                format!("HTTP: {e}")
            }
        })?
        .to_bytes();
    conn.abort();
    if status != hyper::StatusCode::OK {
        return Err(format!("the server answered {status}"));
    }
    Ok(body.to_vec())
}

/// TLS for https distribution points: the system's trusted roots.
fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(c);
    }
    if roots.is_empty() {
        return Err("no trusted root certificates on this system for https".into());
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(super::tls::provider()))
        .with_safe_default_protocol_versions()
        .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|e| format!("TLS: {e}"))
}

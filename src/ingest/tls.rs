//! The police listener's TLS: a rustls server config that requires a client
//! certificate chaining to `client_ca`, checked against `crls` (an expired
//! CRL fails closed), TLS 1.3 or 1.2 with ECDHE+AEAD only; and the mapping
//! from a verified certificate's SAN (dNSName / URI) to a configured force:
//! DNS names case-insensitively, URIs by RFC 3986 (scheme and host
//! case-insensitively, the path exactly), and a certificate naming two
//! forces is no force at all. CRL files are read and checked by `crl`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::{ring as ring_provider, CryptoProvider};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;

use crate::config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{what} {path} holds no {expected}")]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("the police CA bundle {path} is not usable: {message}")]
    Ca { path: PathBuf, message: String },
    #[error(transparent)]
    Crl(#[from] super::crl::CrlError),
    #[error("the client verifier cannot be built (check client_ca and crls): {0}")]
    Verifier(String),
    #[error("the server certificate and key do not work together: {0}")]
    Server(String),
}

/// The cipher suites kim offers: every TLS 1.3 suite, and TLS 1.2 only with
/// ECDHE key exchange and an AEAD cipher.
pub fn provider() -> CryptoProvider {
    use rustls::crypto::ring::cipher_suite as cs;
    CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..ring_provider::default_provider()
    }
}

pub fn load_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Pem {
            what,
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_owned(),
            expected: "PEM certificate",
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| TlsError::Pem {
        what: "server key",
        path: path.to_owned(),
        source,
    })
}

/// What `[server]` loads into: the rustls config and what the metrics,
/// the logs and `check-config` report about it.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    pub config: Arc<ServerConfig>,
    /// Every CRL loaded, in file order.
    pub crls: Vec<super::crl::LoadedCrl>,
    /// The server certificate's notAfter (Unix seconds).
    pub server_not_after: Option<i64>,
    /// The server certificate's subject (for the expiry notice).
    pub server_subject: String,
    /// Each police CA in `client_ca`: its subject and notAfter (Unix seconds).
    pub client_cas: Vec<(String, i64)>,
}

impl TlsMaterial {
    /// One line per expired CRL, naming its file (these fail closed).
    pub fn expired_crls(&self) -> Vec<String> {
        let now = jiff::Timestamp::now().as_second();
        self.crls
            .iter()
            .filter(|c| c.expired(now))
            .map(|c| {
                format!(
                    "CRL file {}: expired (nextUpdate {}): every client certificate it covers is refused until a fresh CRL is in place",
                    c.path.display(),
                    c.next_update
                        .and_then(|t| jiff::Timestamp::from_second(t).ok())
                        .map(|t| t.to_string())
                        .unwrap_or_default()
                )
            })
            .collect()
    }
}

/// Builds the listener's rustls config from `[server]`.
pub fn server_config(cfg: &config::ServerConfig) -> Result<Arc<ServerConfig>, TlsError> {
    load(cfg).map(|m| m.config)
}

/// Reads every file `[server]` names (certificate, key, police CAs, CRLs),
/// checks them and builds the rustls config.
pub fn load(cfg: &config::ServerConfig) -> Result<TlsMaterial, TlsError> {
    load_with(cfg, |_| Vec::new())
}

/// As [`load`], with the kept copies of the CRLs fetched from `[server]
/// crl_urls` (in the store folder's `crl/`) as well.
pub fn load_all(cfg: &config::Config) -> Result<TlsMaterial, TlsError> {
    let dir = super::crl_fetch::cache_dir(&cfg.store.path);
    load_with(&cfg.server, |cas| {
        super::crl_fetch::load_cached(&dir, &cfg.server.crl_urls, cas)
    })
}

/// As [`load`], with the CRLs `fetched` gives for the police CAs.
pub fn load_with(
    cfg: &config::ServerConfig,
    fetched: impl FnOnce(&[CertificateDer<'static>]) -> Vec<super::crl::LoadedCrl>,
) -> Result<TlsMaterial, TlsError> {
    let provider = Arc::new(provider());
    let mut roots = RootCertStore::empty();
    let cas = load_certs("police CA bundle", &cfg.client_ca)?;
    for ca in &cas {
        roots.add(ca.clone()).map_err(|e| TlsError::Ca {
            path: cfg.client_ca.clone(),
            message: e.to_string(),
        })?;
    }
    let client_cas = cas
        .iter()
        .filter_map(|c| {
            let (_, x) = x509_parser::parse_x509_certificate(c.as_ref()).ok()?;
            Some((x.subject().to_string(), x.validity().not_after.timestamp()))
        })
        .collect();
    let mut crls = Vec::new();
    for p in &cfg.crls {
        crls.extend(super::crl::load_file(p, &cas)?);
    }
    crls.extend(fetched(&cas));
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if !crls.is_empty() {
        builder = builder
            .with_crls(crls.iter().map(|c| c.der.clone()))
            .enforce_revocation_expiration();
    }
    let verifier = builder
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let chain = load_certs("server certificate", &cfg.cert)?;
    let server_not_after = chain.first().and_then(not_after);
    let server_subject = chain
        .first()
        .and_then(|c| x509_parser::parse_x509_certificate(c.as_ref()).ok())
        .map(|(_, x)| x.subject().to_string())
        .unwrap_or_default();
    let key = load_key(&cfg.key)?;
    let mut sc = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Server(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Server(e.to_string()))?;
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        config: Arc::new(sc),
        crls,
        server_not_after,
        server_subject,
        client_cas,
    })
}

/// A certificate's notAfter, Unix seconds.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

pub use crate::config::forces::{match_force, ForceMatch, Identity};

/// The SAN dNSName and URI values of a (verified) certificate. Anything
/// unparseable yields no identities, which admits nobody.
pub fn identities(cert: &CertificateDer<'_>) -> Vec<Identity> {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(s) => Some(Identity::Dns((*s).to_owned())),
            GeneralName::URI(s) => Some(Identity::Uri((*s).to_owned())),
            _ => None,
        })
        .collect()
}

/// Seconds until the certificate's notAfter (for metrics and warnings).
pub fn seconds_to_expiry(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let not_after = parsed.validity().not_after.timestamp();
    Some(not_after - jiff::Timestamp::now().as_second())
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;

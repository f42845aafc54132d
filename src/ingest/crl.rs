//! CRL files for the police listener: reading them (PEM holding one or more
//! CRLs, or DER), checking each against the configured police CAs before
//! rustls sees it (a version 2 CRL, issued and signed by one of the CAs),
//! and saying which file is wrong and why. An expired CRL is loaded all the
//! same (rustls then refuses every client it covers: fail closed) and
//! reported as a warning. Also a cheap fingerprint of the files, so the
//! refresh task (`daemon::reload`) re-reads them only when they changed.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::X509Version;

/// Why a CRL file cannot be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    #[error("CRL file {path}: cannot read it: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CRL file {path}: not a CRL ({why})")]
    NotACrl { path: PathBuf, why: String },
    #[error("CRL file {path}: CRL #{index} is a version 1 CRL; only version 2 CRLs are accepted")]
    Version1 { path: PathBuf, index: usize },
    #[error(
        "CRL file {path}: CRL #{index} (issuer \"{issuer}\") is not issued by a CA in client_ca"
    )]
    UnknownIssuer {
        path: PathBuf,
        index: usize,
        issuer: String,
    },
    #[error("CRL file {path}: CRL #{index} (issuer \"{issuer}\") has a bad signature: not signed by that CA in client_ca")]
    BadSignature {
        path: PathBuf,
        index: usize,
        issuer: String,
    },
}

/// One CRL that passed the checks.
#[derive(Debug, Clone)]
pub struct LoadedCrl {
    pub path: PathBuf,
    pub der: CertificateRevocationListDer<'static>,
    /// nextUpdate, Unix seconds (None: the CRL has none).
    pub next_update: Option<i64>,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// The CRL number extension, big-endian without leading zeros.
    pub number: Option<Vec<u8>>,
}

impl LoadedCrl {
    /// Whether nextUpdate has passed (every client it covers is refused).
    pub fn expired(&self, now: i64) -> bool {
        self.next_update.is_some_and(|t| t < now)
    }

    /// Whether this CRL is newer than `held`: a greater CRL number when
    /// both have one, else a later thisUpdate.
    pub fn newer_than(&self, held: &LoadedCrl) -> bool {
        match (&self.number, &held.number) {
            (Some(a), Some(b)) => (a.len(), a) > (b.len(), b),
            _ => self.this_update > held.this_update,
        }
    }

    /// Whether this CRL is older than `held` (the converse, strictly).
    pub fn older_than(&self, held: &LoadedCrl) -> bool {
        held.newer_than(self)
    }
}

/// Reads every CRL in `path` (PEM with one or more `X509 CRL` blocks, or one
/// DER CRL) and checks each against `cas` (the police CA bundle).
pub fn load_file(path: &Path, cas: &[CertificateDer<'_>]) -> Result<Vec<LoadedCrl>, CrlError> {
    let bytes = std::fs::read(path).map_err(|source| CrlError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_bytes(path, bytes, cas)
}

/// As [`load_file`], for bytes already read (or fetched) from `path` (a
/// file name or a URL, for the errors).
pub fn parse_bytes(
    path: &Path,
    bytes: Vec<u8>,
    cas: &[CertificateDer<'_>],
) -> Result<Vec<LoadedCrl>, CrlError> {
    let not_a_crl = |why: String| CrlError::NotACrl {
        path: path.to_owned(),
        why,
    };
    let ders: Vec<CertificateRevocationListDer<'static>> = if looks_like_pem(&bytes) {
        let ders = CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| not_a_crl(format!("bad PEM: {e}")))?;
        if ders.is_empty() {
            return Err(not_a_crl("PEM without a BEGIN X509 CRL block".into()));
        }
        ders
    } else {
        vec![CertificateRevocationListDer::from(bytes)]
    };
    let parsed_cas: Vec<X509Certificate<'_>> = cas
        .iter()
        .filter_map(|c| X509Certificate::from_der(c.as_ref()).ok().map(|(_, c)| c))
        .collect();
    ders.into_iter()
        .enumerate()
        .map(|(i, der)| check(path, i + 1, der, &parsed_cas))
        .collect()
}

fn looks_like_pem(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes[start..].starts_with(b"-----BEGIN")
}

fn check(
    path: &Path,
    index: usize,
    der: CertificateRevocationListDer<'static>,
    cas: &[X509Certificate<'_>],
) -> Result<LoadedCrl, CrlError> {
    let (rest, crl) =
        CertificateRevocationList::from_der(der.as_ref()).map_err(|e| CrlError::NotACrl {
            path: path.to_owned(),
            why: format!("CRL #{index} does not parse as DER: {e}"),
        })?;
    if !rest.is_empty() {
        return Err(CrlError::NotACrl {
            path: path.to_owned(),
            why: format!("CRL #{index} has {} bytes after its end", rest.len()),
        });
    }
    // Version 1 CRLs have no version field (RFC 5280 §5.1.2.1).
    if crl.version() != Some(X509Version::V2) {
        return Err(CrlError::Version1 {
            path: path.to_owned(),
            index,
        });
    }
    let issuer = crl.issuer().to_string();
    let by_name: Vec<&X509Certificate<'_>> = cas
        .iter()
        .filter(|ca| ca.subject().as_raw() == crl.issuer().as_raw())
        .collect();
    if by_name.is_empty() {
        return Err(CrlError::UnknownIssuer {
            path: path.to_owned(),
            index,
            issuer,
        });
    }
    if !by_name
        .iter()
        .any(|ca| crl.verify_signature(ca.public_key()).is_ok())
    {
        return Err(CrlError::BadSignature {
            path: path.to_owned(),
            index,
            issuer,
        });
    }
    let next_update = crl.next_update().map(|t| t.timestamp());
    let this_update = crl.last_update().timestamp();
    let number = crl.crl_number().map(|n| n.to_bytes_be());
    Ok(LoadedCrl {
        path: path.to_owned(),
        der,
        next_update,
        this_update,
        number,
    })
}

/// A fingerprint of the files' contents (SHA-256 over each file, or its
/// read error), to tell whether any changed since the last look.
pub fn fingerprint(paths: &[PathBuf]) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in paths {
        match std::fs::read(p) {
            Ok(b) => {
                ctx.update(&(b.len() as u64).to_be_bytes());
                ctx.update(&b);
            }
            Err(e) => ctx.update(format!("error {:?}", e.kind()).as_bytes()),
        }
    }
    ctx.finish().as_ref().to_vec()
}

#[cfg(test)]
#[path = "crl_tests.rs"]
mod tests;

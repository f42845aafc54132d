//! Development and test PKI for kim: a throwaway dev CA, a server certificate, police client
//! certificates and CRLs, all made with rcgen (`kim certs dev`, tests and benchmarks).
//! Never use any of this in production: see `certs/README.md` for real certificates.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertificateRevocationListParams,
    DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, Ia5String, IsCa, KeyIdMethod,
    KeyPair, KeyUsagePurpose, PrintableString, RevocationReason, RevokedCertParams, SanType,
    SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

/// Errors from making or writing development PKI material.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen failed (also: an existing CA certificate could not be parsed).
    #[error("certificate generation failed: {0}")]
    Gen(#[from] rcgen::Error),
    /// A file or directory could not be created or written. Also used when an existing CA
    /// file (for [`write_test_fixtures`]) cannot be read or its key does not match its cert.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file [`write_dev_certs`] would write is already there.
    #[error("{0} already exists; refusing to overwrite")]
    Exists(PathBuf),
}

/// Paths written by [`write_dev_certs`].
#[derive(Debug, Clone)]
pub struct DevCerts {
    /// The output directory.
    pub dir: PathBuf,
    /// `ca.crt`: the dev CA certificate.
    pub ca_cert: PathBuf,
    /// `ca.key`: the dev CA key.
    pub ca_key: PathBuf,
    /// `server.crt`: server leaf then CA (PEM chain).
    pub server_cert: PathBuf,
    /// `server.key`: server key.
    pub server_key: PathBuf,
    /// `police-ca.crt`: the client CA bundle (a copy of `ca.crt`).
    pub police_ca: PathBuf,
    /// `police-client.crt`: the Kent Police relay's client certificate.
    pub client_cert: PathBuf,
    /// `police-client.key`: its key.
    pub client_key: PathBuf,
}

/// Paths written by [`write_test_fixtures`]. Each `(PathBuf, PathBuf)` is `(cert, key)`.
#[derive(Debug, Clone)]
pub struct TestFixtures {
    /// SAN DNS `relay.met-police.example`, dev CA: a second force.
    pub met_client: (PathBuf, PathBuf),
    /// SAN URI `spiffe://police.example/durham` only, dev CA.
    pub uri_client: (PathBuf, PathBuf),
    /// SAN DNS `relay.unknown.example`, dev CA: valid, but not listed in any config.
    pub unlisted_client: (PathBuf, PathBuf),
    /// `other-ca.crt`: a different self-signed CA (its key is not kept).
    pub other_ca: PathBuf,
    /// SAN DNS `relay.kent-police.example`, signed by the other CA.
    pub other_ca_client: (PathBuf, PathBuf),
    /// SAN DNS `relay.kent-police.example`, dev CA, valid from 60 days ago to 30 days ago.
    pub expired_client: (PathBuf, PathBuf),
    /// SAN DNS `relay.kent-police.example`, dev CA, serial [`REVOKED_CLIENT_SERIAL`].
    pub revoked_client: (PathBuf, PathBuf),
    /// `crl.pem`: dev-CA CRL (number 1) revoking `revoked_client`; from 1 day ago for 30 days.
    pub crl: PathBuf,
    /// `expired-crl.pem`: dev-CA CRL revoking nothing; from 40 days ago to 10 days ago.
    pub expired_crl: PathBuf,
    /// `empty-crl.pem`: dev-CA CRL revoking nothing; valid now, for 30 days.
    pub empty_crl: PathBuf,
}

/// Serial number of the `revoked_client` fixture, as listed in `crl.pem` (ASCII "kim-dev-revoked!").
pub const REVOKED_CLIENT_SERIAL: [u8; 16] = *b"kim-dev-revoked!";

const CA_CN: &str = "kim dev CA";
const OTHER_CA_CN: &str = "kim other dev CA (untrusted)";
const KENT_DNS: &str = "relay.kent-police.example";
const CA_VALIDITY_DAYS: i64 = 825;
const LEAF_VALIDITY_DAYS: i64 = 398;

const CERT_MODE: u32 = 0o644;
const KEY_MODE: u32 = 0o600;

/// `kim certs dev --out DIR`: creates DIR if needed; refuses ([`PkiError::Exists`]) if any
/// target file exists. Writes:
///  - `ca.crt` / `ca.key`: "kim dev CA" (self-signed, CA:true, keyCertSign+cRLSign), 825 days
///  - `server.crt` / `server.key`: leaf for SAN DNS "localhost", IP 127.0.0.1 and ::1, EKU
///    serverAuth, signed by the CA; `server.crt` holds leaf then CA (PEM chain)
///  - `police-ca.crt`: the bundle police client certs must chain to (a copy of `ca.crt`)
///  - `police-client.crt` / `police-client.key`: leaf with SAN DNS "relay.kent-police.example",
///    EKU clientAuth, CN "Kent Police relay (dev)"
///
/// Keys are PEM PKCS#8 (ECDSA P-256), mode 0600; certificates mode 0644.
pub fn write_dev_certs(out: &Path) -> Result<DevCerts, PkiError> {
    let paths = DevCerts {
        dir: out.to_path_buf(),
        ca_cert: out.join("ca.crt"),
        ca_key: out.join("ca.key"),
        server_cert: out.join("server.crt"),
        server_key: out.join("server.key"),
        police_ca: out.join("police-ca.crt"),
        client_cert: out.join("police-client.crt"),
        client_key: out.join("police-client.key"),
    };
    let targets = [
        &paths.ca_cert,
        &paths.ca_key,
        &paths.server_cert,
        &paths.server_key,
        &paths.police_ca,
        &paths.client_cert,
        &paths.client_key,
    ];
    for target in targets {
        if exists(target)? {
            return Err(PkiError::Exists(target.clone()));
        }
    }

    // Make everything before touching the disk, so a generation failure writes nothing.
    let now = OffsetDateTime::now_utc();
    let ca = Ca::generate(CA_CN, now)?;
    let ca_pem = ca.cert.pem();
    let (server_cert, server_key) = ca.issue(&Leaf {
        sans: vec![
            dns("localhost")?,
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ],
        eku: ExtendedKeyUsagePurpose::ServerAuth,
        ..Leaf::current("kim dev server (localhost)", now)
    })?;
    let (client_cert, client_key) = ca.issue(&Leaf {
        sans: vec![dns(KENT_DNS)?],
        ..Leaf::current("Kent Police relay (dev)", now)
    })?;

    let files = [
        (&paths.ca_cert, ca_pem.clone(), CERT_MODE),
        (&paths.ca_key, ca.key.serialize_pem(), KEY_MODE),
        (
            &paths.server_cert,
            format!("{}{}", server_cert.pem(), ca_pem),
            CERT_MODE,
        ),
        (&paths.server_key, server_key.serialize_pem(), KEY_MODE),
        (&paths.police_ca, ca_pem, CERT_MODE),
        (&paths.client_cert, client_cert.pem(), CERT_MODE),
        (&paths.client_key, client_key.serialize_pem(), KEY_MODE),
    ];
    fs::create_dir_all(out).map_err(io_err(out))?;
    let mut written: Vec<&Path> = Vec::with_capacity(files.len());
    for (path, contents, mode) in &files {
        if let Err(e) = write_file(path, contents, *mode, false) {
            // Leave no half-made set behind: it would block the next attempt.
            for done in written {
                let _ = fs::remove_file(done);
            }
            return Err(e);
        }
        written.push(path);
    }
    Ok(paths)
}

/// Extra material for tests and benchmarks, written into `out`.
///
/// If `out` already holds `ca.crt`/`ca.key` (from [`write_dev_certs`]) everything is signed by
/// that CA; otherwise [`write_dev_certs`] is run first. Unlike `write_dev_certs`, fixture files
/// that already exist are replaced (the CA files are only read).
pub fn write_test_fixtures(out: &Path) -> Result<TestFixtures, PkiError> {
    let ca_cert_path = out.join("ca.crt");
    let ca_key_path = out.join("ca.key");
    if !exists(&ca_cert_path)? && !exists(&ca_key_path)? {
        write_dev_certs(out)?;
    }
    let ca = Ca::load(&ca_cert_path, &ca_key_path)?;

    let now = OffsetDateTime::now_utc();
    let other_ca = Ca::generate(OTHER_CA_CN, now)?;
    let client = |cn: &'static str, san: SanType| Leaf {
        sans: vec![san],
        ..Leaf::current(cn, now)
    };

    let met = ca.issue(&client(
        "Met Police relay (dev)",
        dns("relay.met-police.example")?,
    ))?;
    let uri_san = SanType::URI(Ia5String::try_from("spiffe://police.example/durham")?);
    let uri = ca.issue(&client("Durham Police relay (dev)", uri_san))?;
    let unlisted = ca.issue(&client(
        "Unknown relay (dev)",
        dns("relay.unknown.example")?,
    ))?;
    let other_ca_client =
        other_ca.issue(&client("Kent Police relay (other CA)", dns(KENT_DNS)?))?;
    let expired = ca.issue(&Leaf {
        not_before: now - Duration::days(60),
        not_after: now - Duration::days(30),
        ..client("Kent Police relay (expired)", dns(KENT_DNS)?)
    })?;
    let revoked = ca.issue(&Leaf {
        serial: SerialNumber::from_slice(&REVOKED_CLIENT_SERIAL),
        ..client("Kent Police relay (revoked)", dns(KENT_DNS)?)
    })?;

    let crl = ca.crl(
        1,
        now - Duration::days(1),
        now + Duration::days(30),
        vec![RevokedCertParams {
            serial_number: SerialNumber::from_slice(&REVOKED_CLIENT_SERIAL),
            revocation_time: now - Duration::days(1),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
    )?;
    let empty_crl = ca.crl(
        2,
        now - Duration::minutes(5),
        now + Duration::days(30),
        vec![],
    )?;
    let expired_crl = ca.crl(
        3,
        now - Duration::days(40),
        now - Duration::days(10),
        vec![],
    )?;

    let pair = |stem: &str| {
        (
            out.join(format!("{stem}.crt")),
            out.join(format!("{stem}.key")),
        )
    };
    let fixtures = TestFixtures {
        met_client: pair("met-client"),
        uri_client: pair("uri-client"),
        unlisted_client: pair("unlisted-client"),
        other_ca: out.join("other-ca.crt"),
        other_ca_client: pair("other-ca-client"),
        expired_client: pair("expired-client"),
        revoked_client: pair("revoked-client"),
        crl: out.join("crl.pem"),
        expired_crl: out.join("expired-crl.pem"),
        empty_crl: out.join("empty-crl.pem"),
    };

    let leaves = [
        (&fixtures.met_client, met),
        (&fixtures.uri_client, uri),
        (&fixtures.unlisted_client, unlisted),
        (&fixtures.other_ca_client, other_ca_client),
        (&fixtures.expired_client, expired),
        (&fixtures.revoked_client, revoked),
    ];
    for ((cert_path, key_path), (cert, key)) in leaves {
        write_file(cert_path, &cert.pem(), CERT_MODE, true)?;
        write_file(key_path, &key.serialize_pem(), KEY_MODE, true)?;
    }
    write_file(&fixtures.other_ca, &other_ca.cert.pem(), CERT_MODE, true)?;
    write_file(&fixtures.crl, &crl, CERT_MODE, true)?;
    write_file(&fixtures.expired_crl, &expired_crl, CERT_MODE, true)?;
    write_file(&fixtures.empty_crl, &empty_crl, CERT_MODE, true)?;
    Ok(fixtures)
}

/// A CA able to sign: its certificate (as rcgen needs it for issuer name and key id) and key.
struct Ca {
    cert: Certificate,
    key: KeyPair,
}

/// What varies between the leaf certificates we issue.
struct Leaf<'a> {
    cn: &'a str,
    sans: Vec<SanType>,
    eku: ExtendedKeyUsagePurpose,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    serial: SerialNumber,
}

impl Leaf<'_> {
    /// A client-auth leaf valid from an hour ago (clock skew) for [`LEAF_VALIDITY_DAYS`],
    /// with a fresh random serial.
    fn current(cn: &str, now: OffsetDateTime) -> Leaf<'_> {
        Leaf {
            cn,
            sans: Vec::new(),
            eku: ExtendedKeyUsagePurpose::ClientAuth,
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(LEAF_VALIDITY_DAYS),
            serial: random_serial(),
        }
    }
}

impl Ca {
    /// A new self-signed CA: CA:true, keyCertSign+cRLSign, SHA-256 subject key identifier.
    fn generate(cn: &str, now: OffsetDateTime) -> Result<Ca, rcgen::Error> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.key_identifier_method = KeyIdMethod::Sha256;
        params.serial_number = Some(random_serial());
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
        let cert = params.self_signed(&key)?;
        Ok(Ca { cert, key })
    }

    /// Re-creates a CA from its PEM certificate and PKCS#8 key, well enough to sign with:
    /// the same subject name (byte for byte), key usages and subject key identifier.
    ///
    /// This does by hand what rcgen's `CertificateParams::from_ca_cert_pem` does, so that the
    /// crate does not need rcgen's `x509-parser` feature. The re-made certificate itself is
    /// never written out.
    fn load(cert_path: &Path, key_path: &Path) -> Result<Ca, PkiError> {
        let cert_pem = fs::read(cert_path).map_err(io_err(cert_path))?;
        let key_pem = fs::read_to_string(key_path).map_err(io_err(key_path))?;
        let key = KeyPair::from_pem(&key_pem)?;

        let bad_cert = || PkiError::Gen(rcgen::Error::CouldNotParseCertificate);
        let (_, pem) = x509_parser::pem::parse_x509_pem(&cert_pem).map_err(|_| bad_cert())?;
        let x509 = pem.parse_x509().map_err(|_| bad_cert())?;
        if x509.public_key().raw != key.public_key_der().as_slice() {
            return Err(PkiError::Io {
                path: key_path.to_path_buf(),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("this key does not belong to {}", cert_path.display()),
                ),
            });
        }

        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(x509.subject())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = match x509.key_usage().map_err(|_| bad_cert())? {
            None => Vec::new(),
            Some(ku) => [
                (
                    ku.value.digital_signature(),
                    KeyUsagePurpose::DigitalSignature,
                ),
                (ku.value.key_cert_sign(), KeyUsagePurpose::KeyCertSign),
                (ku.value.crl_sign(), KeyUsagePurpose::CrlSign),
            ]
            .into_iter()
            .filter_map(|(set, purpose)| set.then_some(purpose))
            .collect(),
        };
        params.key_identifier_method = x509
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                    Some(KeyIdMethod::PreSpecified(id.0.to_vec()))
                }
                _ => None,
            })
            .unwrap_or(KeyIdMethod::Sha256);
        let cert = params.self_signed(&key)?;
        Ok(Ca { cert, key })
    }

    /// Issues an end-entity certificate with a fresh ECDSA P-256 key.
    fn issue(&self, leaf: &Leaf<'_>) -> Result<(Certificate, KeyPair), rcgen::Error> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(leaf.cn);
        params.subject_alt_names = leaf.sans.clone();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![leaf.eku.clone()];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(leaf.serial.clone());
        params.not_before = leaf.not_before;
        params.not_after = leaf.not_after;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok((cert, key))
    }

    /// A PEM CRL signed by this CA. Its authority key identifier uses the CA's own key
    /// identifier method, so it matches the CA's subject key identifier.
    fn crl(
        &self,
        number: u64,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        revoked_certs: Vec<RevokedCertParams>,
    ) -> Result<String, rcgen::Error> {
        CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: self.cert.params().key_identifier_method.clone(),
        }
        .signed_by(&self.cert, &self.key)?
        .pem()
    }
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn dns(name: &str) -> Result<SanType, rcgen::Error> {
    Ok(SanType::DnsName(Ia5String::try_from(name)?))
}

/// Converts a parsed X.509 name to rcgen's form, keeping each attribute's string type so the
/// issuer name in what we sign matches the CA's subject byte for byte.
fn distinguished_name(
    name: &x509_parser::x509::X509Name<'_>,
) -> Result<DistinguishedName, rcgen::Error> {
    use x509_parser::der_parser::asn1_rs::Tag;
    let bad = || rcgen::Error::CouldNotParseCertificate;
    let mut dn = DistinguishedName::new();
    for rdn in name.iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(bad()); // empty or multi-valued RDN: rcgen cannot express it
        };
        let oid: Vec<u64> = attr.attr_type().iter().ok_or_else(bad)?.collect();
        let value = attr.attr_value();
        let text = std::str::from_utf8(value.data).map_err(|_| bad())?;
        let value = match value.header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text.to_owned()),
            Tag::PrintableString => DnValue::PrintableString(PrintableString::try_from(text)?),
            Tag::Ia5String => DnValue::Ia5String(Ia5String::try_from(text)?),
            _ => return Err(bad()),
        };
        dn.push(DnType::from_oid(&oid), value);
    }
    Ok(dn)
}

/// A 16-byte positive serial number, unpredictable and distinct per call. (std's `RandomState`
/// is seeded from the OS RNG; ample for development certificates.)
fn random_serial() -> SerialNumber {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(count);
        hasher.write_u128(nanos);
        hasher.write_usize(i);
        chunk.copy_from_slice(&hasher.finish().to_be_bytes());
    }
    // Positive (top bit clear) and without a leading zero byte, so it encodes as 16 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether anything (even a dangling symlink) is at `path`.
fn exists(path: &Path) -> Result<bool, PkiError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Creates `path` with `mode` (a new file, never following a symlink there) and writes
/// `contents`. With `replace`, whatever is at `path` is removed first; without it an existing
/// file gives [`PkiError::Exists`].
fn write_file(path: &Path, contents: &str, mode: u32, replace: bool) -> Result<(), PkiError> {
    if replace {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(path)(e)),
            _ => {}
        }
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => PkiError::Exists(path.to_path_buf()),
            _ => io_err(path)(e),
        })?;
    // The umask may have narrowed `mode`; set it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(contents.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::client::WebPkiServerVerifier;
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
    use rustls::pki_types::{ServerName, UnixTime};
    use rustls::server::danger::ClientCertVerifier;
    use rustls::server::WebPkiClientVerifier;
    use rustls::{CertificateError, RootCertStore};
    use rustls_pki_types::pem::PemObject;
    use std::sync::Arc;
    use x509_parser::extensions::{GeneralName, ParsedExtension};

    struct Setup {
        _tmp: tempfile::TempDir,
        dev: DevCerts,
        fx: TestFixtures,
    }

    fn setup() -> Setup {
        let tmp = tempfile::Builder::new()
            .prefix("kim-pki-test")
            .tempdir()
            .unwrap();
        let out = tmp.path().join("certs");
        let dev = write_dev_certs(&out).unwrap();
        let fx = write_test_fixtures(&out).unwrap();
        Setup { _tmp: tmp, dev, fx }
    }

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(path)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    fn key(path: &Path) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_file(path).unwrap()
    }

    fn crl(path: &Path) -> CertificateRevocationListDer<'static> {
        CertificateRevocationListDer::from_pem_file(path).unwrap()
    }

    fn roots(path: &Path) -> Arc<RootCertStore> {
        let mut store = RootCertStore::empty();
        let (added, ignored) = store.add_parsable_certificates(certs(path));
        assert_eq!((added, ignored), (1, 0), "{}", path.display());
        Arc::new(store)
    }

    fn client_verifier(
        ca: &Path,
        crls: &[&Path],
        enforce_expiry: bool,
    ) -> Arc<dyn ClientCertVerifier> {
        let mut builder = WebPkiClientVerifier::builder_with_provider(roots(ca), provider())
            .with_crls(crls.iter().map(|p| crl(p)));
        if enforce_expiry {
            builder = builder.enforce_revocation_expiration();
        }
        builder.build().unwrap()
    }

    fn verify_client(verifier: &dyn ClientCertVerifier, cert: &Path) -> Result<(), rustls::Error> {
        let chain = certs(cert);
        verifier
            .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
            .map(|_| ())
    }

    fn server_verifier(ca: &Path) -> Arc<WebPkiServerVerifier> {
        WebPkiServerVerifier::builder_with_provider(roots(ca), provider())
            .build()
            .unwrap()
    }

    fn verify_server(ca: &Path, cert: &Path, name: &str) -> Result<(), rustls::Error> {
        let chain = certs(cert);
        let name = ServerName::try_from(name.to_owned()).unwrap();
        server_verifier(ca)
            .verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    fn cert_error(result: Result<(), rustls::Error>) -> CertificateError {
        match result {
            Err(rustls::Error::InvalidCertificate(e)) => e,
            other => panic!("expected InvalidCertificate, got {other:?}"),
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Runs a full in-memory TLS handshake; returns the first error from either side.
    fn handshake(
        client: rustls::ClientConfig,
        server: rustls::ServerConfig,
        name: &str,
    ) -> Result<(), rustls::Error> {
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let mut c = rustls::ClientConnection::new(Arc::new(client), name)?;
        let mut s = rustls::ServerConnection::new(Arc::new(server))?;
        for _ in 0..20 {
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(());
            }
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            s.read_tls(&mut &buf[..]).unwrap();
            s.process_new_packets()?;
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            c.read_tls(&mut &buf[..]).unwrap();
            c.process_new_packets()?;
        }
        panic!("handshake did not finish");
    }

    fn tls_pair(
        s: &Setup,
        client_cert: &(PathBuf, PathBuf),
    ) -> (rustls::ClientConfig, rustls::ServerConfig) {
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(client_verifier(&s.dev.police_ca, &[&s.fx.crl], true))
            .with_single_cert(certs(&s.dev.server_cert), key(&s.dev.server_key))
            .unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(&s.dev.ca_cert))
            .with_client_auth_cert(certs(&client_cert.0), key(&client_cert.1))
            .unwrap();
        (client, server)
    }

    fn parse<R>(
        path: &Path,
        f: impl FnOnce(&x509_parser::certificate::X509Certificate<'_>) -> R,
    ) -> R {
        let pem = fs::read(path).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let x509 = pem.parse_x509().unwrap();
        f(&x509)
    }

    fn sans(path: &Path) -> Vec<String> {
        parse(path, |x| {
            let Some(san) = x.subject_alternative_name().unwrap() else {
                return Vec::new();
            };
            san.value
                .general_names
                .iter()
                .map(|n| match n {
                    GeneralName::DNSName(d) => format!("DNS:{d}"),
                    GeneralName::URI(u) => format!("URI:{u}"),
                    GeneralName::IPAddress(ip) if ip.len() == 4 => {
                        format!("IP:{}", Ipv4Addr::from(<[u8; 4]>::try_from(*ip).unwrap()))
                    }
                    GeneralName::IPAddress(ip) => {
                        format!("IP:{}", Ipv6Addr::from(<[u8; 16]>::try_from(*ip).unwrap()))
                    }
                    other => format!("{other:?}"),
                })
                .collect()
        })
    }

    #[test]
    fn dev_certs_files_exist_with_modes() {
        let s = setup();
        let d = &s.dev;
        assert_eq!(d.ca_cert, d.dir.join("ca.crt"));
        assert_eq!(d.client_key, d.dir.join("police-client.key"));
        for cert in [&d.ca_cert, &d.server_cert, &d.police_ca, &d.client_cert] {
            assert!(cert.is_file(), "{}", cert.display());
            assert_eq!(mode(cert), 0o644, "{}", cert.display());
        }
        for k in [&d.ca_key, &d.server_key, &d.client_key] {
            assert_eq!(mode(k), 0o600, "{}", k.display());
            let pem = fs::read_to_string(k).unwrap();
            assert!(
                pem.starts_with("-----BEGIN PRIVATE KEY-----"),
                "{}",
                k.display()
            );
            assert!(matches!(key(k), PrivateKeyDer::Pkcs8(_)), "{}", k.display());
        }
        assert_eq!(
            fs::read(&d.police_ca).unwrap(),
            fs::read(&d.ca_cert).unwrap()
        );
        let chain = certs(&d.server_cert);
        assert_eq!(chain.len(), 2, "server.crt is leaf + CA");
        assert_eq!(chain[1], certs(&d.ca_cert)[0]);
        assert_eq!(certs(&d.client_cert).len(), 1);
    }

    #[test]
    fn fixture_files_exist_with_modes() {
        let s = setup();
        let f = &s.fx;
        let pairs = [
            &f.met_client,
            &f.uri_client,
            &f.unlisted_client,
            &f.other_ca_client,
            &f.expired_client,
            &f.revoked_client,
        ];
        for (cert, k) in pairs {
            assert_eq!(mode(cert), 0o644, "{}", cert.display());
            assert_eq!(mode(k), 0o600, "{}", k.display());
            assert!(matches!(key(k), PrivateKeyDer::Pkcs8(_)), "{}", k.display());
        }
        for p in [&f.other_ca, &f.crl, &f.expired_crl, &f.empty_crl] {
            assert_eq!(mode(p), 0o644, "{}", p.display());
        }
        assert_eq!(f.crl, s.dev.dir.join("crl.pem"));
        assert_eq!(f.other_ca, s.dev.dir.join("other-ca.crt"));
    }

    #[test]
    fn second_write_refuses_to_overwrite() {
        let s = setup();
        let before = fs::read(&s.dev.ca_key).unwrap();
        match write_dev_certs(&s.dev.dir) {
            Err(PkiError::Exists(p)) => assert_eq!(p, s.dev.ca_cert),
            other => panic!("expected Exists, got {other:?}"),
        }
        assert_eq!(fs::read(&s.dev.ca_key).unwrap(), before, "CA key untouched");
    }

    #[test]
    fn any_existing_target_blocks_everything() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("a/b");
        fs::create_dir_all(&out).unwrap();
        fs::write(out.join("police-client.key"), "mine").unwrap();
        let err = write_dev_certs(&out).unwrap_err();
        assert!(matches!(&err, PkiError::Exists(p) if p.ends_with("police-client.key")));
        assert!(err.to_string().contains("refusing to overwrite"), "{err}");
        assert!(!out.join("ca.key").exists(), "nothing written");
        assert_eq!(
            fs::read_to_string(out.join("police-client.key")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn creates_missing_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("x/y/z");
        let dev = write_dev_certs(&out).unwrap();
        assert!(dev.ca_cert.is_file());
    }

    #[test]
    fn police_client_accepted() {
        let s = setup();
        let v = client_verifier(&s.dev.police_ca, &[], false);
        verify_client(v.as_ref(), &s.dev.client_cert).unwrap();
    }

    #[test]
    fn same_ca_fixture_clients_accepted() {
        let s = setup();
        let v = client_verifier(&s.dev.police_ca, &[], false);
        for (cert, _) in [
            &s.fx.met_client,
            &s.fx.uri_client,
            &s.fx.unlisted_client,
            &s.fx.revoked_client,
        ] {
            verify_client(v.as_ref(), cert).unwrap_or_else(|e| panic!("{}: {e}", cert.display()));
        }
    }

    #[test]
    fn other_ca_client_rejected() {
        let s = setup();
        let v = client_verifier(&s.dev.police_ca, &[], false);
        let e = cert_error(verify_client(v.as_ref(), &s.fx.other_ca_client.0));
        assert_eq!(e, CertificateError::UnknownIssuer);
        // ...though it is a sound certificate for its own CA.
        let v = client_verifier(&s.fx.other_ca, &[], false);
        verify_client(v.as_ref(), &s.fx.other_ca_client.0).unwrap();
    }

    #[test]
    fn expired_client_rejected() {
        let s = setup();
        let v = client_verifier(&s.dev.police_ca, &[], false);
        let e = cert_error(verify_client(v.as_ref(), &s.fx.expired_client.0));
        assert!(
            matches!(
                e,
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn server_cert_is_not_a_client_cert() {
        let s = setup();
        let v = client_verifier(&s.dev.police_ca, &[], false);
        let e = cert_error(verify_client(v.as_ref(), &s.dev.server_cert));
        assert!(
            matches!(
                e,
                CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn crl_revokes_only_the_revoked_client() {
        let s = setup();
        let v = client_verifier(&s.dev.police_ca, &[&s.fx.crl], true);
        let e = cert_error(verify_client(v.as_ref(), &s.fx.revoked_client.0));
        assert_eq!(e, CertificateError::Revoked);
        verify_client(v.as_ref(), &s.dev.client_cert).unwrap();
        verify_client(v.as_ref(), &s.fx.met_client.0).unwrap();
        // Without that CRL the same certificate is fine.
        let v = client_verifier(&s.dev.police_ca, &[&s.fx.empty_crl], true);
        verify_client(v.as_ref(), &s.fx.revoked_client.0).unwrap();
        verify_client(v.as_ref(), &s.dev.client_cert).unwrap();
    }

    #[test]
    fn expired_crl_rejects_everyone_when_enforced() {
        let s = setup();
        let v = client_verifier(&s.dev.police_ca, &[&s.fx.expired_crl], true);
        let e = cert_error(verify_client(v.as_ref(), &s.dev.client_cert));
        assert!(
            matches!(
                e,
                CertificateError::ExpiredRevocationList
                    | CertificateError::ExpiredRevocationListContext { .. }
            ),
            "{e:?}"
        );
        // webpki's default ignores nextUpdate; kim must call enforce_revocation_expiration().
        let v = client_verifier(&s.dev.police_ca, &[&s.fx.expired_crl], false);
        verify_client(v.as_ref(), &s.dev.client_cert).unwrap();
    }

    #[test]
    fn server_cert_verifies_for_localhost_names() {
        let s = setup();
        for name in ["localhost", "127.0.0.1", "::1"] {
            verify_server(&s.dev.ca_cert, &s.dev.server_cert, name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let e = cert_error(verify_server(
            &s.dev.ca_cert,
            &s.dev.server_cert,
            "example.com",
        ));
        assert!(
            matches!(
                e,
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ),
            "{e:?}"
        );
        // A client cert is not a server cert, even for a name in its SAN.
        let e = cert_error(verify_server(&s.dev.ca_cert, &s.dev.client_cert, KENT_DNS));
        assert!(
            matches!(
                e,
                CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn full_mtls_handshake() {
        let s = setup();
        let (client, server) = tls_pair(&s, &(s.dev.client_cert.clone(), s.dev.client_key.clone()));
        handshake(client, server, "localhost").unwrap();
        let (client, server) = tls_pair(&s, &s.fx.uri_client);
        handshake(client, server, "127.0.0.1").unwrap();
        let (client, server) = tls_pair(&s, &s.fx.revoked_client);
        let e = cert_error(handshake(client, server, "localhost"));
        assert_eq!(e, CertificateError::Revoked);
        let (client, server) = tls_pair(&s, &s.fx.other_ca_client);
        let e = cert_error(handshake(client, server, "localhost"));
        assert_eq!(e, CertificateError::UnknownIssuer);
    }

    #[test]
    fn certificate_contents() {
        let s = setup();
        let ca_ski = parse(&s.dev.ca_cert, |x| {
            assert_eq!(x.subject().to_string(), "CN=kim dev CA");
            assert_eq!(x.subject(), x.issuer());
            assert!(x.basic_constraints().unwrap().unwrap().value.ca);
            let ku = x.key_usage().unwrap().unwrap().value;
            assert!(ku.key_cert_sign() && ku.crl_sign());
            let days =
                (x.validity().not_after.timestamp() - x.validity().not_before.timestamp()) / 86_400;
            assert!((825..=826).contains(&days), "{days}");
            x.iter_extensions()
                .find_map(|e| match e.parsed_extension() {
                    ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                    _ => None,
                })
                .expect("CA has a subject key identifier")
        });
        parse(&s.dev.client_cert, |x| {
            assert_eq!(x.subject().to_string(), "CN=Kent Police relay (dev)");
            assert_eq!(x.issuer().to_string(), "CN=kim dev CA");
            let eku = x.extended_key_usage().unwrap().unwrap().value;
            assert!(eku.client_auth && !eku.server_auth);
            let aki = x
                .iter_extensions()
                .find_map(|e| match e.parsed_extension() {
                    ParsedExtension::AuthorityKeyIdentifier(a) => {
                        a.key_identifier.as_ref().map(|k| k.0.to_vec())
                    }
                    _ => None,
                });
            assert_eq!(aki.as_ref(), Some(&ca_ski));
        });
        parse(&s.dev.server_cert, |x| {
            let eku = x.extended_key_usage().unwrap().unwrap().value;
            assert!(eku.server_auth && !eku.client_auth);
        });
        assert_eq!(
            sans(&s.dev.server_cert),
            ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
        );
        assert_eq!(sans(&s.dev.client_cert), [format!("DNS:{KENT_DNS}")]);
        assert_eq!(sans(&s.fx.met_client.0), ["DNS:relay.met-police.example"]);
        assert_eq!(
            sans(&s.fx.uri_client.0),
            ["URI:spiffe://police.example/durham"]
        );
        assert_eq!(sans(&s.fx.unlisted_client.0), ["DNS:relay.unknown.example"]);
        for p in [
            &s.fx.other_ca_client.0,
            &s.fx.expired_client.0,
            &s.fx.revoked_client.0,
        ] {
            assert_eq!(sans(p), [format!("DNS:{KENT_DNS}")], "{}", p.display());
        }
        assert_eq!(
            parse(&s.fx.revoked_client.0, |x| x.raw_serial().to_vec()),
            REVOKED_CLIENT_SERIAL
        );
        parse(&s.fx.expired_client.0, |x| {
            assert!(!x.validity().is_valid())
        });
    }

    #[test]
    fn serial_numbers_are_distinct() {
        let s = setup();
        let (d, f) = (&s.dev, &s.fx);
        let all = [
            &d.ca_cert,
            &d.server_cert,
            &d.client_cert,
            &f.met_client.0,
            &f.uri_client.0,
            &f.unlisted_client.0,
            &f.other_ca,
            &f.other_ca_client.0,
            &f.expired_client.0,
            &f.revoked_client.0,
        ];
        let mut serials: Vec<Vec<u8>> = all
            .iter()
            .map(|p| parse(p, |x| x.raw_serial().to_vec()))
            .collect();
        serials.sort();
        serials.dedup();
        assert_eq!(serials.len(), all.len());
    }

    #[test]
    fn crl_contents() {
        let s = setup();
        let ca_ski = parse(&s.dev.ca_cert, |x| {
            x.iter_extensions()
                .find_map(|e| match e.parsed_extension() {
                    ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                    _ => None,
                })
                .unwrap()
        });
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let check = |path: &Path, number: u32, revoked: &[&[u8]], valid_now: bool| {
            let der = crl(path);
            let (_, parsed) = x509_parser::parse_x509_crl(&der).unwrap();
            assert_eq!(
                parsed.issuer().to_string(),
                "CN=kim dev CA",
                "{}",
                path.display()
            );
            let listed: Vec<&[u8]> = parsed
                .iter_revoked_certificates()
                .map(|r| r.raw_serial())
                .collect();
            assert_eq!(listed, revoked, "{}", path.display());
            assert_eq!(
                parsed
                    .crl_number()
                    .and_then(|n| n.to_u32_digits().first().copied()),
                Some(number)
            );
            let next = parsed.next_update().unwrap().timestamp();
            assert_eq!(
                parsed.last_update().timestamp() <= now && now < next,
                valid_now,
                "{}",
                path.display()
            );
            let aki = parsed
                .extensions()
                .iter()
                .find_map(|e| match e.parsed_extension() {
                    ParsedExtension::AuthorityKeyIdentifier(a) => {
                        a.key_identifier.as_ref().map(|k| k.0.to_vec())
                    }
                    _ => None,
                });
            assert_eq!(aki.as_ref(), Some(&ca_ski), "{}", path.display());
        };
        check(&s.fx.crl, 1, &[&REVOKED_CLIENT_SERIAL], true);
        check(&s.fx.empty_crl, 2, &[], true);
        check(&s.fx.expired_crl, 3, &[], false);
    }

    #[test]
    fn fixtures_alone_make_dev_certs_first() {
        let tmp = tempfile::tempdir().unwrap();
        let fx = write_test_fixtures(tmp.path()).unwrap();
        let ca = tmp.path().join("ca.crt");
        assert!(ca.is_file() && tmp.path().join("police-client.key").is_file());
        let v = client_verifier(&ca, &[&fx.crl], true);
        verify_client(v.as_ref(), &fx.met_client.0).unwrap();
        verify_client(v.as_ref(), &tmp.path().join("police-client.crt")).unwrap();
    }

    #[test]
    fn fixtures_can_be_rewritten_with_same_ca() {
        let s = setup();
        let ca_before = fs::read(&s.dev.ca_cert).unwrap();
        let old_met = fs::read(&s.fx.met_client.0).unwrap();
        fs::set_permissions(&s.fx.met_client.1, fs::Permissions::from_mode(0o644)).unwrap();
        let fx = write_test_fixtures(&s.dev.dir).unwrap();
        assert_ne!(fs::read(&fx.met_client.0).unwrap(), old_met);
        assert_eq!(mode(&fx.met_client.1), 0o600);
        assert_eq!(fs::read(&s.dev.ca_cert).unwrap(), ca_before);
        let v = client_verifier(&s.dev.police_ca, &[&fx.crl], true);
        verify_client(v.as_ref(), &fx.met_client.0).unwrap();
        cert_error(verify_client(v.as_ref(), &fx.revoked_client.0));
    }

    #[test]
    fn fixtures_refuse_a_mismatched_ca_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dev = write_dev_certs(tmp.path()).unwrap();
        fs::copy(&dev.client_key, &dev.ca_key).unwrap();
        match write_test_fixtures(tmp.path()) {
            Err(PkiError::Io { path, source }) => {
                assert_eq!(path, dev.ca_key);
                assert_eq!(source.kind(), io::ErrorKind::InvalidData);
            }
            other => panic!("expected Io(InvalidData), got {other:?}"),
        }
    }

    #[test]
    fn fixtures_need_both_ca_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dev = write_dev_certs(tmp.path()).unwrap();
        fs::remove_file(&dev.ca_key).unwrap();
        match write_test_fixtures(tmp.path()) {
            Err(PkiError::Io { path, source }) => {
                assert_eq!(path, dev.ca_key);
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("expected Io(NotFound), got {other:?}"),
        }
    }
}

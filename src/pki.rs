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
    /// SAN DNS `relay.kent-police.example` and `relay.met-police.example`:
    /// names two forces (refused).
    pub two_forces_client: (PathBuf, PathBuf),
    /// SAN URI `SPIFFE://POLICE.EXAMPLE/DURHAM`: the path's case differs (refused).
    pub uri_path_case_client: (PathBuf, PathBuf),
    /// SAN URI `SPIFFE://POLICE.EXAMPLE/durham`: only scheme and host differ in case (durham).
    pub uri_host_case_client: (PathBuf, PathBuf),
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
    let two_forces = ca.issue(&Leaf {
        sans: vec![dns(KENT_DNS)?, dns("relay.met-police.example")?],
        ..Leaf::current("Two forces relay (dev)", now)
    })?;
    let uri_case = |u: &str| -> Result<_, rcgen::Error> {
        ca.issue(&client(
            "Durham Police relay (case)",
            SanType::URI(Ia5String::try_from(u)?),
        ))
    };
    let uri_path_case = uri_case("SPIFFE://POLICE.EXAMPLE/DURHAM")?;
    let uri_host_case = uri_case("SPIFFE://POLICE.EXAMPLE/durham")?;
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
        two_forces_client: pair("two-forces-client"),
        uri_path_case_client: pair("uri-path-case-client"),
        uri_host_case_client: pair("uri-host-case-client"),
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
        (&fixtures.two_forces_client, two_forces),
        (&fixtures.uri_path_case_client, uri_path_case),
        (&fixtures.uri_host_case_client, uri_host_case),
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
#[path = "pki_tests.rs"]
mod tests;

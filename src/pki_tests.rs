//! Tests of the parent module, kept in their own file.

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

fn client_verifier(ca: &Path, crls: &[&Path], enforce_expiry: bool) -> Arc<dyn ClientCertVerifier> {
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

fn parse<R>(path: &Path, f: impl FnOnce(&x509_parser::certificate::X509Certificate<'_>) -> R) -> R {
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

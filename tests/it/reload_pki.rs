//! Certificates and CRLs the reload tests make on the spot with rcgen: a
//! renewed server certificate from the dev CA, a second police CA with its
//! own clients and CRL, and an impostor CA that shares the dev CA's name.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertificateRevocationListParams,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::support::Env;

/// A CA that can sign here.
pub struct TestCa {
    pub cert: Certificate,
    pub key: KeyPair,
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

impl TestCa {
    /// A new self-signed CA named `cn`.
    pub fn new(cn: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name = name(cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.key_identifier_method = KeyIdMethod::Sha256;
        let now = OffsetDateTime::now_utc();
        p.not_before = now - Duration::hours(1);
        p.not_after = now + Duration::days(30);
        let cert = p.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// The dev CA of `env` (its key is in the install).
    pub fn dev(env: &Env) -> Self {
        let pem = std::fs::read_to_string(&env.certs.ca_cert).unwrap();
        let key = KeyPair::from_pem(&std::fs::read_to_string(&env.certs.ca_key).unwrap()).unwrap();
        let params = CertificateParams::from_ca_cert_pem(&pem).unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// A leaf with `sans`, `eku` and `serial`; (certificate PEM, key PEM, DER).
    pub fn issue(
        &self,
        sans: Vec<SanType>,
        eku: ExtendedKeyUsagePurpose,
        serial: &[u8],
    ) -> (String, String, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name = name("kim reload test leaf");
        p.subject_alt_names = sans;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![eku];
        p.use_authority_key_identifier_extension = true;
        p.serial_number = Some(SerialNumber::from_slice(serial));
        let now = OffsetDateTime::now_utc();
        p.not_before = now - Duration::hours(1);
        p.not_after = now + Duration::days(20);
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }

    /// A client certificate for `dns`, written to DIR/STEM.crt and .key.
    pub fn client(
        &self,
        dir: &Path,
        stem: &str,
        dns: &str,
        serial: &[u8],
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let (crt, key, _) = self.issue(
            vec![SanType::DnsName(dns.try_into().unwrap())],
            ExtendedKeyUsagePurpose::ClientAuth,
            serial,
        );
        let (c, k) = (
            dir.join(format!("{stem}.crt")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&c, crt).unwrap();
        std::fs::write(&k, key).unwrap();
        (c, k)
    }

    /// A v2 CRL revoking `serials`, valid from 5 minutes ago for a day (PEM).
    pub fn crl(&self, number: u64, serials: &[&[u8]]) -> rcgen::CertificateRevocationList {
        let now = OffsetDateTime::now_utc();
        CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + Duration::days(1),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(s),
                    revocation_time: now - Duration::minutes(10),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: self.cert.params().key_identifier_method.clone(),
        }
        .signed_by(&self.cert, &self.key)
        .unwrap()
    }
}

/// Writes a new server certificate (leaf + dev CA) and key over the
/// install's; returns the new leaf's DER.
pub fn renew_server_cert(env: &Env) -> Vec<u8> {
    let ca = TestCa::dev(env);
    let (crt, key, der) = ca.issue(
        vec![
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ],
        ExtendedKeyUsagePurpose::ServerAuth,
        b"kim-renewed-srv1",
    );
    let chain = crt + &std::fs::read_to_string(&env.certs.ca_cert).unwrap();
    std::fs::write(&env.certs.server_cert, chain).unwrap();
    std::fs::write(&env.certs.server_key, key).unwrap();
    der
}

/// A DER length header: (content length, header size).
fn header(b: &[u8]) -> (usize, usize) {
    match b[1] {
        n if n < 0x80 => (n as usize, 2),
        0x81 => (b[2] as usize, 3),
        0x82 => (((b[2] as usize) << 8) | b[3] as usize, 4),
        _ => panic!("unexpected DER length"),
    }
}

fn sequence(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x30];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// The DER of the v2 CRL in `pem` with its version field taken out: a
/// version 1 CRL (its signature no longer matches; the version is checked
/// first).
pub fn version_1_crl(pem: &Path) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateRevocationListDer::from_pem_file(pem).unwrap();
    let der = der.as_ref();
    let (_, outer) = header(der);
    let tbs = &der[outer..];
    let (len, start) = header(tbs);
    let content = &tbs[start..start + len];
    assert_eq!(&content[..3], &[0x02, 0x01, 0x01], "a version 2 CRL");
    let mut out = sequence(&content[3..]);
    out.extend_from_slice(&tbs[start + len..]);
    sequence(&out)
}

//! Unit tests of CRL reading: PEM with several CRLs, DER, and each refusal
//! naming the file and why.

use super::*;
use crate::pki::{write_dev_certs, write_test_fixtures};

struct Fx {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    cas: Vec<CertificateDer<'static>>,
    crl: PathBuf,
}

fn fx() -> Fx {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let dev = write_dev_certs(&dir).unwrap();
    let fx = write_test_fixtures(&dir).unwrap();
    let cas = CertificateDer::pem_file_iter(&dev.police_ca)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    Fx {
        _tmp: tmp,
        dir,
        cas,
        crl: fx.crl,
    }
}

fn der_of(pem: &Path) -> Vec<u8> {
    CertificateRevocationListDer::from_pem_file(pem)
        .unwrap()
        .as_ref()
        .to_vec()
}

/// A DER header (tag, length) and where its content starts.
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

/// `der` (a v2 CRL) with its version field taken out: a version 1 CRL (the
/// signature no longer matches, which the version check comes before).
fn as_version_1(der: &[u8]) -> Vec<u8> {
    let (_, outer_start) = header(der);
    let tbs = &der[outer_start..];
    let (tbs_len, tbs_start) = header(tbs);
    let tbs_content = &tbs[tbs_start..tbs_start + tbs_len];
    assert_eq!(&tbs_content[..3], &[0x02, 0x01, 0x01], "version 2 first");
    let rest = &tbs[tbs_start + tbs_len..];
    let mut content = sequence(&tbs_content[3..]);
    content.extend_from_slice(rest);
    sequence(&content)
}

#[test]
fn pem_and_der_crls_load() {
    let f = fx();
    let pem = load_file(&f.crl, &f.cas).unwrap();
    assert_eq!(pem.len(), 1);
    assert!(pem[0].next_update.is_some());
    let der_path = f.dir.join("crl.der");
    std::fs::write(&der_path, der_of(&f.crl)).unwrap();
    let der = load_file(&der_path, &f.cas).unwrap();
    assert_eq!(der[0].der.as_ref(), pem[0].der.as_ref());
    // Two CRLs in one PEM file: both read.
    let two = f.dir.join("two.pem");
    let text = std::fs::read_to_string(&f.crl).unwrap();
    std::fs::write(&two, format!("{text}{text}")).unwrap();
    assert_eq!(load_file(&two, &f.cas).unwrap().len(), 2);
}

#[test]
fn a_version_1_crl_is_refused_naming_the_file() {
    let f = fx();
    let v1 = f.dir.join("v1.der");
    std::fs::write(&v1, as_version_1(&der_of(&f.crl))).unwrap();
    let e = load_file(&v1, &f.cas).unwrap_err().to_string();
    assert!(e.contains("version 1 CRL") && e.contains("v1.der"), "{e}");
}

#[test]
fn garbage_and_empty_pem_are_not_a_crl() {
    let f = fx();
    let junk = f.dir.join("junk.crl");
    std::fs::write(&junk, b"\x30\x03\x02\x01\x01 trailing").unwrap();
    let e = load_file(&junk, &f.cas).unwrap_err().to_string();
    assert!(e.contains("junk.crl") && e.contains("not a CRL"), "{e}");
    // A PEM file holding a certificate, not a CRL.
    let cert = f.dir.join("ca.crt");
    let e = load_file(&cert, &f.cas).unwrap_err().to_string();
    assert!(
        e.contains("not a CRL") && e.contains("BEGIN X509 CRL"),
        "{e}"
    );
}

#[test]
fn a_crl_of_a_ca_not_in_client_ca_is_refused() {
    let f = fx();
    // The other CA's certificate alone as the bundle: the dev CA's CRL
    // has no issuer there.
    let other = CertificateDer::pem_file_iter(f.dir.join("other-ca.crt"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let e = load_file(&f.crl, &other).unwrap_err().to_string();
    assert!(e.contains("not issued by a CA in client_ca"), "{e}");
}

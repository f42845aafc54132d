//! Mutual TLS: who gets in, who is refused at the handshake, who gets 403.

use std::path::Path;

use hyper::Method;
use kim::police_client::PoliceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{rt, simple, Env, Options};

/// Connects and sends one request: `Ok(status)` if an HTTP answer came back,
/// `Err(reason)` if TLS refused us (at the handshake or on first read).
async fn try_post(
    client: &PoliceClient,
    addr: std::net::SocketAddr,
    reference: &str,
) -> Result<u16, String> {
    let mut conn = client.connect(addr).await.map_err(|e| e.to_string())?;
    conn.send(Method::POST, "/v1/notifications", Some(&simple(reference)))
        .await
        .map(|a| a.status)
        .map_err(|e| e.to_string())
}

fn refused(env: &Env, cert: &Path, key: &Path, kim_addr: std::net::SocketAddr, why: &str) {
    let client = env.client((cert, key));
    let r = rt().block_on(try_post(&client, kim_addr, "KNT/REFUSED/1"));
    assert!(
        r.is_err(),
        "{why}: expected a refused handshake, got HTTP {r:?}"
    );
}

#[test]
fn listed_force_is_accepted_and_others_are_refused_or_forbidden() {
    let env = Env::new();
    let kim = env.start();
    let rt = rt();

    // A listed force with a valid certificate: 202.
    assert_eq!(
        rt.block_on(try_post(&env.kent(), kim.addr, "KNT/1")),
        Ok(202)
    );
    // A force identified by a SAN URI: 202.
    let durham = env.client((&env.fx.uri_client.0, &env.fx.uri_client.1));
    assert_eq!(rt.block_on(try_post(&durham, kim.addr, "DUR/1")), Ok(202));

    // CA-valid but not listed: the handshake completes, every answer is 403.
    let unlisted = env.client((&env.fx.unlisted_client.0, &env.fx.unlisted_client.1));
    assert_eq!(rt.block_on(try_post(&unlisted, kim.addr, "X/1")), Ok(403));
    let a = rt
        .block_on(unlisted.once(kim.addr, Method::GET, "/healthz", None))
        .unwrap();
    assert_eq!(a.status, 403);
    assert_eq!(a.headers["content-type"], "application/problem+json");

    // Signed by another CA, expired: refused at the handshake.
    refused(
        &env,
        &env.fx.other_ca_client.0,
        &env.fx.other_ca_client.1,
        kim.addr,
        "other CA",
    );
    refused(
        &env,
        &env.fx.expired_client.0,
        &env.fx.expired_client.1,
        kim.addr,
        "expired",
    );

    // No client certificate at all: refused.
    let anonymous = PoliceClient::new(&env.certs.ca_cert, None).unwrap();
    assert!(rt
        .block_on(try_post(&anonymous, kim.addr, "ANON/1"))
        .is_err());

    // The refusals are logged; only kent's and durham's notifications got in.
    assert!(kim.wait_for_log("TLS handshake refused"));
    let log = kim.log_text();
    let accepted = log.lines().filter(|l| l.contains("status=202")).count();
    assert_eq!(accepted, 2, "{log}");
}

#[test]
fn revoked_certificate_is_refused_with_a_crl() {
    let env = Env::new();
    env.write_config(&Options {
        crls: vec![env.fx.crl.clone()],
        ..Options::default()
    });
    let kim = env.start();
    refused(
        &env,
        &env.fx.revoked_client.0,
        &env.fx.revoked_client.1,
        kim.addr,
        "revoked",
    );
    assert_eq!(
        rt().block_on(try_post(&env.kent(), kim.addr, "KNT/2")),
        Ok(202)
    );
}

#[test]
fn revoked_certificate_gets_in_without_the_crl() {
    // The negative of the test above: the CRL is what refuses it.
    let env = Env::new();
    let kim = env.start();
    let revoked = env.client((&env.fx.revoked_client.0, &env.fx.revoked_client.1));
    assert_eq!(
        rt().block_on(try_post(&revoked, kim.addr, "KNT/3")),
        Ok(202)
    );
}

#[test]
fn an_expired_crl_refuses_everyone() {
    let env = Env::new();
    env.write_config(&Options {
        crls: vec![env.fx.expired_crl.clone()],
        ..Options::default()
    });
    let kim = env.start();
    refused(
        &env,
        &env.certs.client_cert,
        &env.certs.client_key,
        kim.addr,
        "expired CRL",
    );
}

#[test]
fn tls12_with_aead_is_allowed() {
    let env = Env::new();
    let kim = env.start();
    let c = PoliceClient::with_versions(
        &env.certs.ca_cert,
        Some((&env.certs.client_cert, &env.certs.client_key)),
        &[&rustls::version::TLS12],
    )
    .unwrap();
    assert_eq!(rt().block_on(try_post(&c, kim.addr, "KNT/12")), Ok(202));
}

/// A TLS 1.1 ClientHello (record and hello version 0x0302, CBC suites, no
/// supported_versions extension), written out by hand because no maintained
/// client here will still speak TLS 1.1.
fn tls11_client_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x02]; // client_version TLS 1.1
    hello.extend_from_slice(&[0x11; 32]); // random
    hello.push(0); // session id
    let suites: [u16; 4] = [0xc013, 0xc014, 0x002f, 0x0035];
    hello.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        hello.extend_from_slice(&s.to_be_bytes());
    }
    hello.extend_from_slice(&[1, 0]); // compression: null
    let mut ext = Vec::new();
    // server_name "localhost"
    let name = b"localhost";
    let mut sni = vec![0x00];
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    let mut sni_list = (sni.len() as u16).to_be_bytes().to_vec();
    sni_list.extend_from_slice(&sni);
    ext.extend_from_slice(&[0x00, 0x00]);
    ext.extend_from_slice(&(sni_list.len() as u16).to_be_bytes());
    ext.extend_from_slice(&sni_list);
    // supported_groups (secp256r1) and ec_point_formats
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17]);
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hello.extend_from_slice(&ext);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&hello);
    let mut rec = vec![0x16, 0x03, 0x02];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

#[test]
fn tls11_is_refused_at_the_handshake() {
    let env = Env::new();
    let kim = env.start();
    let reply = rt().block_on(async {
        let mut s = tokio::net::TcpStream::connect(kim.addr).await.unwrap();
        s.write_all(&tls11_client_hello()).await.unwrap();
        let mut buf = vec![0u8; 64];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .unwrap_or(0);
        buf.truncate(n);
        buf
    });
    // Either an alert record (content type 21) or a closed connection; never
    // a ServerHello (content type 22).
    assert!(
        reply.is_empty() || reply[0] == 21,
        "server answered {reply:02x?}"
    );
    if !reply.is_empty() {
        // protocol_version (70) or handshake_failure (40): a fatal alert.
        assert_eq!(reply[5], 2, "fatal alert level");
    }
    assert!(kim.wait_for_log("TLS handshake refused"));
}

/// A POST and a GET of `receipt` (another force's) with one certificate.
fn post_and_get(
    env: &Env,
    cert: &(std::path::PathBuf, std::path::PathBuf),
    addr: std::net::SocketAddr,
    reference: &str,
    receipt: &str,
) -> (u16, u16) {
    let rt = rt();
    let client = env.client((&cert.0, &cert.1));
    let post = rt.block_on(try_post(&client, addr, reference)).unwrap();
    let path = format!("/v1/notifications/{receipt}");
    let get = rt
        .block_on(client.once(addr, Method::GET, &path, None))
        .unwrap()
        .status;
    (post, get)
}

#[test]
fn a_certificate_naming_two_forces_or_a_uri_path_in_another_case_is_forbidden() {
    let env = Env::new();
    let kim = env.start();
    let fx = &env.fx;
    let rt = rt();
    let kent = rt
        .block_on(env.kent().once(
            kim.addr,
            Method::POST,
            "/v1/notifications",
            Some(&simple("KNT/TWO/1")),
        ))
        .unwrap();
    assert_eq!(kent.status, 202);
    let kent_receipt = kent.json()["receipt_id"].as_str().unwrap().to_owned();
    let durham = rt
        .block_on(env.client((&fx.uri_client.0, &fx.uri_client.1)).once(
            kim.addr,
            Method::POST,
            "/v1/notifications",
            Some(&simple("DUR/OK/1")),
        ))
        .unwrap();
    assert_eq!(durham.status, 202);
    let durham_receipt = durham.json()["receipt_id"].as_str().unwrap().to_owned();

    // SANs of kent and met: neither force (not the first in the config),
    // so kent's receipt stays kent's.
    assert_eq!(
        post_and_get(
            &env,
            &fx.two_forces_client,
            kim.addr,
            "TWO/1",
            &kent_receipt
        ),
        (403, 403)
    );
    assert!(kim.wait_for_log("client certificate names more than one force"));
    let log = kim.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("more than one force"))
        .unwrap();
    assert!(line.contains("kent") && line.contains("met"), "{line}");
    // A URI SAN whose path differs in case: not durham.
    assert_eq!(
        post_and_get(
            &env,
            &fx.uri_path_case_client,
            kim.addr,
            "DUR/CASE/1",
            &durham_receipt
        ),
        (403, 403)
    );
    // Scheme and host in capitals, the path exact: durham (RFC 3986).
    assert_eq!(
        post_and_get(
            &env,
            &fx.uri_host_case_client,
            kim.addr,
            "DUR/HOST/1",
            &durham_receipt
        ),
        (202, 200)
    );
    // The right certificates still get in.
    assert_eq!(
        post_and_get(&env, &fx.uri_client, kim.addr, "DUR/OK/2", &durham_receipt),
        (202, 200)
    );
    assert_eq!(
        post_and_get(&env, &fx.met_client, kim.addr, "MET/OK/1", &kent_receipt),
        (202, 404)
    );
    let accepted = kim
        .log_text()
        .lines()
        .filter(|l| l.contains("status=202"))
        .count();
    assert_eq!(accepted, 5);
}

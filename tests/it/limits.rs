//! Bounds on the listener: header timeout (a slow-loris client is cut off),
//! handshake timeout, and the connection cap.

use std::time::{Duration, Instant};

use hyper::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{rt, simple, Env, Options};

fn env_with_limits(limits: &str) -> Env {
    let env = Env::new();
    env.write_config(&Options {
        limits: Some(limits.to_owned()),
        ..Options::default()
    });
    env
}

#[test]
fn a_client_sending_headers_byte_by_byte_is_cut_off() {
    let env = env_with_limits("header_timeout = \"1s\"");
    let kim = env.start();
    let client = env.kent();
    let (cut_after, bytes_sent) = rt().block_on(async {
        let mut tls = client.connect_tls(kim.addr).await.unwrap();
        let request = b"POST /v1/notifications HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let start = Instant::now();
        let mut sent = 0;
        for b in request.iter() {
            if tls.write_all(&[*b]).await.is_err() || tls.flush().await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            if start.elapsed() > Duration::from_secs(8) {
                break;
            }
        }
        // Whatever was written, the server must have closed the connection
        // (possibly after a 408): reading reaches EOF or an error quickly.
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), tls.read_to_end(&mut buf)).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        assert!(!text.contains(" 202 "), "slow request was served: {text}");
        (start.elapsed(), sent)
    });
    // At 10 bytes/s a 1 s header timeout allows about 10 bytes; without the
    // timeout the loop would write 80 before its own 8 s cap.
    assert!(
        bytes_sent < 35,
        "the server kept reading slow headers for {bytes_sent} bytes over {cut_after:?}"
    );
    // The daemon is still serving others.
    let a = rt()
        .block_on(env.kent().once(
            kim.addr,
            Method::POST,
            "/v1/notifications",
            Some(&simple("KNT/AFTER")),
        ))
        .unwrap();
    assert_eq!(a.status, 202);
}

#[test]
fn a_silent_client_is_cut_off_by_the_handshake_timeout() {
    let env = env_with_limits("handshake_timeout = \"1s\"");
    let kim = env.start();
    let closed = rt().block_on(async {
        let mut s = tokio::net::TcpStream::connect(kim.addr).await.unwrap();
        let mut buf = [0u8; 16];
        // Send nothing: the server must hang up after about 1 s.
        tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await
    });
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    assert!(kim.wait_for_log("TLS handshake timed out"));
}

#[test]
fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let env = env_with_limits("max_connections = 2");
    let kim = env.start();
    let kent = env.kent();
    rt().block_on(async {
        let mut a = kent.connect(kim.addr).await.unwrap();
        let _b = kent.connect(kim.addr).await.unwrap();
        assert_eq!(
            a.send(Method::GET, "/healthz", None).await.unwrap().status,
            200
        );
        // The third connection completes its handshake (the slot is taken
        // only after it) but is not served while two are open.
        let mut c = tokio::time::timeout(Duration::from_secs(5), kent.connect(kim.addr))
            .await
            .expect("the handshake is not held up by the cap")
            .unwrap();
        let third = tokio::spawn(async move {
            let r = c
                .send(Method::GET, "/healthz", None)
                .await
                .map(|a| a.status);
            (r, c)
        });
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            !third.is_finished(),
            "a third connection was served beyond max_connections = 2"
        );
        // When one closes, the third is served.
        drop(a);
        let (status, _c) = tokio::time::timeout(Duration::from_secs(5), third)
            .await
            .expect("served once a slot is free")
            .unwrap();
        assert_eq!(status.unwrap(), 200);
    });
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_idle_timeout_and_frees_its_slot() {
    let env =
        env_with_limits("max_connections = 1\nidle_timeout = \"1s\"\nheader_timeout = \"10s\"");
    let kim = env.start();
    let kent = env.kent();
    rt().block_on(async {
        let mut a = kent.connect(kim.addr).await.unwrap();
        // Busy within the limit: the connection stays.
        for _ in 0..3 {
            assert_eq!(
                a.send(Method::GET, "/healthz", None).await.unwrap().status,
                200
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Idle past it: closed, and the one slot is free for another client.
        tokio::time::sleep(Duration::from_millis(2000)).await;
        assert!(
            a.send(Method::GET, "/healthz", None).await.is_err(),
            "an idle connection was kept past idle_timeout"
        );
        let mut b = tokio::time::timeout(Duration::from_secs(5), kent.connect(kim.addr))
            .await
            .unwrap()
            .unwrap();
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            b.send(Method::GET, "/healthz", None),
        )
        .await
        .expect("served: the idle connection gave its slot back")
        .unwrap();
        assert_eq!(answer.status, 200);
    });
}

#[test]
fn a_burst_of_100_new_police_connections_from_one_address_all_get_through() {
    // A force's system behind one (NAT) address opening many connections at
    // once is not an attack: none of its handshakes may be closed for another.
    let env = Env::new();
    let kim = env.start();
    let kent = env.kent();
    let failed = rt().block_on(async {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let kent = kent.clone();
                let addr = kim.addr;
                tokio::spawn(async move {
                    match kent.once(addr, Method::GET, "/healthz", None).await {
                        Ok(a) if a.status == 200 => 0,
                        _ => 1,
                    }
                })
            })
            .collect();
        let mut failed = 0;
        for t in tasks {
            failed += t.await.unwrap();
        }
        failed
    });
    assert_eq!(
        failed, 0,
        "{failed} of 100 concurrent new connections failed"
    );
}

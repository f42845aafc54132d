//! CRLs kim fetches itself (`[server] crl_urls`, issue 13): a CRL served
//! over loopback HTTP by the test is fetched and enforced at the handshake,
//! an older one and one from a CA outside client_ca are ignored with a log
//! line naming the URL, and the last good copy is used after a restart
//! with the distribution point gone.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::reload::{edit_config, post, revoked, wait_until};
use crate::reload_pki::TestCa;
use crate::support::Env;

/// A tiny HTTP/1.0 server on loopback answering every GET with `body`
/// (404 while it is `None`); stops when dropped, or after two minutes.
pub struct CrlServer {
    pub url: String,
    body: Arc<Mutex<Option<Vec<u8>>>>,
    pub hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CrlServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/ca/police.crl", listener.local_addr().unwrap());
        let body: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, h, s) = (body.clone(), hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            while !s.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(120) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                h.fetch_add(1, Ordering::Relaxed);
                let answer = match b.lock().unwrap().clone() {
                    Some(body) => {
                        let mut a = format!(
                            "HTTP/1.0 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        a.extend_from_slice(&body);
                        a
                    }
                    None => b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                };
                let _ = conn.write_all(&answer);
            }
        });
        Self {
            url,
            body,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    pub fn serve(&self, body: Vec<u8>) {
        *self.body.lock().unwrap() = Some(body);
    }

    /// Waits (at most 10 s) until the server was asked `n` more times.
    pub fn wait_hits(&self, more: usize) {
        let target = self.hits.load(Ordering::Relaxed) + more;
        assert!(
            wait_until(Duration::from_secs(10), || self
                .hits
                .load(Ordering::Relaxed)
                >= target)
            .is_some(),
            "kim did not fetch the CRL URL"
        );
    }
}

impl Drop for CrlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The config with `[server] crl_urls = [url]`, `crl_refresh = "1s"`.
pub fn config_with_url(env: &Env, url: &str) {
    edit_config(env, |t| {
        t.replacen(
            "\n[[forces]]",
            &format!("crl_urls = [\"{url}\"]\ncrl_refresh = \"1s\"\n\n[[forces]]"),
            1,
        )
    });
}

#[test]
fn a_crl_fetched_over_http_is_enforced_a_stale_one_ignored_and_kept_across_restart() {
    let env = Env::new();
    let ca = TestCa::dev(&env);
    let server = CrlServer::start();
    server.serve(ca.crl(5, &[]).der().to_vec());
    config_with_url(&env, &server.url);
    let kim = env.start();
    server.wait_hits(1);
    assert!(
        kim.wait_for_log("fetched a newer CRL"),
        "{}",
        kim.log_text()
    );
    assert_eq!(post(&revoked(&env), kim.addr, "KNT/URL/1"), Ok(202));

    // A newer CRL (number 6) revoking the client: refused at the handshake.
    server.serve(
        ca.crl(6, &[&kim::pki::REVOKED_CLIENT_SERIAL])
            .pem()
            .unwrap()
            .into_bytes(),
    );
    let took = wait_until(Duration::from_secs(8), || {
        post(&revoked(&env), kim.addr, "KNT/URL/2").is_err()
    })
    .expect("the fetched CRL was not enforced");
    eprintln!("fetched CRL enforced after {} ms", took.as_millis());
    assert_eq!(post(&env.kent(), kim.addr, "KNT/URL/3"), Ok(202));
    assert_eq!(post(&env.met(), kim.addr, "MET/URL/1"), Ok(202));

    // An older one (number 4, revoking nothing): ignored, named, still refused.
    server.serve(ca.crl(4, &[]).der().to_vec());
    server.wait_hits(2);
    assert!(
        kim.wait_for_log("is older than the one held"),
        "{}",
        kim.log_text()
    );
    let log = kim.log_text();
    let line = log.lines().rfind(|l| l.contains("is older")).unwrap();
    assert!(line.contains(&server.url), "{line}");
    assert!(post(&revoked(&env), kim.addr, "KNT/URL/4").is_err());

    // One from a CA outside client_ca: ignored, named.
    server.serve(TestCa::new("kim stranger CA").crl(99, &[]).der().to_vec());
    server.wait_hits(2);
    assert!(
        kim.wait_for_log("not issued by a CA in client_ca"),
        "{}",
        kim.log_text()
    );
    assert!(post(&revoked(&env), kim.addr, "KNT/URL/5").is_err());
    assert!(kim.terminate(Duration::from_secs(30)).success());

    // Restart with the distribution point gone: the kept copy is in force
    // from the first handshake.
    drop(server);
    let kim = env.start();
    assert!(post(&revoked(&env), kim.addr, "KNT/URL/6").is_err());
    assert_eq!(post(&env.kent(), kim.addr, "KNT/URL/7"), Ok(202));
    assert!(kim.wait_for_log("not fetched"), "{}", kim.log_text());
    let metrics = crate::reload::metrics_text(kim.metrics.unwrap());
    assert!(
        metrics.contains("kim_crl_next_update_seconds{source=\"http://127.0.0.1:"),
        "{metrics}"
    );
}

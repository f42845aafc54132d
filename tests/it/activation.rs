//! Socket activation (issue 13 item 4): the test holds the police listening
//! socket, as systemd's kim.socket does, and starts the real kim with it as
//! fd 3 (`LISTEN_FDS=1`, `LISTEN_PID`, `LISTEN_FDNAMES=police`). kim is
//! stopped and started again while clients post on fresh connections: none
//! is refused, and every notification that got a 202 is in the store.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::Method;
use kim::police_client::ClientError;

use crate::support::{rt, simple, Env, Kim};

/// `sh` moves its stdin (the listening socket) to fd 3, sets the variables
/// systemd sets (its own pid, which `exec` keeps, as LISTEN_PID) and execs
/// kim.
const ACTIVATE: &str = "exec 3<&0 0</dev/null; \
    LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=police exec \"$0\" \"$@\"";

/// Client tasks posting in a loop, one fresh connection per request.
const CLIENTS: usize = 6;
/// Restarts under load.
const RESTARTS: usize = 2;

/// Points `[server] listen` (the first `listen` in the file) at `addr`.
fn listen_on(env: &Env, addr: SocketAddr) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    let text = text.replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{addr}\""),
        1,
    );
    std::fs::write(&env.config, text).unwrap();
}

fn start_activated(env: &Env, socket: &TcpListener) -> Kim {
    let fd: OwnedFd = socket.try_clone().unwrap().into();
    Kim::start_with_stdin(
        &["sh", "-c", ACTIVATE],
        &env.config,
        &env.path("kim.log"),
        Some(Stdio::from(fd)),
    )
}

#[derive(Default)]
struct Tally {
    accepted: Vec<String>,
    refused: usize,
    /// Other failures (not refused): described.
    failed: Vec<String>,
}

fn is_refused(e: &ClientError) -> bool {
    matches!(e, ClientError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// Posts from `CLIENTS` tasks to `addr` until `stop`, while `restart` runs
/// `RESTARTS` times; returns the tally and the time each restart took.
fn under_load(env: &Env, addr: SocketAddr, mut restart: impl FnMut()) -> (Tally, Vec<Duration>) {
    let rt = rt();
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let client = env.kent();
            let (stop, tally) = (stop.clone(), tally.clone());
            rt.spawn(async move {
                let started = Instant::now();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                    n += 1;
                    let body = simple(&format!("KNT/ACT/{i}/{n}"));
                    let answer = tokio::time::timeout(
                        Duration::from_secs(30),
                        client.once(addr, Method::POST, "/v1/notifications", Some(&body)),
                    )
                    .await;
                    {
                        let mut t = tally.lock().unwrap();
                        match answer {
                            Ok(Ok(a)) if a.status == 202 => t
                                .accepted
                                .push(a.json()["receipt_id"].as_str().unwrap().to_owned()),
                            Ok(Ok(a)) => t.failed.push(format!("HTTP {}", a.status)),
                            Ok(Err(e)) if is_refused(&e) => t.refused += 1,
                            Ok(Err(e)) => t.failed.push(e.to_string()),
                            Err(_) => t.failed.push("no answer within 30 s".into()),
                        }
                    }
                    if started.elapsed() > Duration::from_secs(60) {
                        break;
                    }
                    // Refused connects return at once: do not spin.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut took = Vec::new();
    for _ in 0..RESTARTS {
        let t = Instant::now();
        restart();
        took.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    (tally, took)
}

/// Every receipt in `accepted` reads back from the running kim.
fn all_kept(env: &Env, addr: SocketAddr, accepted: &[String]) {
    rt().block_on(async {
        let mut c = env.kent().connect(addr).await.unwrap();
        for r in accepted {
            let a = c
                .send(Method::GET, &format!("/v1/notifications/{r}"), None)
                .await
                .unwrap();
            assert_eq!(
                a.status, 200,
                "receipt {r} got a 202 but is not in the store"
            );
        }
    });
}

#[test]
fn a_socket_activated_restart_under_load_refuses_no_connection() {
    let env = Env::new();
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    listen_on(&env, addr);
    let kim = Arc::new(Mutex::new(Some(start_activated(&env, &socket))));
    {
        let k = kim.lock().unwrap();
        let k = k.as_ref().unwrap();
        assert_eq!(k.addr, addr);
        assert!(k.log_text().contains("activated=true"), "{}", k.log_text());
    }
    let (tally, took) = under_load(&env, addr, || {
        let old = kim.lock().unwrap().take().unwrap();
        let status = old.terminate(Duration::from_secs(30));
        assert!(status.success(), "kim exited {status:?}");
        *kim.lock().unwrap() = Some(start_activated(&env, &socket));
    });
    eprintln!(
        "socket-activated: {RESTARTS} restarts (each {took:?}) under load from {CLIENTS} clients: \
         {} accepted, {} refused, {} other failures {:?}",
        tally.accepted.len(),
        tally.refused,
        tally.failed.len(),
        tally.failed
    );
    assert_eq!(tally.refused, 0, "connections refused during the restarts");
    assert!(tally.failed.is_empty(), "{:?}", tally.failed);
    assert!(
        tally.accepted.len() > 20,
        "too little load: {}",
        tally.accepted.len()
    );
    all_kept(&env, addr, &tally.accepted);
}

/// The figure the socket is for: kim binding `[server] listen` itself
/// refuses connections while it restarts.
#[test]
fn a_restart_without_the_socket_refuses_connections() {
    let env = Env::new();
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    listen_on(&env, addr);
    let kim = Arc::new(Mutex::new(Some(env.start())));
    let (tally, took) = under_load(&env, addr, || {
        let old = kim.lock().unwrap().take().unwrap();
        assert!(old.terminate(Duration::from_secs(30)).success());
        *kim.lock().unwrap() = Some(env.start());
    });
    eprintln!(
        "self-bound: {RESTARTS} restarts (each {took:?}) under load from {CLIENTS} clients: \
         {} accepted, {} refused, {} other failures",
        tally.accepted.len(),
        tally.refused,
        tally.failed.len()
    );
    assert!(tally.refused > 0, "expected refusals without the socket");
    all_kept(&env, addr, &tally.accepted);
}

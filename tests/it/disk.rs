//! A brief full disk (issue 10, item 2): the store on a 3 MiB tmpfs that a
//! filler file fills up. Once sled cannot write, kim answers 503 (never
//! 202), `/readyz` says why, the log stays quiet, and kim exits non-zero
//! so that systemd restarts it; the restart replays the accept journal and
//! nothing that got a 202 is lost. SIGTERM with a broken store ends within
//! the grace period. Needs root for the mount; skipped with a note if the
//! mount is not allowed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;
use kim::police_client::PoliceClient;

use crate::support::{rt, simple, Env, Kim, Options, KIM};

/// A small tmpfs, unmounted when dropped (also when the test fails).
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(dir: PathBuf) -> Option<Self> {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(Self { dir })
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Writes a file until the disk is full.
    fn fill(&self) {
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k", "count=100"])
            .arg(format!("of={}", self.filler().display()))
            .stderr(Stdio::null())
            .status();
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// CPU time (user + system) of a process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn log_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

/// One POST on a fresh connection: (status, receipt if 202); status 0 when
/// kim did not answer (it exited).
async fn post(client: &PoliceClient, addr: SocketAddr, reference: &str) -> (u16, Option<String>) {
    let (status, receipt) = post_body(client, addr, &simple(reference)).await;
    (status, receipt.filter(|_| status == 202))
}

/// POSTs `body` on a fresh connection: (status, the receipt the answer
/// names, if any); status 0 when kim did not answer (it exited). A 503
/// must say when to come back.
async fn post_body(client: &PoliceClient, addr: SocketAddr, body: &[u8]) -> (u16, Option<String>) {
    match client
        .once(addr, Method::POST, "/v1/notifications", Some(body))
        .await
    {
        Ok(a) => {
            if a.status == 503 {
                assert!(
                    a.headers.contains_key("retry-after"),
                    "503 without Retry-After"
                );
            }
            let receipt = serde_json::from_slice::<serde_json::Value>(&a.body)
                .ok()
                .and_then(|v| v["receipt_id"].as_str().map(str::to_owned));
            (a.status, receipt)
        }
        Err(_) => (0, None),
    }
}

/// `/readyz`: (status, body); status 0 when kim did not answer.
async fn readyz(client: &PoliceClient, addr: SocketAddr) -> (u16, String) {
    match client.once(addr, Method::GET, "/readyz", None).await {
        Ok(a) => (a.status, a.text()),
        Err(_) => (0, String::new()),
    }
}

/// Fills the disk, withdraws `first` (a write that waits for the group
/// flusher) and POSTs (one every 200 ms) until `/readyz` says the store is
/// broken (at most 20 s). Returns the receipts that got a 202.
fn break_the_store(
    disk: &SmallDisk,
    client: &PoliceClient,
    addr: SocketAddr,
    log: &Path,
    tag: &str,
    first: &str,
) -> Vec<String> {
    disk.fill();
    let started = Instant::now();
    let mut accepted = Vec::new();
    rt().block_on(async {
        let w = client
            .once(
                addr,
                Method::POST,
                &format!("/v1/notifications/{first}/withdraw"),
                Some(br#"{"reason": "sent in error"}"#),
            )
            .await
            .unwrap();
        eprintln!("withdrawal on a full disk: {}", w.status);
        for i in 0.. {
            let (status, receipt) = post(client, addr, &format!("KNT/{tag}/FULL/{i}")).await;
            accepted.extend(receipt);
            let (ready, body) = readyz(client, addr).await;
            // (The journal may fail first: /readyz says so, then the store.)
            if ready == 503 && !body.contains("accept journal cannot write") {
                eprintln!(
                    "store broken {:.1} s after the disk filled (last POST {status}): {body}",
                    started.elapsed().as_secs_f64()
                );
                assert!(
                    body.contains("store cannot write"),
                    "/readyz does not say why: {body}"
                );
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the store never broke on a full disk; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    accepted
}

/// Every receipt is there (GET 200) and moves past `queued` within 15 s.
fn all_there_and_moving(env: &Env, kim: &Kim, receipts: &[String]) {
    let client = env.kent();
    rt().block_on(async {
        let until = Instant::now() + Duration::from_secs(15);
        for r in receipts {
            loop {
                let a = client
                    .once(
                        kim.addr,
                        Method::GET,
                        &format!("/v1/notifications/{r}"),
                        None,
                    )
                    .await
                    .unwrap();
                assert_eq!(a.status, 200, "receipt {r} got a 202 but was lost");
                let state = a.json()["children"][0]["state"].clone();
                if state != "queued" {
                    break;
                }
                assert!(Instant::now() < until, "receipt {r} stays queued");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// `kim serve` on a full disk exits non-zero within 20 s and says why.
fn start_fails_on_a_full_disk(env: &Env) {
    // (The log goes to a file outside the small disk.)
    let log = env.path("start-on-full-disk.log");
    let started = Instant::now();
    let mut child = Command::new(KIM)
        .arg("--config")
        .arg(&env.config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("kim started on a full disk and stayed up without a store");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&log).unwrap();
    eprintln!(
        "start on a full disk: exit {status:?} after {:?}: {}",
        started.elapsed(),
        err.lines().last().unwrap_or_default()
    );
    assert!(!status.success());
    assert!(err.contains("disk full?"), "unclear: {err}");
}

/// The last line of the log that has `needle`.
fn last_line_with(log: &str, needle: &str) -> String {
    log.lines()
        .rev()
        .find(|l| l.contains(needle))
        .unwrap_or_default()
        .to_owned()
}

/// Sets up a kim with its store on a small tmpfs; `None` if mounting is not
/// allowed here.
fn on_small_disk(limits: &str) -> Option<(Env, SmallDisk)> {
    let env = Env::new();
    let Some(disk) = SmallDisk::mount(env.path("small-disk")) else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
        return None;
    };
    env.write_config(&Options {
        store_path: Some(disk.dir.join("store")),
        limits: Some(limits.to_owned()),
        // Checkpoints as often as possible: a writer that waits for the
        // flusher, as in production.
        extra: Some("[audit]\nsigning_key_file = \"audit.key\"\ncheckpoint_every = 1\n".into()),
        ..Options::default()
    });
    let key = env.path("audit.key");
    let (code, _, err) = env.kim(&["keys", "signing-init", "--out", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    Some((env, disk))
}

#[test]
fn a_brief_full_disk_gives_503s_a_quiet_log_and_an_exit_that_loses_nothing() {
    let Some((env, disk)) = on_small_disk("") else {
        return;
    };
    let kim = env.start();
    let client = env.kent();
    let (status, first) = rt().block_on(post(&client, kim.addr, "KNT/BRIEF/0"));
    assert_eq!(status, 202);
    let first = first.unwrap();
    let mut accepted = vec![first.clone()];

    let lines_before = log_lines(&kim.log);
    let cpu_before = cpu_ticks(kim.child.id()).unwrap();
    accepted.extend(break_the_store(
        &disk, &client, kim.addr, &kim.log, "BRIEF", &first,
    ));
    let broken_at = Instant::now();
    // The space comes back at once: the journal could write again, but the
    // store cannot apply. No 202 from now on.
    disk.free();
    let mut after_break = Vec::new();
    let mut exited = None;
    let mut cpu_last = cpu_before;
    let mut cpu_window = Duration::ZERO;
    let mut child = kim;
    rt().block_on(async {
        for i in 0.. {
            if let Some(s) = child.child.try_wait().unwrap() {
                exited = Some((s, broken_at.elapsed()));
                return;
            }
            if let Some(t) = cpu_ticks(child.child.id()) {
                cpu_last = t;
                cpu_window = broken_at.elapsed();
            }
            if broken_at.elapsed() > Duration::from_secs(40) {
                return;
            }
            let (status, receipt) =
                post(&client, child.addr, &format!("KNT/BRIEF/AFTER/{i}")).await;
            after_break.push(status);
            accepted.extend(receipt);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let lines = log_lines(&child.log) - lines_before;
    let secs = broken_at.elapsed().as_secs_f64();
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    let cpu = (cpu_last - cpu_before) as f64 / ticks_per_sec / cpu_window.as_secs_f64().max(0.1);
    let accepted_after = after_break.iter().filter(|s| **s == 202).count();
    eprintln!(
        "broken store: {lines} log lines in {secs:.1} s ({:.1}/s), CPU {:.0} %, {accepted_after} × 202 and {} × 503 after it broke, exit {:?}",
        lines as f64 / secs,
        cpu * 100.0,
        after_break.iter().filter(|s| **s == 503).count(),
        exited
    );
    assert_eq!(
        accepted_after, 0,
        "202s after the store broke: {after_break:?}"
    );
    assert!(lines < 200, "the log exploded: {lines} lines");
    assert!(cpu < 0.5, "a broken store burns CPU: {:.0} %", cpu * 100.0);
    let (status, after) = exited.expect("kim neither recovered nor exited within 40 s");
    assert!(
        !status.success(),
        "a broken store must exit non-zero: {status:?}"
    );
    assert!(
        after < Duration::from_secs(30),
        "exited only after {after:?}"
    );
    let log = child.log_text();
    assert!(
        log.contains("left in the accept journal for the replay"),
        "no final line saying what is left: {log}"
    );
    eprintln!("{}", last_line_with(&log, "left in the accept journal"));

    // Started again while the disk is full (systemd's RestartSec): the
    // replay cannot write; it fails clearly and loses nothing.
    disk.fill();
    start_fails_on_a_full_disk(&env);
    disk.free();

    // Started once space is back: the replay applies the journal; every
    // 202 is there.
    let restarted = Instant::now();
    let kim = env.start();
    eprintln!(
        "restarted and listening {:.1} s after the restart ({} receipts with a 202)",
        restarted.elapsed().as_secs_f64(),
        accepted.len()
    );
    all_there_and_moving(&env, &kim, &accepted);
    let (ready, body) = rt().block_on(readyz(&client, kim.addr));
    assert_eq!(ready, 200, "{body}");
}

#[test]
fn sigterm_with_a_broken_store_ends_within_the_grace_and_a_restart_on_a_full_disk_loses_nothing() {
    let Some((env, disk)) = on_small_disk("shutdown_grace = \"5s\"") else {
        return;
    };
    let kim = env.start();
    let client = env.kent();
    let (status, first) = rt().block_on(post(&client, kim.addr, "KNT/TERM/0"));
    assert_eq!(status, 202);
    let first = first.unwrap();
    let mut accepted = vec![first.clone()];
    accepted.extend(break_the_store(
        &disk, &client, kim.addr, &kim.log, "TERM", &first,
    ));

    let log = kim.log.clone();
    let started = Instant::now();
    let status = kim.terminate(Duration::from_secs(40));
    let took = started.elapsed();
    eprintln!("SIGTERM with a broken store: exit {status:?} after {took:?}");
    assert!(took <= Duration::from_secs(5), "shutdown took {took:?}");
    assert!(!status.success(), "a broken store must exit non-zero");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("left in the accept journal for the replay"),
        "no final line saying what is left: {text}"
    );

    // A start while the disk is still full fails fast and clearly, and
    // makes nothing worse.
    start_fails_on_a_full_disk(&env);

    disk.free();
    let kim = env.start();
    all_there_and_moving(&env, &kim, &accepted);
}

/// A kim started by hand, killed if the test fails first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Reads the notifications kim sends to `$NOTIFY_SOCKET` (as systemd does).
struct NotifySocket {
    sock: std::os::unix::net::UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind(path: PathBuf) -> Self {
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Self { sock, path }
    }

    /// How many `WATCHDOG=1` arrived in the next `span`.
    fn pings_during(&self, span: Duration) -> usize {
        let until = Instant::now() + span;
        let mut pings = 0;
        let mut buf = [0u8; 512];
        while Instant::now() < until {
            if let Ok(n) = self.sock.recv(&mut buf) {
                if String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1") {
                    pings += 1;
                }
            }
        }
        pings
    }
}

#[test]
fn a_broken_store_stops_the_watchdog_pings_and_exits_non_zero() {
    let Some((env, disk)) = on_small_disk("") else {
        return;
    };
    let notify = NotifySocket::bind(env.path("notify.sock"));
    // As systemd starts it: NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID
    // (the pid the shell keeps when it execs kim); pings every 100 ms.
    let log = env.path("kim.log");
    let mut child = KillOnDrop(
        Command::new("sh")
            .arg("-c")
            .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
            .arg(KIM)
            .arg("--config")
            .arg(&env.config)
            .arg("serve")
            .env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", "200000")
            .env("KIM_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let child = &mut child.0;
    let started = Instant::now();
    let addr: SocketAddr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(a) = last_line_with(&text, "listening for police systems")
            .split("addr=")
            .nth(1)
            .and_then(|a| a.split_whitespace().next()?.parse().ok())
        {
            break a;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30) && child.try_wait().unwrap().is_none(),
            "kim did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let healthy = notify.pings_during(Duration::from_millis(600));
    assert!(healthy >= 3, "no watchdog pings while healthy: {healthy}");

    let client = env.kent();
    let (status, first) = rt().block_on(post(&client, addr, "KNT/DOG/0"));
    assert_eq!(status, 202);
    let first = first.unwrap();
    let mut accepted = vec![first.clone()];
    accepted.extend(break_the_store(&disk, &client, addr, &log, "DOG", &first));
    disk.free();
    // A ping may be on its way when it broke; then none.
    notify.pings_during(Duration::from_millis(300));
    let broken = notify.pings_during(Duration::from_secs(2));
    eprintln!("watchdog pings: {healthy} in 0.6 s while healthy, {broken} in 2 s while broken");
    assert_eq!(broken, 0, "watchdog pings go on with a broken store");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("kim did not exit with a broken store");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "{status:?}");

    let kim = env.start();
    all_there_and_moving(&env, &kim, &accepted);
}

/// A police re-send while the disk is full (issue 15): its `resent` event
/// cannot be made durable, so the answer is 503 with Retry-After — never a
/// 200 the audit does not hold. Once kim has space again, the same re-send
/// gets its 200 and every 200 given has its `resent` event.
#[test]
fn a_resend_that_cannot_be_audited_is_a_503_never_an_unaudited_200() {
    let Some((env, disk)) = on_small_disk("") else {
        return;
    };
    let kim = env.start();
    let client = env.kent();
    // The same bytes each time: a re-send, not a conflict.
    let body = simple("KNT/RESEND/0");
    let (status, first) = rt().block_on(post_body(&client, kim.addr, &body));
    assert_eq!(status, 202);
    let first = first.unwrap();
    all_there_and_moving(&env, &kim, std::slice::from_ref(&first));

    disk.fill();
    let started = Instant::now();
    let mut answers = Vec::new();
    rt().block_on(async {
        loop {
            let (status, _) = post_body(&client, kim.addr, &body).await;
            answers.push(status);
            // 0: kim exited (its store broke); 503: refused, as it must be.
            if status == 503 || status == 0 {
                return;
            }
            assert_eq!(status, 200, "a re-send answered {status}: {answers:?}");
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "re-sends on a full disk kept getting 200s: {answers:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let ok = answers.iter().filter(|s| **s == 200).count();
    eprintln!("re-sends on a full disk: {answers:?}");
    assert!(answers.contains(&503), "never refused: {answers:?}");
    let _ = kim.terminate(Duration::from_secs(30));
    disk.free();

    let kim = env.start();
    let (status, receipt) = rt().block_on(post_body(&client, kim.addr, &body));
    assert_eq!(status, 200, "the re-send once there is space");
    assert_eq!(receipt.as_deref(), Some(first.as_str()));
    assert!(kim.terminate(Duration::from_secs(30)).success());
    let (code, out, err) = env.kim(&["audit", "list", "--receipt", &first, "--json"]);
    assert_eq!(code, 0, "{err}");
    let events: serde_json::Value = serde_json::from_str(&out).unwrap();
    let resent = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "resent")
        .count();
    assert!(
        resent > ok,
        "{ok} × 200 on the full disk and one after, but {resent} `resent` events"
    );
    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
}

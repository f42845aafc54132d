//! The watchdog is tied to the stages (issue 13, item 6): with
//! NOTIFY_SOCKET and WATCHDOG_USEC set as systemd sets them, kim pings
//! WATCHDOG=1 while every stage is idle or making progress; a stage that
//! hangs (the debug-build hook KIM_TEST_STALL_STAGE) stops the pings, and
//! the log names it. Real binary, a real unix datagram socket.

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Env, KIM};

/// How many `WATCHDOG=1` arrive on `sock` within `span`.
fn pings_during(sock: &UnixDatagram, span: Duration) -> usize {
    let until = Instant::now() + span;
    let mut pings = 0;
    let mut buf = [0u8; 512];
    while Instant::now() < until {
        if let Ok(n) = sock.recv(&mut buf) {
            if String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1") {
                pings += 1;
            }
        }
    }
    pings
}

/// `kim serve` as systemd starts it, with `stall` as KIM_TEST_STALL_STAGE;
/// returns once it listens.
fn start(env: &Env, notify: &std::path::Path, log: &std::path::Path, stall: &str) -> Child {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
        .arg(KIM)
        .arg("--config")
        .arg(&env.config)
        .arg("serve")
        .env("NOTIFY_SOCKET", notify)
        .env("WATCHDOG_USEC", "400000")
        .env("KIM_TEST_STALL_STAGE", stall)
        .env("KIM_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("listening for police systems")
    {
        if started.elapsed() > Duration::from_secs(30) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!(
                "kim did not start: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.wait();
}

#[test]
fn a_stage_that_stops_making_progress_stops_the_watchdog_pings() {
    let env = Env::new();
    let path = env.path("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();

    let log = env.path("kim-healthy.log");
    let kim = start(&env, &path, &log, "");
    let healthy = pings_during(&sock, Duration::from_millis(1200));
    stop(kim);
    assert!(healthy >= 3, "pings while every stage is fine: {healthy}");

    let log = env.path("kim-stalled.log");
    let kim = start(&env, &path, &log, "matcher");
    // Past the bound (the watchdog period, 400 ms) and a ping in the air.
    std::thread::sleep(Duration::from_millis(600));
    while sock.recv(&mut [0u8; 512]).is_ok() {}
    let stalled = pings_during(&sock, Duration::from_millis(1500));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    stop(kim);
    eprintln!(
        "watchdog pings: {healthy} in 1.2 s healthy, {stalled} in 1.5 s with the matcher stuck"
    );
    assert_eq!(stalled, 0, "pings go on with a stuck matcher:\n{text}");
    let line = text
        .lines()
        .find(|l| l.contains("stopped making progress"))
        .unwrap_or_else(|| panic!("no log line naming the stage:\n{text}"));
    assert!(line.contains("matcher"), "{line}");
}

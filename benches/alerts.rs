//! `kim alerts list` over a store holding a year of alerts (default
//! 1,000,000: about England's notifications in a year): wall time of the
//! real CLI for the default listing (newest 100) and for `--late --since 7d`,
//! through the running daemon's admin socket and with the daemon stopped
//! (the CLI opens the store itself). The outbox is filled directly
//! (`Store::bench_put_alerts`: sealed records and their time-index keys, no
//! audit events, which listing does not read); no alert is left waiting, so
//! the daemon has nothing to send.
//!
//! Knobs: KIM_BENCH_ALERTS (1,000,000), KIM_BENCH_RUNS (5 per listing).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kim::store::outbox::{AlertKind, AlertRecord, AlertState};

const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,,\n\
118766,Oakwood School,Mr Oak,dsl@oakwood.example,,\n\
118767,Riverside Academy,Ms River,dsl@riverside.example,,\n";
const URNS: [&str; 3] = ["118765", "118766", "118767"];

/// Alert `i` of `n`, queued evenly over the year up to `now`: most
/// delivered in time, one in 20 late, one in 50 refused (failed).
fn alert(i: u64, n: u64, now: jiff::Timestamp) -> AlertRecord {
    let year = 365 * 24 * 3600 * 1_000_000_000i128;
    let queued =
        now - jiff::SignedDuration::from_nanos((year - year * i as i128 / n as i128) as i64);
    let deadline = queued + jiff::SignedDuration::from_hours(10);
    let late = i % 20 == 1;
    let failed = i % 50 == 0;
    let delivered = queued
        + if late {
            jiff::SignedDuration::from_hours(12)
        } else {
            jiff::SignedDuration::from_mins(3)
        };
    AlertRecord {
        id: format!("{:04}-{:04}-BNCH-AAAA.0", i / 10_000, i % 10_000),
        kind: AlertKind::Dsl,
        receipt: format!("{:04}-{:04}-BNCH-AAAA", i / 10_000, i % 10_000),
        child: 0,
        urn: URNS[(i % 3) as usize].into(),
        state: if failed {
            AlertState::Failed
        } else {
            AlertState::Delivered
        },
        attempts: 1,
        queued_at: queued,
        next_attempt_at: queued,
        deadline: Some(deadline),
        deadline_met: Some(!late && !failed),
        delivered_at: (!failed).then_some(delivered),
        escalated: false,
        follows: None,
        withdraw_pending: false,
        last_code: Some(if failed { 550 } else { 250 }),
        last_reply: failed.then(|| "550 5.1.1 [address]: Mailbox unavailable".into()),
        journal: None,
        review: None,
        reminder: None,
        to_hash: Some("0011223344556677".into()),
        requeued_at: None,
        summary: None,
        expiry: None,
        test: false,
    }
}

/// Runs `kim --config CFG ARGS…` `runs` times: (each wall time in ms,
/// the last stdout's line count).
fn time(cfg: &Path, args: &[&str], runs: usize) -> (Vec<f64>, usize) {
    let mut ms = Vec::new();
    let mut lines = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_kim"))
            .arg("--config")
            .arg(cfg)
            .args(args)
            .output()
            .unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines = out.stdout.iter().filter(|b| **b == b'\n').count();
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    (ms, lines)
}

fn report(what: &str, (ms, lines): (Vec<f64>, usize)) {
    println!(
        "  {what:<48} median {:>7.1} ms  min {:>7.1}  max {:>7.1}  ({lines} lines of output)",
        ms[ms.len() / 2],
        ms[0],
        ms[ms.len() - 1]
    );
}

fn main() {
    let n: u64 = common::env_num("KIM_BENCH_ALERTS", 1_000_000);
    let runs: usize = common::env_num("KIM_BENCH_RUNS", 5);
    println!(
        "kim alerts list benchmark — machine: {}; revision {}",
        common::machine(),
        common::git_revision()
    );
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let (install, cfg, master) = common::install(dir.path(), "");
    let cfg_path = install.config;
    let now = jiff::Timestamp::now();
    {
        let t = Instant::now();
        let store = kim::store::Store::open(&cfg.store.path, &master).unwrap();
        let schools = kim::import::parse_schools(SCHOOLS.as_bytes()).unwrap();
        store.replace_schools(&schools).unwrap().unwrap();
        let chunk = 20_000;
        let mut i = 0;
        while i < n {
            let batch: Vec<AlertRecord> =
                (i..(i + chunk).min(n)).map(|j| alert(j, n, now)).collect();
            store.bench_put_alerts(&batch).unwrap();
            i += chunk;
        }
        store.flush_now().unwrap();
        let (alloc, _, _) = common::du(&cfg.store.path);
        println!(
            "filled {n} alerts in {:.1} s; store {:.0} MiB on disk",
            t.elapsed().as_secs_f64(),
            alloc as f64 / 1048576.0
        );
    }

    let t = Instant::now();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_kim"))
        .arg("--config")
        .arg(&cfg_path)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("kim.log")).unwrap())
        .spawn()
        .unwrap();
    let socket = dir.path().join("admin.sock");
    while !socket.exists() && t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(socket.exists(), "the daemon did not start");
    println!(
        "daemon up in {:.1} s; through the daemon ({runs} runs each):",
        t.elapsed().as_secs_f64()
    );
    report(
        "kim alerts list",
        time(&cfg_path, &["alerts", "list"], runs),
    );
    report(
        "kim alerts list --json",
        time(&cfg_path, &["alerts", "list", "--json"], runs),
    );
    report(
        "kim alerts list --late --since 7d",
        time(
            &cfg_path,
            &["alerts", "list", "--late", "--since", "7d"],
            runs,
        ),
    );
    report(
        "kim alerts list --late --since 7d --json",
        time(
            &cfg_path,
            &["alerts", "list", "--late", "--since", "7d", "--json"],
            runs,
        ),
    );
    report(
        "kim alerts list --late --since 7d --limit 0",
        time(
            &cfg_path,
            &["alerts", "list", "--late", "--since", "7d", "--limit", "0"],
            runs,
        ),
    );
    report(
        "kim alerts list --state failed --since 7d",
        time(
            &cfg_path,
            &[
                "alerts", "list", "--state", "failed", "--since", "7d", "--limit", "0",
            ],
            runs,
        ),
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = daemon.wait();

    println!("daemon stopped: the CLI opens the store itself:");
    report(
        "kim alerts list",
        time(&cfg_path, &["alerts", "list"], runs.min(3)),
    );
    report(
        "kim alerts list --late --since 7d",
        time(
            &cfg_path,
            &["alerts", "list", "--late", "--since", "7d"],
            runs.min(3),
        ),
    );
}

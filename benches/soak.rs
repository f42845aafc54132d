//! `KIM_SOAK_SECS=3600 cargo bench --bench soak`: an hour (or
//! KIM_SOAK_SECS) of a county's busy day against the release `kim serve`,
//! with everything real — mutual TLS police clients, the admin CLI over the
//! admin socket, alerts delivered into a real SMTP server that requires
//! STARTTLS — while the daemon's RSS, open file descriptors, store size,
//! CPU and the police POST p50/p99 are sampled every 10 s.
//!
//! Load: first KIM_SOAK_PRELOAD (12000) notifications back to back on 4
//! connections (a force catching up after an outage; it fills sled's cache,
//! `[store] cache_mb` = KIM_SOAK_CACHE_MB, 64, so that a cache still
//! filling up is not taken for a leak); then KIM_SOAK_RATE (2)
//! notifications/s steady, and KIM_SOAK_BURST (200) more spread over one
//! minute every KIM_SOAK_BURST_EVERY (600) s from half that on. One child
//! in 40 is not on the roll and goes to review; every minute the admin runs
//! `kim audit list`, `kim alerts list` and decides every child waiting
//! (`kim review assign` / `kim review dismiss`, alternately). Deterministic
//! given KIM_SOAK_SEED (17).
//!
//! Verdict (exit 1 naming what broke): the least-squares slope after the
//! warm-up (KIM_SOAK_WARMUP_SECS, default 300 or a quarter of a shorter
//! run, and at least a minute past the preload) of RSS above
//! KIM_SOAK_MAX_RSS_MIB_PER_H (16) or of open FDs above
//! KIM_SOAK_MAX_FDS_PER_H (10); any police POST not answered 202; any admin
//! command failing; after the load, any child not delivered (or failed
//! other than by a dismissal), an alert delivered twice, or `kim audit
//! verify` failing. The store grows with the data: its bytes per
//! notification are reported, not bounded; so are the CPU and p99 slopes.
//!
//! Output in KIM_SOAK_OUT (target/soak): soak.csv (the samples), soak.svg
//! (one panel per series) and soak-figures.md (the figures for docs/soak.md).

#[path = "common/mod.rs"]
mod common;
#[path = "soak/load.rs"]
mod load;
#[path = "soak/plot.rs"]
mod plot;
#[path = "soak/probe.rs"]
mod probe;
#[path = "soak/report.rs"]
mod report;
#[allow(dead_code)]
#[path = "../tests/it/support/smtp.rs"]
mod smtp;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kim::police_client::PoliceClient;
use probe::Sample;

const KIM: &str = env!("CARGO_BIN_EXE_kim");

struct Settings {
    secs: u64,
    rate: f64,
    burst: u64,
    burst_every: u64,
    sample_secs: u64,
    warmup_secs: u64,
    seed: u64,
    max_rss_mib_per_h: f64,
    max_fds_per_h: f64,
    out: PathBuf,
    /// `[store] cache_mb`: KIM_SOAK_CACHE_MB (64, the least kim accepts).
    cache_mb: u64,
    /// Notifications posted back to back at the start (KIM_SOAK_PRELOAD).
    preload: u64,
}

impl Settings {
    fn from_env() -> Self {
        let secs = common::env_num("KIM_SOAK_SECS", 3600);
        Self {
            secs,
            rate: common::env_num("KIM_SOAK_RATE", 2.0),
            burst: common::env_num("KIM_SOAK_BURST", 200),
            burst_every: common::env_num("KIM_SOAK_BURST_EVERY", 600),
            sample_secs: common::env_num("KIM_SOAK_SAMPLE_SECS", 10).max(1),
            warmup_secs: common::env_num("KIM_SOAK_WARMUP_SECS", 300.min(secs / 4)),
            seed: common::env_num("KIM_SOAK_SEED", 17),
            max_rss_mib_per_h: common::env_num("KIM_SOAK_MAX_RSS_MIB_PER_H", 16.0),
            max_fds_per_h: common::env_num("KIM_SOAK_MAX_FDS_PER_H", 10.0),
            out: std::env::var_os("KIM_SOAK_OUT")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/soak")),
            cache_mb: common::env_num("KIM_SOAK_CACHE_MB", 64),
            preload: common::env_num("KIM_SOAK_PRELOAD", 12000),
        }
    }

    fn command(&self) -> String {
        let mut parts: Vec<String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("KIM_SOAK_"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.sort();
        parts.push("cargo bench --bench soak".into());
        parts.join(" ")
    }
}

/// Starts `kim serve` with its log in `log`; the police address.
fn start_daemon(config: &Path, log: &Path) -> (std::process::Child, SocketAddr) {
    let mut child = Command::new(KIM)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(a) = text
            .lines()
            .filter(|l| l.contains("listening for police systems"))
            .find_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("addr=")?.parse::<SocketAddr>().ok())
            })
        {
            return (child, a);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "kim serve did not start: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The DSL alerts the SMTP server holds, and how many Message-IDs arrived
/// more than once (all messages).
fn delivered(smtp: &smtp::SmtpServer) -> (u64, u64) {
    let s = smtp.shared.lock().unwrap();
    let dsl = s
        .received
        .iter()
        .filter(|r| r.to.iter().any(|t| t.contains("dsl@")))
        .count() as u64;
    let mut ids: BTreeMap<String, u32> = BTreeMap::new();
    for r in &s.received {
        let head = r.data.split("\r\n\r\n").next().unwrap_or("");
        if let Some(l) = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        {
            *ids.entry(l[11..].trim().to_owned()).or_insert(0) += 1;
        }
    }
    (dsl, ids.values().filter(|&&n| n > 1).count() as u64)
}

fn main() {
    let set = Settings::from_env();
    let machine = common::machine();
    let revision = common::git_revision();
    println!("kim soak — {}", set.command());
    println!("machine: {machine}; revision {revision}");
    std::fs::create_dir_all(&set.out).unwrap();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let port = smtp::free_port();
    let opts = kim::dev::Options {
        store: dir.path().join("store"),
        mail: kim::dev::Mail::Section(smtp::mail_config(port, &dir.path().join("certs/ca.crt"))),
        admin_socket: Some(dir.path().join("admin.sock")),
        ..kim::dev::Options::loopback()
    };
    let install = kim::dev::install(dir.path(), &opts).unwrap();
    {
        let text = std::fs::read_to_string(&install.config).unwrap();
        let text = text.replace(
            "[store]\n",
            &format!("[store]\ncache_mb = {}\n", set.cache_mb),
        );
        std::fs::write(&install.config, text).unwrap();
    }
    let smtp = smtp::SmtpServer::start(
        port,
        Some((&install.certs.server_cert, &install.certs.server_key)),
    );
    let admin = Arc::new(load::Admin::new(Path::new(KIM), &install.config));
    for (verb, name, text) in [
        ("schools", "schools.csv", load::SCHOOLS.to_owned()),
        ("roll", "roll.csv", load::roll_csv()),
    ] {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        admin
            .run(&[verb, "import", f.to_str().unwrap()])
            .unwrap_or_else(|| panic!("{verb} import: {:?}", admin.failures.lock().unwrap()));
    }
    let log = dir.path().join("kim.log");
    let (mut daemon, addr) = start_daemon(&install.config, &log);
    let pid = daemon.id();
    let store_dir = dir.path().join("store");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = PoliceClient::new(
        &install.certs.ca_cert,
        Some((&install.certs.client_cert, &install.certs.client_key)),
    )
    .unwrap();
    let police = Arc::new(load::Police::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let preload = rt.spawn(load::preload(
        police.clone(),
        client.clone(),
        addr,
        (set.preload, 4),
        set.seed,
    ));
    let mut preload_done: Option<f64> = None;
    let tasks = vec![
        rt.spawn(load::steady(
            police.clone(),
            client.clone(),
            addr,
            set.rate,
            set.seed,
            stop.clone(),
        )),
        rt.spawn(load::bursts(
            police.clone(),
            client.clone(),
            addr,
            (set.burst, set.burst_every),
            set.seed,
            stop.clone(),
        )),
    ];
    let admin_thread = {
        let (admin, stop) = (admin.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut next = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    admin.minute();
                    next += Duration::from_secs(60);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    // The samples, every sample_secs.
    let hz = probe::clock_ticks();
    let mut samples: Vec<Sample> = Vec::new();
    let mut last = (0.0f64, probe::cpu_ticks(pid).unwrap_or(0));
    let mut k = 1u64;
    while k * set.sample_secs <= set.secs {
        let due = started + Duration::from_secs(k * set.sample_secs);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let t = started.elapsed().as_secs_f64();
        let mut window = std::mem::take(&mut *police.window.lock().unwrap());
        let ticks = probe::cpu_ticks(pid).expect("kim serve is gone");
        let s = Sample {
            t,
            rss_kib: probe::rss_kib(pid).unwrap_or(0),
            fds: probe::fds(pid).unwrap_or(0),
            store_bytes: probe::store_bytes(&store_dir),
            cpu_ticks: ticks,
            cpu_pct: (ticks - last.1) as f64 / hz / (t - last.0) * 100.0,
            requests: window.len(),
            p50_ms: probe::pct_ms(&mut window, 0.50),
            p99_ms: probe::pct_ms(&mut window, 0.99),
            max_ms: probe::pct_ms(&mut window, 1.0),
            accepted: police.accepted.load(Ordering::Relaxed),
            delivered: delivered(&smtp).0,
            load1: probe::load1(),
        };
        last = (t, ticks);
        if preload_done.is_none() && preload.is_finished() {
            preload_done = Some(t);
        }
        if k % 6 == 0 || k == 1 {
            println!(
                "{:>6.0} s  rss {:>7.1} MiB  fds {:>3}  store {:>7.1} MiB  cpu {:>5.1} %  p99 {:>7.2} ms  accepted {:>6}  delivered {:>6}  load {:.2}",
                s.t,
                s.rss_kib as f64 / 1024.0,
                s.fds,
                s.store_bytes as f64 / 1048576.0,
                s.cpu_pct,
                s.p99_ms,
                s.accepted,
                s.delivered,
                s.load1
            );
        }
        samples.push(s);
        k += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = rt.block_on(t);
    }
    admin_thread.join().unwrap();
    let uptime = Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();

    // After the load: decide the last children in review, let delivery
    // drain, then check every receipt and the audit chain.
    let mut broken: Vec<String> = Vec::new();
    let receipts = std::mem::take(&mut *police.receipts.lock().unwrap());
    let for_school = receipts
        .iter()
        .filter(|(i, _)| !load::goes_to_review(set.seed, *i))
        .count() as u64;
    let drain = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(3));
        admin.minute();
        let expected = for_school + admin.assigned.load(Ordering::Relaxed);
        let (dsl, _) = delivered(&smtp);
        if (dsl >= expected && admin.waiting().is_empty())
            || drain.elapsed() > Duration::from_secs(180)
        {
            break;
        }
    }
    let drain_secs = drain.elapsed().as_secs_f64();
    let expected = for_school + admin.assigned.load(Ordering::Relaxed);
    let (dsl, dups) = delivered(&smtp);
    if dsl != expected {
        broken.push(format!(
            "delivery: {dsl} DSL alerts received, {expected} expected"
        ));
    }
    if dups > 0 {
        broken.push(format!(
            "delivery: {dups} Message-IDs received more than once"
        ));
    }
    let states: BTreeMap<String, u64> = rt.block_on(async {
        let mut conn = client.connect(addr).await.unwrap();
        let mut states = BTreeMap::new();
        for (_, r) in &receipts {
            let a = conn
                .send(hyper::Method::GET, &format!("/v1/notifications/{r}"), None)
                .await
                .unwrap();
            let st = a.json()["children"][0]["state"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {}", a.status));
            *states.entry(st).or_insert(0) += 1;
        }
        states
    });
    for (st, n) in &states {
        // A dismissed child is `failed` (no school, no alert).
        let dismissed = admin.dismissed.load(Ordering::Relaxed);
        if st == "failed" && *n == dismissed {
            continue;
        }
        if st != "delivered" {
            broken.push(format!("receipts: {n} children still {st} after the drain"));
        }
    }
    if admin.run(&["audit", "verify"]).is_none() {
        broken.push("audit: kim audit verify failed".into());
    }
    let refused = police.refused.lock().unwrap().clone();
    if !refused.is_empty() {
        broken.push(format!(
            "police: {} POSTs not accepted, first: {}",
            refused.len(),
            refused[..refused.len().min(3)].join("; ")
        ));
    }
    let admin_failures = admin.failures.lock().unwrap().clone();
    if !admin_failures.is_empty() {
        broken.push(format!(
            "admin: {} commands failed, first: {}",
            admin_failures.len(),
            admin_failures[0]
        ));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let status = daemon.wait().unwrap();
    if !status.success() {
        broken.push(format!("kim serve exited {status} after SIGTERM"));
    }
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let log_errors = log_text.lines().filter(|l| l.contains("ERROR")).count();
    let log_warnings = log_text.lines().filter(|l| l.contains("WARN")).count();
    // Identifiers only (kim never logs personal data): the first few, to read.
    let log_firsts: Vec<&str> = log_text
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .take(3)
        .collect();

    let mut facts = vec![
        format!("load at the end (`uptime`): {uptime}"),
        format!(
            "load seen: {} notifications accepted in {:.0} s ({} reconnects), {} DSL alerts delivered over STARTTLS, {} children to review ({} assigned, {} dismissed), {} admin commands; drain after the load {:.0} s",
            receipts.len(),
            set.secs,
            police.reconnects.load(Ordering::Relaxed),
            dsl,
            receipts.len() as u64 - for_school,
            admin.assigned.load(Ordering::Relaxed),
            admin.dismissed.load(Ordering::Relaxed),
            admin.runs.load(Ordering::Relaxed),
            drain_secs
        ),
        format!("final child states: {states:?}; log: {log_errors} ERROR, {log_warnings} WARN lines"),
    ];
    facts.extend(
        log_firsts
            .iter()
            .map(|l| format!("  - `{}`", l.replace('`', "'"))),
    );
    let md = report::finish(
        &set,
        &format!("{machine}; revision {revision}"),
        &revision,
        &samples,
        preload_done,
        &facts,
        &mut broken,
    );
    println!("\n{md}");
    println!(
        "wrote {}/soak.csv, soak.svg, soak-figures.md",
        set.out.display()
    );
    if !broken.is_empty() {
        eprintln!("soak FAILED: {}", broken.join("; "));
        std::process::exit(1);
    }
}

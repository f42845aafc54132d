//! Retention over a store of many settled notifications (default 100,000;
//! `KIM_BENCH_NOTIFICATIONS`), all received 40 days ago on one day: the
//! real daemon serves a steady police load (keep-alive connections, one
//! notification at a time each) while `kim retention run --older-than 0s`
//! purges them all through the admin socket. Prints the purge's
//! throughput (notifications/s), whether the day's key was destroyed, and
//! the police's 202 latency (p50/p99/max) before and during the purge,
//! side by side in one run.
//!
//! Knobs: KIM_BENCH_NOTIFICATIONS (100,000), KIM_BENCH_CONNECTIONS (4),
//! KIM_BENCH_BASELINE_SECS (10).

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kim::police_client::PoliceClient;

fn body(i: u64, occurred: jiff::Timestamp) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "police_reference": format!("KNT/BENCH/{i}"),
        "incident": {
            "occurred_at": occurred.to_string(),
            "category": "domestic_abuse",
            "summary_for_school": "Police attended a verbal argument at the home. No injuries."
        },
        "children": [{
            "given_name": "Amelia",
            "family_name": format!("Benchmark{}", i % 997),
            "date_of_birth": "2014-03-09",
            "school_urn": "118765",
            "postcode": "ME14 1XX",
            "involvement": "present"
        }]
    }))
    .unwrap()
}

fn pct(v: &mut [u32], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i] as f64 / 1000.0
}

fn main() {
    let n: u64 = common::env_num("KIM_BENCH_NOTIFICATIONS", 100_000);
    let conns: usize = common::env_num("KIM_BENCH_CONNECTIONS", 4);
    let baseline_secs: u64 = common::env_num("KIM_BENCH_BASELINE_SECS", 10);
    println!(
        "kim retention benchmark — machine: {}; revision {}",
        common::machine(),
        common::git_revision()
    );
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    // The daemon's own daily run must not purge them at start.
    let (install, cfg, master) =
        common::install(dir.path(), "[retention]\nnotification_days = 60\n");

    // The store: n notifications received 40 days ago, each delivered.
    let t = Instant::now();
    let old = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(40 * 24);
    {
        let store = kim::store::Store::open(&cfg.store.path, &master).unwrap();
        let mut batch = Vec::with_capacity(256);
        let mut receipts = Vec::with_capacity(256);
        for i in 0..n {
            let parsed = kim::ingest::notification::parse_notification(
                &body(i, old - jiff::SignedDuration::from_hours(8)),
                old,
            )
            .unwrap();
            let p = store.prepare("kent", &parsed, old).unwrap();
            receipts.push(p.receipt().to_owned());
            batch.push(p);
            if batch.len() == 256 || i + 1 == n {
                store.commit_batch(&batch).unwrap();
                store.bench_settle(&receipts, old).unwrap();
                batch.clear();
                receipts.clear();
            }
        }
        store.flush_now().unwrap();
    }
    let (alloc, _, _) = common::du(&cfg.store.path);
    println!(
        "store: {n} settled notifications filled in {:.1} s; {:.0} MiB on disk",
        t.elapsed().as_secs_f64(),
        alloc as f64 / 1048576.0
    );

    // The daemon, and the police address from its log.
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_kim"))
        .arg("--config")
        .arg(&install.config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = daemon.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains("listening for police systems") {
                if let Some(a) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("addr=")?.parse::<SocketAddr>().ok())
                {
                    let _ = tx.send(a);
                    sent = true;
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("the daemon did not start");

    // Police load: `conns` keep-alive connections, one request at a time.
    let phase = Arc::new(Mutex::new(0usize)); // 0 baseline, 1 purge, 2 done
    let lat: Arc<Mutex<[Vec<u32>; 2]>> = Arc::new(Mutex::new([Vec::new(), Vec::new()]));
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let certs = &install.certs;
    let client = PoliceClient::new(
        &certs.ca_cert,
        Some((&certs.client_cert, &certs.client_key)),
    )
    .unwrap();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (client, phase, lat, stop) = (client.clone(), phase.clone(), lat.clone(), stop.clone());
        tasks.push(rt.spawn(async move {
            let mut conn = client.connect(addr).await.unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let b = body(
                    1_000_000_000 + (c as u64) * 10_000_000 + i,
                    jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1),
                );
                let t = Instant::now();
                let a = conn
                    .send(hyper::Method::POST, "/v1/notifications", Some(&b))
                    .await
                    .unwrap();
                let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                assert_eq!(a.status, 202, "{}", a.text());
                let p = *phase.lock().unwrap();
                if p < 2 {
                    lat.lock().unwrap()[p].push(us);
                }
                i += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(baseline_secs));
    *phase.lock().unwrap() = 1;
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_kim"))
        .arg("--config")
        .arg(&install.config)
        .args(["retention", "run", "--older-than", "30d", "--json"])
        .output()
        .unwrap();
    let purge_secs = t.elapsed().as_secs_f64();
    *phase.lock().unwrap() = 2;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = rt.block_on(t);
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let purged = report["purged"].as_array().unwrap().len();
    let days = report["days_shredded"].as_array().unwrap().len();
    let mut l = lat.lock().unwrap();
    let [base, during] = &mut *l;
    println!(
        "purge through the daemon: {purged} notifications in {purge_secs:.1} s = {:.0} notifications/s; {days} day key(s) destroyed",
        purged as f64 / purge_secs
    );
    for (name, v) in [("before the purge", base), ("during the purge", during)] {
        let n = v.len();
        println!(
            "police 202 latency {name}: {n} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({conns} keep-alive connections)",
            pct(v, 0.50),
            pct(v, 0.99),
            pct(v, 1.0)
        );
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = daemon.wait();
}

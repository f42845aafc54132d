//! Receipt → accepted by a local Postfix: latency p50/p99 at a steady rate
//! (default 50 notifications/s), then sustained deliveries/s with a burst.
//!
//! Needs Postfix on 127.0.0.1:25 with STARTTLS required and the school
//! domains delivered locally: `tests/system/postfix.sh` sets that up (as
//! root) and prints the CA to trust. Then:
//!
//!   KIM_BENCH_SMTP_CA=/var/tmp/kim-system/certs/ca.crt cargo bench --bench delivery
//!
//! Knobs: KIM_BENCH_RATE (50), KIM_BENCH_SECONDS (20), KIM_BENCH_BURST (2000),
//! KIM_BENCH_CONCURRENCY (8, the `[delivery] concurrency` default).
//! Latency is `delivered_at − received_at` as kim records them: from the
//! moment the notification is stored to Postfix's 250 for its alert.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;
use kim::police_client::PoliceClient;

const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,deputy@maidstone.example,\n";

fn pupil(i: usize) -> (String, String, String) {
    let given = format!("Ann{}", common::alpha(i as u64));
    let family = format!("Smith{}", common::alpha(i as u64 * 7 + 3));
    let dob = format!("201{}-{:02}-{:02}", i % 8, 1 + i % 12, 1 + i % 28);
    (given, family, dob)
}

fn body(reference: &str, i: usize) -> Vec<u8> {
    let (g, f, d) = pupil(i);
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
    serde_json::to_vec(&serde_json::json!({
        "police_reference": reference,
        "incident": {"occurred_at": occurred, "category": "domestic_abuse",
                     "summary_for_school": "Police attended a verbal argument at the home."},
        "children": [{"given_name": g, "family_name": f, "date_of_birth": d, "involvement": "present"}]
    }))
    .unwrap()
}

fn options(dir: &Path, ca: &Path, concurrency: usize) -> kim::dev::Options {
    kim::dev::Options {
        store: dir.join("store"),
        mail: kim::dev::Mail::Smtp {
            ca_file: ca.to_owned(),
        },
        extra: format!("[delivery]\nconcurrency = {concurrency}"),
        ..kim::dev::Options::loopback()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

async fn wait_delivered(
    store: &kim::store::Store,
    receipts: &[String],
    limit: Duration,
) -> Vec<f64> {
    let start = Instant::now();
    loop {
        let mut lat = Vec::with_capacity(receipts.len());
        for r in receipts {
            let Some(rec) = store.record(r).unwrap() else {
                continue;
            };
            if let Some(at) = rec.children[0].delivered_at {
                lat.push(at.duration_since(rec.received_at).as_secs_f64() * 1000.0);
            }
        }
        if lat.len() == receipts.len() || start.elapsed() > limit {
            lat.sort_by(|a, b| a.total_cmp(b));
            return lat;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn main() {
    let ca = std::env::var("KIM_BENCH_SMTP_CA")
        .unwrap_or_else(|_| "/var/tmp/kim-system/certs/ca.crt".into());
    if !Path::new(&ca).exists() {
        eprintln!(
            "delivery bench: no SMTP CA at {ca}; run tests/system/postfix.sh (as root) first"
        );
        return;
    }
    let rate: f64 = common::env_num("KIM_BENCH_RATE", 50.0);
    let seconds: u64 = common::env_num("KIM_BENCH_SECONDS", 20);
    let burst: usize = common::env_num("KIM_BENCH_BURST", 2000);
    let concurrency: usize = common::env_num("KIM_BENCH_CONCURRENCY", 8);
    let steady = (rate * seconds as f64) as usize;
    let total = steady + burst;

    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), Path::new(&ca), concurrency);
    let kim::dev::Install {
        certs,
        config: cfg_path,
        ..
    } = kim::dev::install(dir.path(), &opts).unwrap();
    let mut roll = String::from(
        "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n",
    );
    for i in 0..total {
        let (g, f, d) = pupil(i);
        roll.push_str(&format!("P{i},{g},{f},,{d},,118765\n"));
    }
    let (cfg, tls, master) = kim::cli::check_config::load_checked(&cfg_path).expect("config");
    {
        let store = kim::store::Store::open(&cfg.store.path, &master).unwrap();
        let schools = kim::import::parse_schools(SCHOOLS.as_bytes()).unwrap();
        let urns = schools.iter().map(|s| s.urn.clone()).collect();
        store.replace_schools(&schools).unwrap().unwrap();
        let pupils =
            kim::import::parse_roll(roll.as_bytes(), &urns, jiff::Zoned::now().date()).unwrap();
        store.replace_roll(&pupils).unwrap();
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let running = kim::daemon::start(cfg, tls, master).await.unwrap();
        let store = running.store.clone();
        let police = Arc::new(
            PoliceClient::new(&certs.ca_cert, Some((&certs.client_cert, &certs.client_key))).unwrap(),
        );

        // 1. A steady rate on one keep-alive connection.
        let mut conn = police.connect(running.addr).await.unwrap();
        let mut receipts = Vec::with_capacity(steady);
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for i in 0..steady {
            tick.tick().await;
            let a = conn
                .send(Method::POST, "/v1/notifications", Some(&body(&format!("BENCH/S/{i}"), i)))
                .await
                .unwrap();
            assert_eq!(a.status, 202, "{}", a.text());
            receipts.push(a.json()["receipt_id"].as_str().unwrap().to_owned());
        }
        let lat = wait_delivered(&store, &receipts, Duration::from_secs(120)).await;

        // 2. A burst: as fast as 8 connections can post, then until the last 250.
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..8 {
            let police = police.clone();
            let addr = running.addr;
            tasks.push(tokio::spawn(async move {
                let mut conn = police.connect(addr).await.unwrap();
                let mut out = Vec::new();
                for i in (steady + c..steady + burst).step_by(8) {
                    let a = conn
                        .send(Method::POST, "/v1/notifications", Some(&body(&format!("BENCH/B/{i}"), i)))
                        .await
                        .unwrap();
                    assert_eq!(a.status, 202);
                    out.push(a.json()["receipt_id"].as_str().unwrap().to_owned());
                }
                out
            }));
        }
        let mut burst_receipts = Vec::new();
        for t in tasks {
            burst_receipts.extend(t.await.unwrap());
        }
        let posted = started.elapsed();
        let burst_lat = wait_delivered(&store, &burst_receipts, Duration::from_secs(600)).await;
        let all_done = started.elapsed();

        println!("kim delivery benchmark — receipt → accepted by the local Postfix (STARTTLS required)");
        println!(
            "machine: {}; revision {}; [delivery] concurrency = {concurrency}",
            common::machine(),
            common::git_revision()
        );
        println!(
            "steady {rate}/s for {seconds}s: {} of {} delivered; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            lat.len(),
            steady,
            percentile(&lat, 0.50),
            percentile(&lat, 0.99),
            lat.last().copied().unwrap_or(f64::NAN)
        );
        println!(
            "burst of {burst}: posted in {:.2}s, all delivered after {:.2}s → {:.0} deliveries/s sustained; latency p50 {:.0} ms, p99 {:.0} ms ({} delivered)",
            posted.as_secs_f64(),
            all_done.as_secs_f64(),
            burst_lat.len() as f64 / all_done.as_secs_f64(),
            percentile(&burst_lat, 0.50),
            percentile(&burst_lat, 0.99),
            burst_lat.len()
        );
        running.shutdown().await.unwrap();
    });
}

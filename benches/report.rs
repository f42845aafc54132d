//! `kim report` over a year of a county's volume (default 10,000
//! notifications, about 15,000 children, 600 schools) or of England's
//! (`KIM_BENCH_NOTIFICATIONS=600000`): wall time and peak RSS of the real
//! CLI with the daemon stopped (it opens the store, verifies the chain over
//! the year and counts), in the three formats. The audit is filled
//! directly (`Store::bench_put_audit`: a real hash chain, the events kim
//! writes for each notification), as kim would have appended it, then
//! archived as the daemon does while it runs (`Store::audit_compact`: all
//! but the newest `KEEP_LOOSE` events into files under `<store>/audit/`).
//!
//! Knobs: KIM_BENCH_NOTIFICATIONS (10,000), KIM_BENCH_SCHOOLS (600),
//! KIM_BENCH_RUNS (3), KIM_BENCH_LOOSE=1 (leave every event in sled, as a
//! store of format 2 holds them: the reference), KIM_BENCH_PAGE (a path: keep a copy of the
//! `--html` page there, e.g. for docs/report.png), KIM_BENCH_DIR (an
//! empty or absent folder: the installation and its filled store are kept
//! there, and a later run with the same folder reuses them instead of
//! filling again; the volume knobs are then those of the first run).

mod common;

use std::process::Command;
use std::time::Instant;

use kim::audit::{AuditEvent, EventKind, Head, Refs};
use serde_json::json;

struct Chain {
    head: Head,
    buf: Vec<AuditEvent>,
}

impl Chain {
    fn push(
        &mut self,
        at: jiff::Timestamp,
        kind: EventKind,
        actor: &str,
        refs: Refs,
        d: serde_json::Value,
    ) {
        let ev = AuditEvent::next(
            &self.head,
            at,
            kind,
            actor.into(),
            refs,
            d.as_object().cloned().unwrap_or_default(),
        );
        self.head = ev.head();
        self.buf.push(ev);
    }
}

fn main() {
    let n: u64 = common::env_num("KIM_BENCH_NOTIFICATIONS", 10_000);
    let schools: u64 = common::env_num("KIM_BENCH_SCHOOLS", 600);
    let runs: usize = common::env_num("KIM_BENCH_RUNS", 3);
    println!(
        "kim report benchmark — machine: {}; revision {}",
        common::machine(),
        common::git_revision()
    );
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let kept = std::env::var_os("KIM_BENCH_DIR").map(std::path::PathBuf::from);
    let root = kept.clone().unwrap_or_else(|| tmp.path().to_owned());
    let filled_mark = root.join("filled");
    if filled_mark.exists() {
        println!("reusing the filled store in {}", root.display());
        run_reports(&root, &root.join("kim.toml"), runs);
        return;
    }
    std::fs::create_dir_all(&root).unwrap();
    let (install, cfg, master) = common::install(&root, "");
    let cfg_path = install.config;
    // The year: 2025 (UK dates), reported with --from 2025-01-01 --to 2025-12-31.
    let start: jiff::Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
    let year = 365 * 24 * 3600i64;
    let urn = |i: u64| format!("{}", 100_000 + i % schools);
    let t = Instant::now();
    let mut events = 0u64;
    {
        let store = kim::store::Store::open(&cfg.store.path, &master).unwrap();
        let mut csv = String::from("urn,name,dsl_name,dsl_email,deputy_email,phone\n");
        for s in 0..schools {
            csv.push_str(&format!(
                "{},School {s},Ms Lead,dsl{s}@school.example,,\n",
                urn(s)
            ));
        }
        let parsed = kim::import::parse_schools(csv.as_bytes()).unwrap();
        store.replace_schools(&parsed).unwrap().unwrap();
        let mut c = Chain {
            head: store.audit_head().unwrap(),
            buf: Vec::with_capacity(50_000),
        };
        for i in 0..n {
            let at = start + jiff::SignedDuration::from_secs(year * i as i64 / n as i64);
            let receipt = format!(
                "B{:04}-{:04}-{:04}-0000",
                i / 100_000_000,
                (i / 10_000) % 10_000,
                i % 10_000
            );
            let kids = if i % 2 == 0 { 2 } else { 1 };
            let r = |child: Option<u32>, urn: Option<String>, alert: Option<String>| Refs {
                receipt: Some(receipt.clone()),
                child,
                school_urn: urn,
                alert_id: alert,
            };
            c.push(
                at,
                EventKind::Received,
                "force:kent",
                r(None, None, None),
                json!({"children": kids, "police_reference": format!("KNT/B/{i}")}),
            );
            for k in 0..kids {
                let u = urn(i * 2 + k as u64);
                let alert = format!("{receipt}.{k}");
                let t1 = at + jiff::SignedDuration::from_secs(1);
                if i % 20 == 3 {
                    c.push(
                        t1,
                        EventKind::NeedsReview,
                        "system",
                        r(Some(k), None, None),
                        json!({"reason": "ambiguous_schools"}),
                    );
                    c.push(
                        t1 + jiff::SignedDuration::from_mins(40),
                        EventKind::Reviewed,
                        "admin:alice",
                        r(Some(k), Some(u.clone()), None),
                        json!({"decision": "assigned"}),
                    );
                } else {
                    c.push(
                        t1,
                        EventKind::Matched,
                        "system",
                        r(Some(k), Some(u.clone()), None),
                        json!({"basis": "roll"}),
                    );
                }
                let t2 = t1 + jiff::SignedDuration::from_mins(if i % 20 == 3 { 41 } else { 1 });
                c.push(
                    t2,
                    EventKind::AlertQueued,
                    "system",
                    r(Some(k), Some(u.clone()), Some(alert.clone())),
                    json!({"deadline": (at + jiff::SignedDuration::from_hours(10)).to_string()}),
                );
                c.push(
                    t2,
                    EventKind::DeliveryAttempt,
                    "system",
                    r(Some(k), Some(u.clone()), Some(alert.clone())),
                    json!({"attempt": 1, "code": 250, "result": "accepted"}),
                );
                c.push(
                    t2,
                    EventKind::Delivered,
                    "system",
                    r(Some(k), Some(u), Some(alert)),
                    json!({"kind": "dsl", "deadline_met": i % 50 != 7}),
                );
            }
            if c.buf.len() >= 40_000 {
                events += c.buf.len() as u64;
                store.bench_put_audit(&c.buf).unwrap();
                c.buf.clear();
            }
        }
        events += c.buf.len() as u64;
        store.bench_put_audit(&c.buf).unwrap();
        store.flush_now().unwrap();
        if std::env::var_os("KIM_BENCH_LOOSE").is_none() {
            let t = Instant::now();
            let mut chunks = 0;
            loop {
                let made = store
                    .audit_compact(kim::store::audit_archive::KEEP_LOOSE, 64)
                    .unwrap();
                chunks += made;
                if made == 0 {
                    break;
                }
            }
            store.flush_now().unwrap();
            println!(
                "archived {chunks} chunks of audit events in {:.1} s (as the daemon does while it runs)",
                t.elapsed().as_secs_f64()
            );
        } else {
            println!("every audit event left in sled (KIM_BENCH_LOOSE)");
        }
        let (alloc, _, _) = common::du(&cfg.store.path);
        println!(
            "filled {n} notifications ({events} audit events) in {:.1} s; store {:.0} MiB on disk",
            t.elapsed().as_secs_f64(),
            alloc as f64 / 1048576.0
        );
    }
    if kept.is_some() {
        std::fs::write(&filled_mark, format!("{n} notifications\n")).unwrap();
    }
    run_reports(&root, &cfg_path, runs);
}

/// Times the real CLI over the year in each format, best of `runs`.
fn run_reports(dir: &std::path::Path, cfg_path: &std::path::Path, runs: usize) {
    for format in ["--json", "--csv", "", "--html"] {
        let mut best: Option<(f64, u64)> = None;
        for run in 0..runs {
            let page = dir.join(format!("report-{run}.html"));
            let _ = std::fs::remove_file(&page);
            let mut args = vec![
                "-f",
                "%M",
                env!("CARGO_BIN_EXE_kim"),
                "--config",
                cfg_path.to_str().unwrap(),
                "report",
                "--from",
                "2025-01-01",
                "--to",
                "2025-12-31",
            ];
            if !format.is_empty() {
                args.push(format);
            }
            if format == "--html" {
                args.push(page.to_str().unwrap());
            }
            let t = Instant::now();
            let out = Command::new("/usr/bin/time").args(&args).output().unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let err = String::from_utf8_lossy(&out.stderr);
            let kib: u64 = err
                .lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(0);
            if format == "--json" && best.is_none() {
                let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                println!(
                    "  figures: received {}, outcomes {}, schools {}",
                    j["received"],
                    j["outcomes"],
                    j["schools"].as_array().map_or(0, |a| a.len())
                );
            }
            if let (Ok(keep), true) = (std::env::var("KIM_BENCH_PAGE"), format == "--html") {
                std::fs::copy(&page, keep).unwrap();
            }
            best = Some(match best {
                Some((s, k)) if s <= secs => (s, k.max(kib)),
                Some((_, k)) => (secs, k.max(kib)),
                None => (secs, kib),
            });
        }
        let (s, kib) = best.unwrap();
        println!(
            "  kim report {:<7} best of {runs}: {:.2} s wall, peak RSS {:.0} MiB",
            if format.is_empty() { "(text)" } else { format },
            s,
            kib as f64 / 1024.0
        );
    }
}

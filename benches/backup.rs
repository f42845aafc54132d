//! `kim backup` and `kim restore` over a store of many notifications
//! (default 100,000; `KIM_BENCH_NOTIFICATIONS`): wall time of the real CLI
//! with the daemon stopped (it opens the store, which replays nothing, and
//! copies it with SHA-256 of every file), the backup's size and file count,
//! and the restore's time (every file checked, the chain verified, the
//! restore recorded). The store is filled through `Store::prepare` and
//! `commit_batch` (sealed payloads, data keys, records, `received` events:
//! what the applier writes for each notification).
//!
//! Knobs: KIM_BENCH_NOTIFICATIONS (100,000), KIM_BENCH_RUNS (3).

mod common;

use std::process::Command;
use std::time::Instant;

fn body(i: u64) -> Vec<u8> {
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(8)).to_string();
    serde_json::to_vec(&serde_json::json!({
        "police_reference": format!("KNT/BENCH/{i}"),
        "incident": {
            "occurred_at": occurred,
            "category": "domestic_abuse",
            "summary_for_school": "Police attended a verbal argument at the home. No injuries."
        },
        "children": [{
            "given_name": "Amelia",
            "family_name": format!("Benchmark{}", i % 997),
            "date_of_birth": "2014-03-09",
            "school_urn": "118765",
            "postcode": "ME14 1XX",
            "involvement": "present",
            "voice_of_child": "Spoken to by officers."
        }],
        "officer": { "name": "PC 4411 Jones", "phone": "01622 000000", "email": "p.jones@police.example" }
    }))
    .unwrap()
}

fn run(config: &std::path::Path, args: &[&str]) -> f64 {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_kim"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kim {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

fn main() {
    let n: u64 = common::env_num("KIM_BENCH_NOTIFICATIONS", 100_000);
    let runs: usize = common::env_num("KIM_BENCH_RUNS", 3);
    println!(
        "kim backup benchmark — machine: {}; revision {}",
        common::machine(),
        common::git_revision()
    );
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let (install, cfg, master) = common::install(dir.path(), "");
    let t = Instant::now();
    {
        let store = kim::store::Store::open(&cfg.store.path, &master).unwrap();
        let now = jiff::Timestamp::now();
        let mut batch = Vec::with_capacity(256);
        for i in 0..n {
            let parsed = kim::ingest::notification::parse_notification(&body(i), now).unwrap();
            batch.push(store.prepare("kent", &parsed, now).unwrap());
            if batch.len() == 256 || i + 1 == n {
                store.commit_batch(&batch).unwrap();
                batch.clear();
            }
        }
        store.flush_now().unwrap();
    }
    let (alloc, apparent, files) = common::du(&cfg.store.path);
    println!(
        "store: {n} notifications filled in {:.1} s; {:.1} MiB on disk ({:.1} MiB apparent), {files} files",
        t.elapsed().as_secs_f64(),
        alloc as f64 / 1048576.0,
        apparent as f64 / 1048576.0
    );
    for r in 0..runs {
        let out = dir.path().join(format!("backup-{r}"));
        let secs = run(&install.config, &["backup", "--out", out.to_str().unwrap()]);
        let (alloc, apparent, files) = common::du(&out);
        let to = dir.path().join(format!("restored-{r}"));
        let restore = run(
            &install.config,
            &[
                "restore",
                out.to_str().unwrap(),
                "--to",
                to.to_str().unwrap(),
            ],
        );
        println!(
            "run {r}: backup {secs:.2} s, {:.1} MiB ({:.1} MiB apparent, {files} files, {:.0} MiB/s); restore {restore:.2} s",
            alloc as f64 / 1048576.0,
            apparent as f64 / 1048576.0,
            apparent as f64 / 1048576.0 / secs
        );
        let _ = std::fs::remove_dir_all(&out);
        let _ = std::fs::remove_dir_all(&to);
    }
}

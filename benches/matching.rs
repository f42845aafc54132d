//! `cargo bench --bench matching`: the matching stage at roll scale.
//!
//! Generates the evaluation set (`kim::matching::evalset`, deterministic) with
//! KIM_BENCH_PUPILS pupils (default 1,000,000) at KIM_BENCH_SCHOOLS schools
//! (default one per 50 pupils: 20,000 at 1 M) and KIM_BENCH_CASES notified
//! children (default 10,000; KIM_BENCH_SEED picks the set). Then, in two
//! phases, as the two processes that do this in production:
//!
//! 1. import (as `kim roll import`): a fresh store in a temporary folder
//!    (under KIM_BENCH_DIR if set), the roll through `Store::replace_roll`;
//!    prints import time, RSS and peak RSS (VmHWM), store size on disk;
//! 2. match (as `kim serve`, in a child process of its own): the store
//!    reopened, every child matched with `stage::match_child` (blind-index
//!    candidate lookup + decision, exactly as the matching stage does)
//!    twice, first from the freshly opened store, then warm; prints latency
//!    p50/p90/p99/max per pass, candidates decrypted per child, RSS and peak
//!    RSS of that process, and precision and recall per case kind (first
//!    pass), beside the goals (match p99 ≤ 1 ms, precision 1.0, recall
//!    ≥ 0.97 where a match is expected).
//!
//! Then (issue 12), warm: the near-miss candidate search `kim review show`
//! relies on (`nearmiss::review_candidates`) for every child the first pass
//! sent to review, and `kim roll find` (`Store::roll_find`) for every child
//! by family name alone, family + given name, and family + given + date of
//! birth, each with p50/p99/max (goals: near-miss p99 ≤ 20 ms and find p99
//! ≤ 50 ms at 9 M); and the family-name index's size (its entries × 20
//! bytes, counted from the generated roll).
//!
//! KIM_BENCH_DROP_CACHES=1 (as root) empties the OS page cache before the
//! match phase, so its first pass is a cold start from the disk;
//! KIM_BENCH_WARM=1 reads the roll ahead first, as `kim serve` does at start.
//!
//! Nothing is asserted: it prints figures. Every name is synthetic. The
//! machine's load average is printed before and after: on a shared machine
//! the tail latencies move with it.

#[path = "common/mod.rs"]
mod common;
use common::env_num;

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use kim::matching::evalset::{generate, Case, CaseKind, Score, THRESHOLD};
use kim::matching::stage::match_child;
use kim::store::crypto::MasterKey;
use kim::store::Store;

/// The daemon's allocator (src/main.rs), so the figures are the daemon's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

/// (apparent bytes, allocated bytes) of every file under `dir`.
fn disk_usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut stack = vec![dir.to_owned()];
    let (mut len, mut alloc) = (0, 0);
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                len += m.len();
                alloc += m.blocks() * 512;
            }
        }
    }
    (len, alloc)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The bench store's master key.
const KEY: [u8; 32] = [0x4B; 32];

fn main() {
    if let Some(dir) = std::env::var_os(MATCH_PHASE) {
        match_phase(Path::new(&dir));
        return;
    }
    let pupils: usize = env_num("KIM_BENCH_PUPILS", 1_000_000);
    let schools: usize = env_num("KIM_BENCH_SCHOOLS", (pupils / 50).max(2));
    let cases: usize = env_num("KIM_BENCH_CASES", 10_000);
    let seed: u64 = env_num("KIM_BENCH_SEED", 0x6B69_6D5F_6576_616C);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "matching bench: {pupils} pupils, {schools} schools, {cases} cases, seed {seed:#x}, nproc {cpus}"
    );

    println!("load average:      {}", loadavg());
    let rss0 = status_kib("VmRSS:");
    let t = Instant::now();
    let set = generate(seed, pupils, schools, cases);
    let roll_kib = status_kib("VmRSS:").saturating_sub(rss0);
    println!(
        "generate:          {:>8.1} s   (RSS {})",
        t.elapsed().as_secs_f64(),
        mib(status_kib("VmRSS:"))
    );

    let dir = match std::env::var_os("KIM_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("temporary folder");
    let path = dir.path().join("store");

    // Phase 1, as `kim roll import` (its own process: the store is locked
    // while `kim serve` runs).
    {
        let store = Store::open(&path, &MasterKey::from_bytes(KEY)).expect("open the store");
        assert!(store
            .replace_schools(&set.schools)
            .expect("import schools")
            .is_ok());
        let t = Instant::now();
        let imported = store.replace_roll(&set.pupils).expect("import the roll");
        let import = t.elapsed();
        println!(
            "import (replace_roll): {:>6.1} s   ({imported} pupils, {:.0} pupils/s)",
            import.as_secs_f64(),
            imported as f64 / import.as_secs_f64()
        );
        println!(
            "  RSS after import {}, peak (VmHWM) {}   (the generated roll, {}, is part of it)",
            mib(status_kib("VmRSS:")),
            mib(status_kib("VmHWM:")),
            mib(roll_kib)
        );
    }
    // The family-name index (`kim roll find`): one entry for the family
    // name, one per distinct first letter of the given/known-as names.
    let family_entries: u64 = set
        .pupils
        .iter()
        .map(|p| {
            let mut letters: Vec<char> = kim::normalise::given_keys(&p.given_name, &p.other_names)
                .iter()
                .filter_map(|g| g.chars().next())
                .collect();
            letters.sort_unstable();
            letters.dedup();
            1 + letters.len() as u64
        })
        .sum();
    println!(
        "family-name index: {family_entries} entries, {:.0} MiB ({:.1} B/pupil) of the index file",
        (family_entries * 20) as f64 / 1048576.0,
        (family_entries * 20) as f64 / pupils.max(1) as f64
    );
    let (len, alloc) = disk_usage(&path);
    println!(
        "store on disk:     {:>8.0} MiB apparent, {:.0} MiB allocated ({:.0} bytes/pupil)",
        len as f64 / 1048576.0,
        alloc as f64 / 1048576.0,
        alloc as f64 / pupils.max(1) as f64
    );
    // Phase 2 in a process of its own, as `kim serve` is: the cases go
    // through a file.
    let cases_path = dir.path().join("cases.jsonl");
    write_cases(&cases_path, &set.cases);
    drop(set);
    // KIM_BENCH_DROP_CACHES=1 (root): the OS page cache emptied first, so
    // the first pass reads the roll from the disk, as after a reboot.
    if env_num("KIM_BENCH_DROP_CACHES", 0u8) == 1 {
        let dropped = std::process::Command::new("sync")
            .status()
            .is_ok_and(|s| s.success())
            && std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok();
        println!(
            "page cache:        {}",
            if dropped {
                "dropped (first pass reads from disk)"
            } else {
                "could NOT be dropped (not root?)"
            }
        );
    }
    let status = std::process::Command::new(std::env::current_exe().expect("own path"))
        .env(MATCH_PHASE, dir.path())
        .status()
        .expect("start the match phase");
    assert!(status.success(), "the match phase failed: {status}");
}

/// Set (to the bench's folder) in the child process that runs phase 2.
const MATCH_PHASE: &str = "KIM_BENCH_MATCH_PHASE";

fn write_cases(path: &Path, cases: &[Case]) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("cases file"));
    for c in cases {
        let line = serde_json::json!({
            "kind": c.kind.as_str(),
            "truth": c.truth,
            "child": c.child,
        });
        serde_json::to_writer(&mut out, &line).expect("write a case");
        out.write_all(b"\n").expect("write a case");
    }
    out.flush().expect("write the cases");
}

fn read_cases(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).expect("cases file");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a case");
            let kind = v["kind"].as_str().expect("kind");
            Case {
                kind: *CaseKind::ALL
                    .iter()
                    .find(|k| k.as_str() == kind)
                    .expect("a known kind"),
                truth: v["truth"].as_str().map(String::from),
                child: serde_json::from_value(v["child"].clone()).expect("a child"),
            }
        })
        .collect()
}

/// Phase 2, as `kim serve`: the store reopened in a fresh process, every
/// child matched twice (first from the freshly opened store, then warm).
fn match_phase(dir: &Path) {
    let set_cases = read_cases(&dir.join("cases.jsonl"));
    let path = dir.join("store");
    // As `kim serve` opens it: with the daemon's page cache ([store] cache_mb).
    let cache_mb: u64 = common::env_num("KIM_BENCH_CACHE_MB", 512);
    let store = Store::open_with_cache(&path, &MasterKey::from_bytes(KEY), cache_mb << 20)
        .expect("reopen the store");
    println!(
        "match phase (a new process, store reopened): RSS {}",
        mib(status_kib("VmRSS:"))
    );
    // KIM_BENCH_WARM=1: read the roll ahead first, as `kim serve` does at
    // start (its time is printed; the first pass then starts warm).
    if env_num("KIM_BENCH_WARM", 0u8) == 1 {
        let t = Instant::now();
        let bytes = store.warm_roll().expect("read the roll ahead");
        println!(
            "roll read ahead:   {} MiB in {:.1} s",
            bytes >> 20,
            t.elapsed().as_secs_f64()
        );
    }
    let mut score = Score::default();
    let mut to_review: Vec<usize> = Vec::new();
    for pass in ["first pass ", "second pass"] {
        let mut lat = Vec::with_capacity(set_cases.len());
        for case in &set_cases {
            let t = Instant::now();
            let d = match_child(&store, &case.child, THRESHOLD).expect("match");
            lat.push(t.elapsed());
            if pass.starts_with("first") {
                score.record(case, &d);
            }
            if pass.starts_with("second")
                && matches!(d, kim::matching::decide::Decision::NeedsReview(_))
            {
                to_review.push(lat.len() - 1);
            }
        }
        lat.sort();
        let total: Duration = lat.iter().sum();
        let p99 = percentile(&lat, 0.99);
        println!(
            "match_child {pass}: p50 {}  p90 {}  p99 {}  max {}  mean {}  (goal p99 ≤ 1 ms: {})",
            us(percentile(&lat, 0.50)),
            us(percentile(&lat, 0.90)),
            us(p99),
            us(*lat.last().unwrap_or(&Duration::ZERO)),
            us(total / lat.len().max(1) as u32),
            if p99 <= Duration::from_millis(1) {
                "met"
            } else {
                "MISSED"
            }
        );
    }
    // Candidates read and decrypted per child (untimed, after the passes).
    let mut cands: Vec<usize> = set_cases
        .iter()
        .map(|c| {
            let mut given = vec![c.child.given_name.clone()];
            given.extend(c.child.other_names.iter().cloned());
            store
                .roll_candidates(&given, &c.child.family_name, c.child.date_of_birth)
                .expect("candidates")
                .len()
        })
        .collect();
    cands.sort_unstable();
    // Where the time goes (warm): the blind-index lookup with decryption,
    // and the decision over the candidates.
    let (mut look, mut dec) = (Vec::new(), Vec::new());
    for c in &set_cases {
        let mut given = vec![c.child.given_name.clone()];
        given.extend(c.child.other_names.iter().cloned());
        let t = Instant::now();
        let found = store
            .roll_candidates(&given, &c.child.family_name, c.child.date_of_birth)
            .expect("candidates");
        look.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(kim::matching::decide::decide(&c.child, &found, THRESHOLD));
        dec.push(t.elapsed());
    }
    look.sort();
    dec.sort();
    println!(
        "split (warm):      lookup p50 {} p99 {};  decide p50 {} p99 {}",
        us(percentile(&look, 0.5)),
        us(percentile(&look, 0.99)),
        us(percentile(&dec, 0.5)),
        us(percentile(&dec, 0.99))
    );
    println!(
        "candidates/child:  p50 {}  p99 {}  max {}",
        cands[cands.len() / 2],
        cands[(cands.len() * 99 / 100).min(cands.len() - 1)],
        cands.last().copied().unwrap_or(0)
    );
    near_miss_and_find(&store, &set_cases, &to_review);
    println!(
        "RSS, match phase:  {} now, peak (VmHWM) {}",
        mib(status_kib("VmRSS:")),
        mib(status_kib("VmHWM:"))
    );
    println!("load average:      {}", loadavg());
    println!();
    print!("{}", score.table());
    let all = score.total();
    let m = score.match_expected();
    println!(
        "precision {:.4} (goal 1.0: {});  recall where a match is expected {:.4} (goal ≥ 0.97: {})",
        all.precision(),
        if all.matched_wrong == 0 {
            "met"
        } else {
            "MISSED"
        },
        m.recall(),
        if m.recall() >= 0.97 { "met" } else { "MISSED" }
    );
}

/// p50 / p99 / max of `lat` (sorted here).
fn spread(lat: &mut [Duration]) -> String {
    lat.sort();
    format!(
        "p50 {}  p99 {}  max {}",
        us(percentile(lat, 0.5)),
        us(percentile(lat, 0.99)),
        us(*lat.last().unwrap_or(&Duration::ZERO))
    )
}

/// Issue 12 (warm): the near-miss candidate search for every child sent to
/// review, and `roll find` three ways for every child.
fn near_miss_and_find(store: &Store, cases: &[Case], to_review: &[usize]) {
    use kim::matching::nearmiss::review_candidates;
    use kim::store::roll::RollQuery;
    let mut lat = Vec::with_capacity(to_review.len());
    let mut listed = Vec::with_capacity(to_review.len());
    for &i in to_review {
        let t = Instant::now();
        let c = review_candidates(store, &cases[i].child, THRESHOLD).expect("candidates");
        lat.push(t.elapsed());
        listed.push(c.len());
    }
    listed.sort_unstable();
    let ok = |lat: &[Duration], goal_ms: u64| {
        if percentile(lat, 0.99) <= Duration::from_millis(goal_ms) {
            "met"
        } else {
            "MISSED"
        }
    };
    let s = spread(&mut lat);
    println!(
        "near-miss search:  {s}  over {} review items; candidates listed p50 {} max {}  (goal p99 ≤ 20 ms at 9 M: {})",
        lat.len(),
        listed.get(listed.len() / 2).copied().unwrap_or(0),
        listed.last().copied().unwrap_or(0),
        ok(&lat, 20)
    );
    for (label, with_given, with_dob) in [
        ("family", false, false),
        ("family+given", true, false),
        ("family+given+dob", true, true),
    ] {
        let mut lat = Vec::with_capacity(cases.len());
        let mut rows = Vec::with_capacity(cases.len());
        for c in cases {
            let q = RollQuery {
                family: &c.child.family_name,
                given: with_given.then_some(c.child.given_name.as_str()),
                dob: with_dob.then_some(c.child.date_of_birth),
                threshold: THRESHOLD,
                limit: 50,
            };
            let t = Instant::now();
            let found = store.roll_find(&q).expect("roll find");
            lat.push(t.elapsed());
            rows.push(found.pupils.len());
        }
        rows.sort_unstable();
        let s = spread(&mut lat);
        println!(
            "roll find {label:<17} {s}  rows p50 {} max {}  (goal p99 ≤ 50 ms at 9 M: {})",
            rows[rows.len() / 2],
            rows.last().copied().unwrap_or(0),
            ok(&lat, 50)
        );
    }
}

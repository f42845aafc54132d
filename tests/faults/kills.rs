//! Part 1, kills: SIGKILL at seeded moments in each phase of kim's work
//! (accepting, applying the journal at a start, matching, sending,
//! importing a roll, purging), a restart after each, and the checks: every
//! 202'd receipt answers, no alert doubled except a resend after a kill,
//! a roll import all-or-nothing; at the end every child settled, every
//! alert arrived, `audit verify`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::check;
use crate::load;
use crate::world::{percentile, roll, Setup, World};
use crate::{promise, Knobs, Outcome, Rng};

#[derive(Clone, Copy, Debug)]
enum Phase {
    Accepting,
    Replay,
    Matching,
    Sending,
    RollImport,
    Purging,
}

const PHASES: [Phase; 6] = [
    Phase::Accepting,
    Phase::Replay,
    Phase::Matching,
    Phase::Sending,
    Phase::RollImport,
    Phase::Purging,
];

/// Rows beyond the nine pupils in the two rolls imported in turn (imports
/// that take a while, to be killed in; their sizes tell them apart).
const ROLLS: [usize; 2] = [3000, 4000];

pub fn run(knobs: &Knobs) -> Outcome {
    let mut rng = Rng::new(knobs.seed);
    let mut w = World::new(Setup {
        extra: "[delivery]\nretry_initial = \"1s\"\nretry_max = \"2s\"\nsend_timeout = \"10s\"\n"
            .into(),
        server_per_run: true,
        ..Setup::default()
    });
    let files = [w.env.path("roll-a.csv"), w.env.path("roll-b.csv")];
    for (f, n) in files.iter().zip(ROLLS) {
        std::fs::write(f, roll(n)).unwrap();
    }
    let sizes = ROLLS.map(|n| 9 + n as u64);
    let (first, _) = w.start()?;
    eprintln!(
        "kim ready {:.2} s after its first start",
        first.as_secs_f64()
    );
    // How long an import of the big roll takes through the daemon: the
    // window to kill in.
    let t = Instant::now();
    let (code, _, err) = w.kim_cli(&["roll", "import", files[1].to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let import_ms = t.elapsed().as_millis() as u64;
    let mut roll_now = sizes[1];
    eprintln!(
        "roll import of {} pupils through the socket: {import_ms} ms",
        sizes[1]
    );

    w.start_load(3, Duration::from_millis(60));
    let mut order = PHASES.to_vec();
    let mut recover = Vec::new();
    let mut sigkills = 0;
    let mut startup_kills_before_ready = 0;
    for i in 0..knobs.kills {
        if i % PHASES.len() == 0 {
            // A seeded shuffle: every phase once per round.
            for j in (1..order.len()).rev() {
                order.swap(j, rng.range(0, j as u64) as usize);
            }
        }
        let phase = order[i % order.len()];
        std::thread::sleep(rng.millis(300, 1200));
        let mut note = String::new();
        let mut cli = None;
        match phase {
            Phase::Accepting => {
                std::thread::sleep(rng.millis(0, 500));
                w.kill();
            }
            Phase::Replay => {
                // Kill under load (the journal keeps what was not applied),
                // then kill the start that applies it.
                w.kill();
                sigkills += 1;
                let (mut child, offset) = w.spawn();
                let window = recover
                    .last()
                    .copied()
                    .unwrap_or(Duration::from_millis(300));
                std::thread::sleep(rng.millis(0, window.as_millis() as u64));
                let _ = child.kill();
                w.kills.push(Instant::now());
                let _ = child.wait();
                w.next_server();
                let log = w.log_since(offset);
                let before_ready = !log.contains("listening for police systems");
                startup_kills_before_ready += usize::from(before_ready);
                note = format!(
                    "start killed {} ready",
                    if before_ready { "before" } else { "after" }
                );
            }
            Phase::Matching => {
                // A burst: alerts to match right behind the 202s.
                let addr = w.addr();
                let shared = w.shared.clone();
                let client = w.client.clone();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let got = rt.block_on(async {
                    let mut got = 0;
                    if let Ok(mut c) = client.connect(addr).await {
                        for _ in 0..12 {
                            let n = shared.seq.fetch_add(1, Ordering::SeqCst);
                            if let Ok(Some(_)) = load::post(&shared, &mut c, n).await {
                                got += 1;
                            }
                        }
                    }
                    got
                });
                std::thread::sleep(rng.millis(0, 40));
                w.kill();
                note = format!("burst of {got}");
            }
            Phase::Sending => {
                let before = w.smtp.shared.lock().unwrap().data_ends;
                w.smtp.shared.lock().unwrap().stall_once = Some(rng.millis(1000, 2500));
                let until = Instant::now() + Duration::from_secs(15);
                while w.smtp.shared.lock().unwrap().data_ends == before && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(5));
                }
                std::thread::sleep(rng.millis(0, 300));
                // (Read before the kill: the next process gets a new server.)
                let stalled = w.smtp.shared.lock().unwrap().data_ends > before;
                w.kill();
                note = format!("a message held at the relay: {stalled}");
            }
            Phase::RollImport => {
                let target = &files[usize::from(roll_now == sizes[0])];
                let file = target.to_str().unwrap().to_owned();
                let config = w.env.config.clone();
                let h = std::thread::spawn(move || {
                    std::process::Command::new(crate::support::KIM)
                        .arg("--config")
                        .arg(config)
                        .args(["roll", "import", &file])
                        .output()
                });
                std::thread::sleep(rng.millis(0, import_ms.max(20)));
                w.kill();
                cli = Some(("roll import", h));
            }
            Phase::Purging => {
                let config = w.env.config.clone();
                let h = std::thread::spawn(move || {
                    std::process::Command::new(crate::support::KIM)
                        .arg("--config")
                        .arg(config)
                        .args(["retention", "run", "--older-than", "0s"])
                        .output()
                });
                std::thread::sleep(rng.millis(0, 150));
                w.kill();
                cli = Some(("retention run", h));
            }
        }
        sigkills += 1;
        // The admin command ends (its socket closed) before the restart,
        // so it cannot open the store itself meanwhile.
        if let Some((what, h)) = cli {
            let out = h.join().unwrap().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            note = match out.status.code() {
                Some(0) => format!("{what} finished first"),
                code => format!(
                    "{what} cut off (exit {code:?}: {})",
                    err.lines().next().unwrap_or("")
                ),
            };
        }
        let (ready, applied) = w.start()?;
        recover.push(ready);
        w.shared.paused.store(true, Ordering::SeqCst);
        if matches!(phase, Phase::RollImport) {
            let n = w.roll_pupils()?;
            promise(
                sizes.contains(&n),
                "a roll import is all or nothing",
                || {
                    format!(
                        "{n} pupils on the roll, neither {} nor {}",
                        sizes[0], sizes[1]
                    )
                },
            )?;
            roll_now = n;
            note.push_str(&format!(", roll {n}"));
        }
        let checked = check::receipts_answer(&w)?;
        let resends = check::no_doubles(&w)?;
        check::no_unexpected_answers(&w)?;
        w.shared.paused.store(false, Ordering::SeqCst);
        eprintln!(
            "kill {:>2}/{} {:<11} receipts {checked:>5}  recover {:.2} s  journal applied {applied:>3}  resends {resends}  {note}",
            i + 1,
            knobs.kills,
            format!("{phase:?}"),
            ready.as_secs_f64()
        );
    }
    w.stop_load();
    // Relay slowness ends; every child settles.
    let settled = check::settle(&w, Duration::from_secs(120))?;
    let checked = check::receipts_answer(&w)?;
    let arrived = check::every_alert_arrived(&w)?;
    let resends = check::no_doubles(&w)?;
    check::audit_verifies(&w)?;
    let in_audit = check::audit_delivers_once(&w)?;
    check::no_unexpected_answers(&w)?;
    let by_id = check::dsl_messages(&w.received());
    let messages: usize = by_id.values().map(Vec::len).sum();
    // Alerts of notifications kim took but whose 202 a kill cut off (the
    // police resend those and get the same receipt).
    let unacknowledged = by_id.len() - arrived;
    check::audit_matches_relay(&w, &in_audit)?;
    eprintln!(
        "kills: {} phases run, {sigkills} SIGKILLs ({startup_kills_before_ready} of them in a start before ready), {checked} receipts checked after each, the {arrived} alerts of 202'd children arrived ({messages} DSL messages: {} Message-IDs, {unacknowledged} of them for notifications whose 202 a kill cut off, + {resends} same-Message-ID resends by the next process after a kill, 0 other duplicates), settled {:.1} s after the load stopped, recover p50 {:.2} s max {:.2} s, audit verifies",
        knobs.kills,
        by_id.len(),
        settled.as_secs_f64(),
        percentile(&recover, 50).as_secs_f64(),
        percentile(&recover, 100).as_secs_f64()
    );
    Ok(())
}

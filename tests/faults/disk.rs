//! Part 3, a full disk: the store on a small tmpfs that a filler file
//! fills, once while alerts are being delivered under the police load and
//! once while a start applies the journal a kill left behind. The police
//! get 503s (never a 202 that is then lost), kim exits rather than limp on
//! (docs/guarantees.md "A brief full disk"), and once the space is back a
//! start applies the journal: every 202 is there, every alert arrives once.
//! Needs root for the mount; skipped with a note when not allowed.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::check;
use crate::world::{tail, Setup, World};
use crate::{promise, Knobs, Outcome, Rng};

/// A small tmpfs, unmounted when dropped (also when a promise broke).
struct SmallDisk {
    dir: PathBuf,
    _hold: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let hold = tempfile::Builder::new()
            .prefix("kim-faults-disk-")
            .tempdir()
            .unwrap();
        let dir = hold.path().join("mnt");
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self { dir, _hold: hold })
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Writes a file until the disk is full.
    fn fill(&self) {
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k", "count=1000"])
            .arg(format!("of={}", self.filler().display()))
            .stderr(Stdio::null())
            .status();
    }

    fn free(&self) {
        let _ = std::fs::remove_file(self.filler());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Waits (at most `limit`) for kim to exit by itself.
fn wait_exit(w: &mut World, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(s) = w.exited() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

pub fn run(knobs: &Knobs) -> Outcome {
    let mut rng = Rng::new(knobs.seed ^ 0xD15C);
    // Declared before the world: unmounted after kim is gone.
    let Some(disk) = SmallDisk::mount("6m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
        return Ok(());
    };
    let mut w = World::new(Setup {
        store: Some(disk.dir.join("store")),
        extra: "[delivery]\nretry_initial = \"1s\"\nretry_max = \"1s\"\n".into(),
        server_per_run: true,
        ..Setup::default()
    });
    w.start()?;
    w.start_load(2, Duration::from_millis(80));
    std::thread::sleep(rng.millis(800, 2000));

    // 1. The disk fills while alerts are delivered.
    let refused_before = w.shared.refused_503.load(Ordering::SeqCst);
    disk.fill();
    let filled = Instant::now();
    // kim exits once its store cannot write (docs/guarantees.md: about 6 s
    // after it broke); while only the accept journal cannot, it stays up.
    let exit = wait_exit(&mut w, Duration::from_secs(15));
    let refused = w.shared.refused_503.load(Ordering::SeqCst) - refused_before;
    disk.free();
    eprintln!(
        "disk full during delivery: {refused} × 503, kim {} {:.1} s after the disk filled",
        exit.map_or("still running".into(), |s| format!("exited ({s})")),
        filled.elapsed().as_secs_f64()
    );
    promise(refused > 0, "a full disk answers 503 to the police", || {
        "no 503 while the disk was full".into()
    })?;
    promise(
        exit.is_none_or(|s| !s.success()),
        "a broken store exits non-zero (for systemd to restart)",
        || format!("{exit:?}"),
    )?;
    if exit.is_some() {
        let (ready, applied) = w.start()?;
        eprintln!(
            "space back, restarted: ready in {:.2} s, {applied} applied from the journal",
            ready.as_secs_f64()
        );
    } else {
        // Still up: it takes notifications again once there is space.
        let freed = Instant::now();
        let n = w.shared.accepted().len();
        while w.shared.accepted().len() == n && freed.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
        }
        promise(
            w.shared.accepted().len() > n,
            "kim recovers when space returns",
            || "no 202 within 20 s of the space coming back".into(),
        )?;
        eprintln!(
            "space back: the next 202 {:.2} s later, without a restart",
            freed.elapsed().as_secs_f64()
        );
    }
    let checked = check::receipts_answer(&w)?;

    // 2. The disk fills while a start applies the journal.
    std::thread::sleep(rng.millis(500, 1500));
    w.kill();
    disk.fill();
    let (mut child, offset) = w.spawn();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if w.log_since(offset).contains("listening for police systems")
            || started.elapsed() > Duration::from_secs(30)
        {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = w.log_since(offset);
    let _ = child.kill();
    let _ = child.wait();
    w.next_server();
    // Either it cannot write and says so, or it found room and listened
    // (and answers 503 where it cannot write); never a silent failure.
    promise(
        status.is_none_or(|s| !s.success()) && (status.is_none() || log.contains("disk full?")),
        "a start on a full disk fails clearly",
        || format!("{status:?}; log:\n{}", tail(&log, 10)),
    )?;
    eprintln!(
        "start on a full disk: exit {status:?} after {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        tail(&log, 1)
    );
    disk.free();
    let (ready, applied) = w.start()?;
    eprintln!(
        "space back, started: ready in {:.2} s, {applied} applied from the journal",
        ready.as_secs_f64()
    );
    w.stop_load();
    let settled = check::settle(&w, Duration::from_secs(60))?;
    let total = check::receipts_answer(&w)?;
    let arrived = check::every_alert_arrived(&w)?;
    let resends = check::no_doubles(&w)?;
    check::audit_verifies(&w)?;
    check::audit_matches_relay(&w, &check::audit_delivers_once(&w)?)?;
    check::no_unexpected_answers(&w)?;
    eprintln!(
        "disk: {checked} receipts after the first fill, {total} at the end, every one there; {arrived} alerts arrived ({resends} resends after an exit or kill), settled in {:.1} s",
        settled.as_secs_f64()
    );
    Ok(())
}

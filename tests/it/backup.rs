//! `kim backup` and `kim restore` (issue 14 items 3 and 4) on the real
//! binary: a backup under a steady police load restores every receipt
//! acknowledged before it and serves; a damaged backup file is refused by
//! name; nothing is overwritten; `audit verify` tells a recorded restore
//! (warning, exit 0) from an unrecorded copy-back (exit 1); a cold standby
//! comes up from the backup and the master key alone.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::Method;

use crate::support::{notification, rt, Env, Options};

const SIGNED: &str = "[audit]\nsigning_key_file = \"audit.key\"\ncheckpoint_every = 8\ncheckpoint_file = \"checkpoints.jsonl\"\n";

/// An installation with a signing key, frequent checkpoints and a
/// checkpoint file (so a restore has a file that runs ahead of it).
fn signed() -> Env {
    let env = Env::with(Options {
        extra: Some(SIGNED.into()),
        ..Default::default()
    });
    let key = env.path("audit.key");
    let (code, _, err) = env.kim(&["keys", "signing-init", "--out", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    env
}

fn body(reference: &str) -> Vec<u8> {
    notification(
        reference,
        "Ottoline",
        "Brackenbury",
        "2015-02-11",
        "TN2 9QQ",
    )
}

/// POSTs `n` notifications on one connection; their receipts.
fn post_n(env: &Env, addr: std::net::SocketAddr, prefix: &str, n: usize) -> Vec<String> {
    rt().block_on(async {
        let mut c = env.kent().connect(addr).await.unwrap();
        let mut out = Vec::new();
        for i in 0..n {
            let a = c
                .send(
                    Method::POST,
                    "/v1/notifications",
                    Some(&body(&format!("{prefix}/{i}"))),
                )
                .await
                .unwrap();
            assert_eq!(a.status, 202, "{}", a.text());
            out.push(a.json()["receipt_id"].as_str().unwrap().to_owned());
        }
        out
    })
}

/// The status code of GET for each receipt, on one connection.
fn statuses(env: &Env, addr: std::net::SocketAddr, receipts: &[String]) -> Vec<u16> {
    rt().block_on(async {
        let mut c = env.kent().connect(addr).await.unwrap();
        let mut out = Vec::new();
        for r in receipts {
            let a = c
                .send(Method::GET, &format!("/v1/notifications/{r}"), None)
                .await
                .unwrap();
            out.push(a.status);
        }
        out
    })
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).unwrap()).unwrap()
}

/// A config like `env`'s with `[store] path` set to `store`.
fn config_with_store(env: &Env, store: &Path) -> PathBuf {
    let text = std::fs::read_to_string(&env.config).unwrap();
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("path = ") && l.contains("store") {
                format!("path = {:?}", store.display().to_string())
            } else {
                l.to_owned()
            }
        })
        .collect();
    let path = env.path("restored.toml");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

fn kim_with(config: &Path, args: &[&str]) -> (i32, String, String) {
    let o = std::process::Command::new(crate::support::KIM)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_backup_under_load_restores_every_acknowledged_receipt_and_serves() {
    let env = signed();
    let k = env.start();
    let addr = k.addr;
    // Three police clients post in a loop; each receipt is kept with
    // whether its 202 came before the backup was asked for.
    let asked = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let before: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let after: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let out = env.path("backup");
    let backup = std::thread::scope(|s| {
        for t in 0..3 {
            let (env, asked, stop, before, after) = (&env, &asked, &stop, &before, &after);
            s.spawn(move || {
                rt().block_on(async {
                    let mut c = env.kent().connect(addr).await.unwrap();
                    let started = Instant::now();
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst)
                        && started.elapsed() < Duration::from_secs(20)
                    {
                        let a = c
                            .send(
                                Method::POST,
                                "/v1/notifications",
                                Some(&body(&format!("KNT/BK/{t}/{i}"))),
                            )
                            .await
                            .unwrap();
                        assert_eq!(a.status, 202, "{}", a.text());
                        let r = a.json()["receipt_id"].as_str().unwrap().to_owned();
                        // Read after the 202: "before" only if the backup
                        // had not been asked for when it arrived.
                        if asked.load(Ordering::SeqCst) {
                            after.lock().unwrap().push(r);
                        } else {
                            before.lock().unwrap().push(r);
                        }
                        i += 1;
                    }
                })
            });
        }
        std::thread::sleep(Duration::from_millis(1500));
        asked.store(true, Ordering::SeqCst);
        let started = Instant::now();
        let backup = env.kim(&["backup", "--out", out.to_str().unwrap()]);
        let took = started.elapsed();
        std::thread::sleep(Duration::from_millis(1000));
        stop.store(true, Ordering::SeqCst);
        (backup, took)
    });
    let ((code, stdout, err), took) = backup;
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(
        stdout.contains("opens only with the master key"),
        "{stdout}"
    );
    let before = before.into_inner().unwrap();
    let after = after.into_inner().unwrap();
    assert!(before.len() >= 10, "too little load: {}", before.len());
    eprintln!(
        "backup under load: {} before, {} after, took {took:?}",
        before.len(),
        after.len()
    );
    // A second backup into the same folder: refused, nothing touched.
    let m = manifest(&out);
    let (code, _, err) = env.kim(&["backup", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(manifest(&out), m);
    assert!(
        !out.join("store/journal").exists(),
        "the journal is left out"
    );
    let n = m["audit_head"]["seq"].as_u64().unwrap();
    assert!(m["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["path"] == "store/db"));
    assert_eq!(m["kim_format_version"], kim::store::format::FORMAT_VERSION);
    // Audited, with identifiers only.
    let (_, list, _) = env.kim(&["audit", "list", "--json"]);
    assert!(list.contains("\"backup\""), "{list}");
    assert!(k.terminate(Duration::from_secs(30)).success());

    // Restore into a new folder; the config then points at it.
    let restored = env.path("restored-store");
    let (code, stdout, err) = env.kim(&[
        "restore",
        out.to_str().unwrap(),
        "--to",
        restored.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(
        stdout.contains("ask forces to re-send notifications received between"),
        "{stdout}"
    );
    let config = config_with_store(&env, &restored);
    let (code, stdout, err) = kim_with(&config, &["audit", "verify"]);
    assert_eq!(code, 0, "{stdout}{err}");
    let warning = format!("warning: restored from a backup at sequence {n} on ");
    assert!(stdout.contains(&warning), "{stdout}");
    assert!(
        stdout.contains("the checkpoint file holds later checkpoints up to")
            && stdout.contains(&format!("(events {}..", n + 1)),
        "{stdout}"
    );
    // The restored store serves: every receipt acknowledged before the
    // backup was asked for is there; those after its point are not.
    let k = crate::support::Kim::start(&config, &env.path("restored.log"));
    assert!(
        k.wait_for_log("restored from a backup at sequence"),
        "no warning at start"
    );
    let got = statuses(&env, k.addr, &before);
    let missing: Vec<_> = before
        .iter()
        .zip(&got)
        .filter(|(_, s)| **s != 200)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} lost: {missing:?}",
        missing.len(),
        before.len()
    );
    let last_after = after.last().expect("posts after the backup").clone();
    assert_eq!(statuses(&env, k.addr, &[last_after]), vec![404]);
    assert!(k.terminate(Duration::from_secs(30)).success());
}

#[test]
fn a_damaged_backup_file_is_refused_by_name_and_nothing_is_overwritten() {
    let env = Env::new();
    let k = env.start();
    post_n(&env, k.addr, "KNT/DMG", 5);
    assert!(k.terminate(Duration::from_secs(30)).success());
    // With the daemon stopped: the store opened here and copied.
    let out = env.path("backup");
    let (code, stdout, err) = env.kim(&["backup", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{err}");
    let m = manifest(&out);
    for f in m["files"].as_array().unwrap() {
        assert_eq!(f["mode"], 0o600, "{f}");
    }
    // Restore over a store: refused.
    let store = env.path("store");
    let (code, _, err) = env.kim(&[
        "restore",
        out.to_str().unwrap(),
        "--to",
        store.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not empty"), "{err}");
    // One flipped byte in a copied file: refused, naming it; nothing made.
    let victim = out.join("store/db");
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&victim, bytes).unwrap();
    let target = env.path("restored");
    let (code, _, err) = env.kim(&[
        "restore",
        out.to_str().unwrap(),
        "--to",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(victim.to_str().unwrap()) && err.contains("SHA-256"),
        "{err}"
    );
    assert!(!target.exists());
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("restoring"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_unrecorded_copy_back_fails_audit_verify() {
    let env = signed();
    let k = env.start();
    post_n(&env, k.addr, "KNT/CB/A", 10);
    assert!(k.terminate(Duration::from_secs(30)).success());
    let store = env.path("store");
    let copy = env.path("store-copy");
    let cp = |from: &Path, to: &Path| {
        let s = std::process::Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(s.success());
    };
    cp(&store, &copy);
    let k = env.start();
    post_n(&env, k.addr, "KNT/CB/B", 20);
    std::thread::sleep(Duration::from_millis(300));
    assert!(k.terminate(Duration::from_secs(30)).success());
    std::fs::remove_dir_all(&store).unwrap();
    cp(&copy, &store);
    let (code, stdout, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 1, "{stdout}{err}");
    assert!(
        err.contains("checkpoint file vouches for sequence"),
        "{err}"
    );
    assert!(!stdout.contains("restored from a backup"), "{stdout}");
}

#[test]
fn a_cold_standby_comes_up_from_the_backup_and_the_master_key_alone() {
    let env = signed();
    let k = env.start();
    let receipts = post_n(&env, k.addr, "KNT/CS", 6);
    // The daemon ships its first checkpoints to the file (every 8 events).
    let start = std::time::Instant::now();
    while !env.path("checkpoints.jsonl").exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let out = env.path("backup");
    let (code, stdout, err) = env.kim(&["backup", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(k.terminate(Duration::from_secs(30)).success());
    // "The other host": the first store and checkpoint file are gone; the
    // standby has the installation (config, certs), the master key and the
    // backup.
    std::fs::remove_dir_all(env.path("store")).unwrap();
    std::fs::remove_file(env.path("checkpoints.jsonl")).unwrap();
    let standby = env.path("standby/store");
    std::fs::create_dir_all(standby.parent().unwrap()).unwrap();
    let config = config_with_store(&env, &standby);
    let (code, stdout, err) = kim_with(
        &config,
        &[
            "restore",
            out.to_str().unwrap(),
            "--to",
            standby.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(
        env.path("checkpoints.jsonl").exists(),
        "the backup's checkpoint file installed"
    );
    let (code, stdout, err) = kim_with(&config, &["audit", "verify"]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(
        stdout.contains("restored from a backup at sequence"),
        "{stdout}"
    );
    let k = crate::support::Kim::start(&config, &env.path("standby.log"));
    assert!(statuses(&env, k.addr, &receipts).iter().all(|s| *s == 200));
    // And it takes new notifications.
    post_n(&env, k.addr, "KNT/CS/NEW", 1);
    assert!(k.terminate(Duration::from_secs(30)).success());
    let (code, stdout, err) = kim_with(&config, &["audit", "verify"]);
    assert_eq!(code, 0, "{stdout}{err}");
}

/// The daemon as its own user, `kim backup` as root: the folder the CLI
/// makes is handed to the daemon's user, which writes the backup into it.
#[test]
fn root_backs_up_a_daemon_that_runs_as_its_own_user() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED: needs root to run the daemon as another user");
        return;
    }
    const UID: u32 = 4_000_000_322;
    let env = Env::new();
    // The installation belongs to the daemon's user, as the package makes it.
    let s = std::process::Command::new("chown")
        .args(["-R", &format!("{UID}:65534")])
        .arg(env.dir.path())
        .status()
        .unwrap();
    assert!(s.success());
    let k = crate::support::Kim::start_with(
        &[
            "setpriv",
            &format!("--reuid={UID}"),
            "--regid=65534",
            "--clear-groups",
        ],
        &env.config,
        &env.path("kim.log"),
    );
    let receipts = post_n(&env, k.addr, "KNT/OWN", 3);
    let out = env.path("backup");
    let (code, stdout, err) = env.kim(&["backup", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{err}");
    let m = manifest(&out);
    assert!(m["files"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["uid"] == UID));
    assert!(k.terminate(Duration::from_secs(30)).success());
    // Restored as root, the files go back to the daemon's user.
    let to = env.path("restored");
    let (code, stdout, err) = env.kim(&[
        "restore",
        out.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(to.join("db")).unwrap().uid(), UID);
    assert_eq!(std::fs::metadata(&to).unwrap().uid(), UID);
    assert_eq!(receipts.len(), 3);
}

//! Retention through the real binary (issue 14): `kim retention run`
//! (dry and real, through the daemon), what the police and `kim status`
//! see after a purge, the audit after it, the shredding proof on the
//! binary's own store folder, and a kill -9 in the middle of a purge.

use std::path::Path;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::Value;

use crate::support::{files_containing, notification, post_accepted, rt, Env};

const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,,\n";
const ROLL: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
KCC-1,Zebediah,Quixotic,,2013-05-17,QX9 7ZZ,118765\n";
/// Names that must not survive anywhere once purged.
const KNOWN: [&str; 3] = ["Quixotic", "Umberleigh", "Wolstenholme"];

fn status(env: &Env, addr: std::net::SocketAddr, receipt: &str) -> Value {
    rt().block_on(env.kent().once(
        addr,
        Method::GET,
        &format!("/v1/notifications/{receipt}"),
        None,
    ))
    .unwrap()
    .json()
}

/// Waits until child 0 of `receipt` is in `state`.
fn wait_state(env: &Env, addr: std::net::SocketAddr, receipt: &str, state: &str) -> Value {
    let start = Instant::now();
    loop {
        let s = status(env, addr, receipt);
        if s["children"][0]["state"] == state {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{receipt} not {state}: {s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn receipts(v: &Value) -> Vec<String> {
    let mut r: Vec<String> = v["purged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect();
    r.sort();
    r
}

#[test]
fn a_purge_through_the_daemon_keeps_identifiers_states_and_the_audit_and_never_a_waiting_child() {
    let env = Env::new();
    env.import(SCHOOLS, ROLL);
    let k = env.start();
    // Delivered (matched on the roll, the file transport delivers).
    let delivered = post_accepted(
        &env,
        k.addr,
        &notification("KNT/26/R1", "Zebediah", "Quixotic", "2013-05-17", "QX9 7ZZ"),
    );
    // Dismissed by an admin after review.
    let dismissed = post_accepted(
        &env,
        k.addr,
        &notification("KNT/26/R2", "Ulla", "Umberleigh", "2012-01-02", "ME1 1AA"),
    );
    // Still waiting in review.
    let waiting = post_accepted(
        &env,
        k.addr,
        &notification("KNT/26/R3", "Wren", "Wolstenholme", "2011-02-03", "ME2 2BB"),
    );
    wait_state(&env, k.addr, &delivered, "delivered");
    wait_state(&env, k.addr, &dismissed, "needs_review");
    wait_state(&env, k.addr, &waiting, "needs_review");
    let (code, _, err) = env.kim(&["review", "dismiss", &dismissed, "0", "--reason", "not ours"]);
    assert_eq!(code, 0, "{err}");
    wait_state(&env, k.addr, &dismissed, "failed");

    // A dry run lists both settled ones and changes nothing.
    let (code, out, err) = env.kim(&[
        "retention",
        "run",
        "--dry-run",
        "--older-than",
        "0s",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let dry = json(&out);
    let mut want = vec![delivered.clone(), dismissed.clone()];
    want.sort();
    assert_eq!(receipts(&dry), want);
    assert_eq!(dry["dry_run"], true);
    assert!(status(&env, k.addr, &delivered).get("purged_at").is_none());
    let (_, before, _) = env.kim(&["status", &delivered, "--reveal"]);
    assert!(before.contains("Zebediah"), "{before}");

    // Under the default 30 days nothing is due.
    let (code, out, _) = env.kim(&["retention", "run", "--json"]);
    assert_eq!(code, 0);
    assert!(receipts(&json(&out)).is_empty(), "{out}");

    // Now.
    let (code, out, err) = env.kim(&["retention", "run", "--older-than", "0s"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("purged 2 notification(s)"), "{out}");
    assert!(
        out.contains(&delivered) && out.contains(&dismissed),
        "{out}"
    );
    assert!(!out.contains(&waiting), "{out}");

    // The police see the identifiers, states and when it was purged.
    let s = status(&env, k.addr, &delivered);
    assert!(s["purged_at"].is_string(), "{s}");
    assert_eq!(s["police_reference"], "KNT/26/R1");
    assert_eq!(s["children"][0]["state"], "delivered");
    assert_eq!(s["children"][0]["school_urn"], "118765");
    let s = status(&env, k.addr, &waiting);
    assert!(s.get("purged_at").is_none(), "{s}");
    // An admin sees it purged; --reveal has nothing to show.
    let (code, out, _) = env.kim(&["status", &delivered, "--reveal"]);
    assert_eq!(code, 0);
    assert!(out.contains("purged"), "{out}");
    assert!(!out.contains("Zebediah"), "{out}");
    let (_, out, _) = env.kim(&["status", &waiting, "--reveal"]);
    assert!(out.contains("Wren"), "the waiting child is whole: {out}");
    // `purged` audited with identifiers only; the chain verifies.
    let (code, out, _) = env.kim(&["audit", "list", "--json"]);
    assert_eq!(code, 0);
    let purged = out.matches("\"purged\"").count();
    assert_eq!(purged, 2, "{out}");
    for n in KNOWN {
        assert!(!out.contains(n), "{n} in the audit");
    }
    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    // Today's day key stays: the waiting child's notification needs it.
    let (code, out, _) = env.kim(&["retention", "run", "--older-than", "0s", "--json"]);
    assert_eq!(code, 0);
    assert!(json(&out)["days_shredded"].as_array().unwrap().is_empty());
    k.terminate(Duration::from_secs(10));
}

/// Copies `from` into `to` (files and folders).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// Accepts notifications into the (stopped) daemon's store at an earlier
/// time, as if kim had received them then: the receipt, its day key and
/// its received time are that day's.
fn accept_at(env: &Env, refs: &[&str], family: &str, at: jiff::Timestamp) -> Vec<String> {
    let key = kim::store::crypto::MasterKey::load(&env.path("master.key")).unwrap();
    let store = kim::store::Store::open(&env.path("store"), &key).unwrap();
    let out = refs
        .iter()
        .map(|r| {
            let mut body: Value =
                serde_json::from_slice(&notification(r, "Ulla", family, "2012-01-02", "ME1 1AA"))
                    .unwrap();
            body["incident"]["occurred_at"] = (at - jiff::SignedDuration::from_hours(8))
                .to_string()
                .into();
            let body = serde_json::to_vec(&body).unwrap();
            let n = kim::ingest::notification::parse_notification(&body, at).unwrap();
            let (o, _) = store.accept("kent", &n, at).unwrap();
            let kim::store::AcceptOutcome::Accepted(rec) = o else {
                panic!("not accepted")
            };
            rec.receipt_id.as_str().to_owned()
        })
        .collect();
    store.flush_now().unwrap();
    out
}

#[test]
fn after_a_purge_nothing_in_a_copy_from_before_opens_the_purged_day_with_the_master_key() {
    let env = Env::new();
    let old = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(40 * 24);
    let gone = accept_at(&env, &["KNT/26/S1", "KNT/26/S2"], "Umberleigh", old);
    let k = env.start();
    for r in &gone {
        wait_state(&env, k.addr, r, "needs_review");
        let (code, _, err) = env.kim(&["review", "dismiss", r, "0", "--reason", "moved"]);
        assert_eq!(code, 0, "{err}");
    }
    let kept = post_accepted(
        &env,
        k.addr,
        &notification("KNT/26/S3", "Wren", "Wolstenholme", "2011-02-03", "ME2 2BB"),
    );
    wait_state(&env, k.addr, &kept, "needs_review");
    k.terminate(Duration::from_secs(10));

    let store = env.path("store");
    let before = env.path("store-before");
    copy_dir(&store, &before);
    let old_day = old.to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
    assert!(store.join(format!("keys/{old_day}.kek")).exists());

    let k = env.start();
    let (code, out, err) = env.kim(&["retention", "run", "--older-than", "0s", "--json"]);
    assert_eq!(code, 0, "{err}");
    let r = json(&out);
    let mut want = gone.clone();
    want.sort();
    assert_eq!(receipts(&r), want);
    assert_eq!(r["days_shredded"][0], old_day.as_str(), "{out}");
    k.terminate(Duration::from_secs(10));
    assert!(!store.join(format!("keys/{old_day}.kek")).exists());

    // The copy from before the purge, with the keys/ state from after it.
    std::fs::remove_dir_all(before.join("keys")).unwrap();
    copy_dir(&store.join("keys"), &before.join("keys"));
    let key = kim::store::crypto::MasterKey::load(&env.path("master.key")).unwrap();
    let copy = kim::store::Store::open(&before, &key).unwrap();
    for r in &gone {
        match copy.load_notification(r) {
            Err(kim::store::StoreError::Shredded(x)) => assert_eq!(&x, r),
            other => panic!("{r} opened in the old copy: {other:?}"),
        }
    }
    let n = copy.load_notification(&kept).unwrap().unwrap();
    assert_eq!(n.children[0].family_name, "Wolstenholme");
    drop(copy);
    // And the live store holds the purged names nowhere.
    let hits = files_containing(&store, &["Umberleigh"]);
    assert!(hits.is_empty(), "{hits:?}");
}

#[test]
fn a_kill_in_the_middle_of_a_purge_leaves_each_notification_whole_or_purged() {
    let env = Env::new();
    let old = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(40 * 24);
    let refs: Vec<String> = (0..400).map(|i| format!("KNT/26/K{i}")).collect();
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let all = accept_at(&env, &refs, "Umberleigh", old);
    // Settle them all: in review, then dismissed (through the library on
    // the stopped daemon's store, as `kim review dismiss` would).
    {
        let key = kim::store::crypto::MasterKey::load(&env.path("master.key")).unwrap();
        let store = kim::store::Store::open(&env.path("store"), &key).unwrap();
        for r in &all {
            store
                .complete_match_at(
                    r,
                    &[(
                        0,
                        kim::matching::decide::Decision::NeedsReview(
                            kim::matching::decide::ReviewReason::NoCandidate,
                        ),
                    )],
                    old,
                )
                .unwrap();
            let _ = store.review_dismiss(r, 0, "moved", "admin:test").unwrap();
        }
        store.flush_now().unwrap();
    }
    // sled lets go of its lock a moment after the last handle.
    std::thread::sleep(Duration::from_millis(300));
    // `kim retention run` on the store (no daemon), killed part way: later
    // each time until a kill lands with some purged and some not.
    let key = kim::store::crypto::MasterKey::load(&env.path("master.key")).unwrap();
    let open = || loop {
        match kim::store::Store::open(&env.path("store"), &key) {
            Err(kim::store::StoreError::Locked(_)) => std::thread::sleep(Duration::from_millis(20)),
            other => break other.unwrap(),
        }
    };
    let mut partial = false;
    let mut whole = all.len();
    for delay_ms in [300u64, 450, 600, 800, 1000, 1300, 1600, 2000, 2500] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kim"))
            .args(["--config", env.config.to_str().unwrap()])
            .args(["retention", "run", "--older-than", "0s"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let store = open();
        let mut purged = 0;
        whole = 0;
        for r in &all {
            let rec = store.record(r).unwrap().unwrap();
            match (rec.purged_at, store.load_notification(r)) {
                (Some(_), Ok(None)) => purged += 1,
                (None, Ok(Some(n))) => {
                    assert_eq!(n.children[0].family_name, "Umberleigh");
                    whole += 1;
                }
                (p, other) => panic!("{r}: half purged: purged_at {p:?}, payload {other:?}"),
            }
        }
        drop(store);
        std::thread::sleep(Duration::from_millis(200));
        eprintln!("killed after {delay_ms} ms: {purged} purged, {whole} whole");
        if purged > 0 && whole > 0 {
            partial = true;
            break;
        }
        if whole == 0 {
            break;
        }
    }
    assert!(partial, "no kill landed in the middle of the purge");
    let store = open();
    // The chain verifies, and a second run finishes the job.
    let events: Vec<_> = store.audit_events().map(Result::unwrap).collect();
    kim::audit::verify_chain(&kim::audit::Head::default(), &events).unwrap();
    drop(store);
    std::thread::sleep(Duration::from_millis(200));
    let (code, out, err) = env.kim(&["retention", "run", "--older-than", "0s", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(receipts(&json(&out)).len(), whole, "{out}");
}

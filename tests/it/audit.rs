//! `kim audit verify|list` on a real store: an intact chain verifies; an
//! altered, deleted or truncated event is named; listings hold no names.

use hyper::Method;

use crate::support::{notification, rt, Env};

/// Runs the daemon, sends three notifications, stops it; returns a receipt.
/// POSTs one notification about Zebediah (reference `reference`): its receipt.
fn post_one(env: &Env, addr: std::net::SocketAddr, reference: &str) -> String {
    let body = notification(
        reference,
        "Zebediah",
        "Quixotic-Marsh",
        "2013-05-17",
        "QX9 7ZZ",
    );
    crate::support::post_accepted(env, addr, &body)
}

fn populated() -> (Env, String) {
    let env = Env::new();
    let k = env.start();
    let mut receipt = String::new();
    for i in 0..3 {
        receipt = post_one(&env, k.addr, &format!("KNT/AUD/{i}"));
    }
    // The matching stage has placed the last one (a stop does not wait for
    // it: its work item would be matched at the next start).
    let start = std::time::Instant::now();
    loop {
        let a = rt()
            .block_on(env.kent().once(
                k.addr,
                Method::GET,
                &format!("/v1/notifications/{receipt}"),
                None,
            ))
            .unwrap();
        if a.json()["children"][0]["state"] != "queued" {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "never matched"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(k.terminate(std::time::Duration::from_secs(30)).success());
    (env, receipt)
}

fn audit_tree(env: &Env) -> (sled::Db, sled::Tree) {
    let db = sled::open(env.path("store")).unwrap();
    let t = db.open_tree("audit").unwrap();
    (db, t)
}

#[test]
fn an_intact_chain_verifies_and_lists_without_personal_data() {
    let (env, receipt) = populated();
    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("verifies"), "{out}");

    let (code, out, _) = env.kim(&["audit", "list"]);
    assert_eq!(code, 0);
    for kind in [
        "config_loaded",
        "started",
        "received",
        "needs_review",
        "stopped",
    ] {
        assert!(out.contains(kind), "{kind} missing:\n{out}");
    }
    for secret in ["Zebediah", "Quixotic", "2013-05-17", "QX9"] {
        assert!(!out.contains(secret), "audit list shows {secret}");
    }
    let (_, out, _) = env.kim(&[
        "audit",
        "list",
        "--receipt",
        &receipt.to_lowercase(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let events = v.as_array().unwrap();
    assert!(events.len() >= 2, "{out}");
    assert!(events.iter().all(|e| e["receipt"] == receipt.as_str()));
    let (_, out, _) = env.kim(&["audit", "list", "--since", "1h", "--json"]);
    assert!(!serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(env.kim(&["audit", "list", "--since", "soon"]).0, 2);
}

#[test]
fn an_altered_event_is_named() {
    let (env, _) = populated();
    {
        let (db, t) = audit_tree(&env);
        let key = 3u64.to_be_bytes();
        let v = t.get(key).unwrap().unwrap();
        let text =
            String::from_utf8(v.to_vec())
                .unwrap()
                .replacen("\"actor\":\"", "\"actor\":\"x", 1);
        assert_ne!(text.as_bytes(), &v[..], "the tamper changed something");
        t.insert(key, text.as_bytes()).unwrap();
        db.flush().unwrap();
    }
    let (code, _, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("audit event 3:") && err.contains("altered"),
        "{err}"
    );
}

#[test]
fn a_deleted_event_and_a_truncated_tail_are_detected() {
    let (env, _) = populated();
    {
        let (db, t) = audit_tree(&env);
        t.remove(2u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let (code, _, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 1);
    assert!(err.contains("audit event 2:"), "{err}");

    let (env, _) = populated();
    {
        let (db, t) = audit_tree(&env);
        let last = t.last().unwrap().unwrap().0;
        t.remove(last).unwrap();
        db.flush().unwrap();
    }
    let (code, _, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 1);
    assert!(err.contains("events removed from the tail"), "{err}");
}

#[test]
fn status_shows_states_and_reveal_is_audited() {
    let (env, receipt) = populated();
    let (code, out, err) = env.kim(&["status", &receipt]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&receipt) && out.contains("child 0"), "{out}");
    assert!(!out.contains("Zebediah"), "{out}");
    let (code, out, _) = env.kim(&["status", &receipt, "--reveal"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Zebediah Quixotic-Marsh") && out.contains("2013-05-17"),
        "{out}"
    );
    let (_, out, _) = env.kim(&["audit", "list", "--receipt", &receipt]);
    assert!(
        out.contains("admin_access") && out.contains("action=reveal"),
        "{out}"
    );
    assert!(!out.contains("Zebediah"));
    assert_eq!(env.kim(&["status", "AAAA-BBBB-CCCC-DDDD"]).0, 1);
    assert_eq!(env.kim(&["status", "nonsense"]).0, 2);
    assert_eq!(env.kim(&["audit", "verify"]).0, 0);
}

/// An installation with an audit signing key, checkpoints every 4 events and
/// a checkpoint file; the daemon run with 10 notifications and stopped.
fn signed() -> Env {
    let env = Env::with(crate::support::Options {
        extra: Some(
            "[audit]\nsigning_key_file = \"audit.key\"\ncheckpoint_every = 4\ncheckpoint_file = \"checkpoints.jsonl\"\n"
                .into(),
        ),
        ..Default::default()
    });
    let key = env.path("audit.key");
    let (code, out, err) = env.kim(&["keys", "signing-init", "--out", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("audit.key.pub"), "{out}");
    // Never overwrites.
    assert_eq!(
        env.kim(&["keys", "signing-init", "--out", key.to_str().unwrap()])
            .0,
        2
    );
    let k = env.start();
    for i in 0..10 {
        post_one(&env, k.addr, &format!("KNT/SIG/{i}"));
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(k.terminate(std::time::Duration::from_secs(30)).success());
    env
}

#[test]
fn the_daemon_signs_checkpoints_into_the_store_and_the_checkpoint_file() {
    let env = signed();
    let file = std::fs::read_to_string(env.path("checkpoints.jsonl")).unwrap();
    assert!(file.lines().count() >= 2, "{file}");
    for secret in ["Zebediah", "Quixotic", "2013-05-17", "QX9"] {
        assert!(!file.contains(secret));
    }
    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("stored checkpoints") && out.contains("checkpoints.jsonl"),
        "{out}"
    );

    // Export, then verify it with only the public key.
    let export = env.path("audit-export.jsonl");
    let (code, out, err) = env.kim(&["audit", "export", "--out", export.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("checkpoints"), "{out}");
    assert_eq!(
        env.kim(&["audit", "export", "--out", export.to_str().unwrap()])
            .0,
        2,
        "never overwrites"
    );
    let public = env.path("audit.key.pub");
    let verify = |f: &std::path::Path| {
        std::process::Command::new(crate::support::KIM)
            .args([
                "audit",
                "verify",
                "--file",
                f.to_str().unwrap(),
                "--public-key",
                public.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    let o = verify(&export);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("the export verifies"));

    // One flipped byte in the third event's line: exit 1 naming event 3.
    let text = std::fs::read(&export).unwrap();
    let third = text
        .split(|b| *b == b'\n')
        .take(2)
        .map(|l| l.len() + 1)
        .sum::<usize>();
    let mut bad = text.clone();
    bad[third + 40] ^= 0x01;
    let tampered = env.path("tampered.jsonl");
    std::fs::write(&tampered, &bad).unwrap();
    let o = verify(&tampered);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("event 3 (line 3)"), "{err}");

    // Checked against another key: rejected.
    let other = env.path("other.key");
    assert_eq!(
        env.kim(&["keys", "signing-init", "--out", other.to_str().unwrap()])
            .0,
        0
    );
    let o = std::process::Command::new(crate::support::KIM)
        .args([
            "audit",
            "verify",
            "--file",
            export.to_str().unwrap(),
            "--public-key",
            env.path("other.key.pub").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("checkpoint"));
}

#[test]
fn a_tail_cut_behind_the_last_checkpoint_is_caught_by_the_checkpoint_file() {
    let env = signed();
    {
        // An attacker with the store removes the last events, the stored
        // checkpoints that cover them, and moves the head back: the chain
        // that is left is internally consistent.
        let db = sled::open(env.path("store")).unwrap();
        let audit = db.open_tree("audit").unwrap();
        let cps = db.open_tree("checkpoints").unwrap();
        let meta = db.open_tree("meta").unwrap();
        let last: u64 = audit.len() as u64;
        let keep = last - 6;
        for seq in keep + 1..=last {
            audit.remove(seq.to_be_bytes()).unwrap();
        }
        for k in cps.iter().keys() {
            let k = k.unwrap();
            if u64::from_be_bytes(k.as_ref().try_into().unwrap()) > keep {
                cps.remove(k).unwrap();
            }
        }
        let ev: serde_json::Value =
            serde_json::from_slice(&audit.get(keep.to_be_bytes()).unwrap().unwrap()).unwrap();
        let head = serde_json::json!({"seq": keep, "hash": ev["hash"]});
        meta.insert("audit_head", serde_json::to_vec(&head).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("checkpoint file vouches for sequence"),
        "{err}"
    );

    // A checkpoint line re-signed with another key: rejected too.
    let env = signed();
    let other = env.path("other.key");
    assert_eq!(
        env.kim(&["keys", "signing-init", "--out", other.to_str().unwrap()])
            .0,
        0
    );
    let text = std::fs::read_to_string(env.path("checkpoints.jsonl")).unwrap();
    let mut first: kim::audit::checkpoint::Checkpoint =
        serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let forged = kim::audit::checkpoint::Signer::load(&other).unwrap().sign(
        &kim::audit::Head {
            seq: first.seq,
            hash: first.hash.clone(),
        },
        first.time,
    );
    first.signature = forged.signature;
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[0] = serde_json::to_string(&first).unwrap();
    std::fs::write(env.path("checkpoints.jsonl"), lines.join("\n") + "\n").unwrap();
    let (code, _, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("checkpoint") && err.contains("not valid"),
        "{err}"
    );
}

/// `curl` the metrics page.
fn metrics_text(addr: std::net::SocketAddr) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn gauge(text: &str, name: &str) -> Option<i64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn a_checkpoint_the_file_could_not_take_is_retried_alerted_on_and_verify_names_the_gap() {
    let env = signed();
    let file = env.path("checkpoints.jsonl");
    let saved = env.path("checkpoints.saved");
    // The file cannot be opened for appending (as with no descriptors left
    // or a full disk): a folder stands in its place.
    std::fs::rename(&file, &saved).unwrap();
    std::fs::create_dir(&file).unwrap();
    let k = env.start();
    let metrics = k.metrics.expect("metrics listener");
    for i in 0..8 {
        post_one(&env, k.addr, &format!("KNT/CPF/{i}"));
    }
    let start = std::time::Instant::now();
    let mut behind = 0;
    while start.elapsed() < std::time::Duration::from_secs(15) {
        behind = gauge(&metrics_text(metrics), "kim_audit_checkpoints_unshipped").unwrap_or(0);
        if behind > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        behind > 0,
        "the metric must show checkpoints the file lacks"
    );
    // Retried every 500 ms, logged at most once per 10 s.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let log = k.log_text();
    let lines = log.matches("missing from the checkpoint file").count();
    assert!((1..=2).contains(&lines), "{lines} error lines:\n{log}");
    assert!(k.terminate(std::time::Duration::from_secs(30)).success());

    // With the daemon stopped: the file lacks stored checkpoints.
    std::fs::remove_dir(&file).unwrap();
    std::fs::rename(&saved, &file).unwrap();
    let before = std::fs::read_to_string(&file).unwrap().lines().count();
    // (Checkpoints younger than 3 s may be on their way into the file.)
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 1, "verify must report the gap: {out}{err}");
    assert!(err.contains("checkpoints.jsonl lacks"), "{err}");

    // The next start appends what the file lacks, in order.
    let k = env.start();
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&file).unwrap().lines().count() <= before
        && start.elapsed() < std::time::Duration::from_secs(10)
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(k.terminate(std::time::Duration::from_secs(30)).success());
    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_start_that_fails_on_the_way_leaves_no_started_event() {
    let env = Env::new();
    // The admin socket's folder cannot be made: a file stands in its way.
    std::fs::write(env.path("blocker"), b"").unwrap();
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("socket = \"admin.sock\"", "socket = \"blocker/admin.sock\"");
    std::fs::write(&env.config, text).unwrap();
    let (code, _, err) = env.kim(&["serve"]);
    assert_ne!(code, 0, "{err}");
    let (code, out, err) = env.kim(&["audit", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let events: serde_json::Value = serde_json::from_str(&out).unwrap();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"config_loaded"), "{kinds:?}");
    assert!(!kinds.contains(&"started"), "{kinds:?}");
}

//! `kim audit verify|list` on a real store: an intact chain verifies; an
//! altered, deleted or truncated event is named; listings hold no names.

use hyper::Method;

use crate::support::{notification, rt, Env};

/// Runs the daemon, sends three notifications, stops it; returns a receipt.
fn populated() -> (Env, String) {
    let env = Env::new();
    let k = env.start();
    let mut receipt = String::new();
    for i in 0..3 {
        let body = notification(
            &format!("KNT/AUD/{i}"),
            "Zebediah",
            "Quixotic-Marsh",
            "2013-05-17",
            "QX9 7ZZ",
        );
        let a = rt()
            .block_on(
                env.kent()
                    .once(k.addr, Method::POST, "/v1/notifications", Some(&body)),
            )
            .unwrap();
        assert_eq!(a.status, 202);
        receipt = a.json()["receipt_id"].as_str().unwrap().to_owned();
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
    for kind in ["started", "received", "needs_review", "stopped"] {
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

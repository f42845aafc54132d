//! Matching end to end through the real daemon, and the review queue through
//! the real CLI: matched, ambiguous, unknown; assign and dismiss, audited.

use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{json, Value};

use crate::support::{files_containing, rt, Env};

const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,,\n\
118766,Oakwood School,Mr Oak,dsl@oakwood.example,,\n";

const ROLL: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
KCC-1,Zebediah,Quixotic-Marsh,Zeb,2013-05-17,QX9 7ZZ,118765\n\
KCC-2,Jack,Smith,,2015-05-05,ME1 1AA,118765\n\
KCC-3,Jack,Smith,,2015-05-05,ME2 2BB,118766\n";

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

#[test]
fn children_are_matched_or_queued_and_admins_decide_the_rest() {
    let env = Env::new();
    std::fs::write(env.path("schools.csv"), SCHOOLS).unwrap();
    std::fs::write(env.path("roll.csv"), ROLL).unwrap();
    assert_eq!(
        env.kim(&[
            "schools",
            "import",
            env.path("schools.csv").to_str().unwrap()
        ])
        .0,
        0
    );
    assert_eq!(
        env.kim(&["roll", "import", env.path("roll.csv").to_str().unwrap()])
            .0,
        0
    );

    let k = env.start();
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(9)).to_string();
    let body = json!({
        "police_reference": "KNT/26/M1",
        "incident": {"occurred_at": occurred, "category": "domestic_abuse"},
        "children": [
            // Swapped order, case and punctuation differences, a known-as name.
            {"given_name": "QUIXOTIC MARSH", "family_name": "zeb", "date_of_birth": "2013-05-17", "involvement": "present"},
            // The same name and date of birth at two schools, no hint.
            {"given_name": "Jack", "family_name": "Smith", "date_of_birth": "2015-05-05", "involvement": "witnessed"},
            // Not on the roll; the hint alone must not match.
            {"given_name": "Nobody", "family_name": "Known", "date_of_birth": "2016-06-06", "school_urn": "118765", "involvement": "unknown"}
        ]
    });
    let a = rt()
        .block_on(env.kent().once(
            k.addr,
            Method::POST,
            "/v1/notifications",
            Some(&serde_json::to_vec(&body).unwrap()),
        ))
        .unwrap();
    assert_eq!(a.status, 202, "{}", a.text());
    let receipt = a.json()["receipt_id"].as_str().unwrap().to_owned();

    // The stage runs in the background; the police see the states change.
    let start = Instant::now();
    let s = loop {
        let s = status(&env, k.addr, &receipt);
        if s["children"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["state"] != "queued")
        {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still queued: {s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Matched, and (file transport) perhaps already delivered.
    assert!(
        s["children"][0]["state"] == "matched" || s["children"][0]["state"] == "delivered",
        "{s}"
    );
    assert_eq!(s["children"][0]["school_urn"], "118765");
    assert_eq!(s["children"][1]["state"], "needs_review");
    assert!(s["children"][1].get("school_urn").is_none());
    assert_eq!(s["children"][2]["state"], "needs_review");
    assert!(k.wait_for_log("needs review"));
    let log = k.log_text();
    for secret in ["Quixotic", "Zebediah", "Nobody", "2015-05-05", "QX9"] {
        assert!(!log.contains(secret), "the log contains {secret}");
    }
    assert!(k.terminate(Duration::from_secs(30)).success());

    // The review queue: identifiers and reason codes, no names.
    let (code, out, _) = env.kim(&["review", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("ambiguous_schools") && out.contains("no_candidate"),
        "{out}"
    );
    assert!(!out.contains("Jack") && !out.contains("Nobody"), "{out}");
    let (_, out, _) = env.kim(&["review", "list", "--json"]);
    let items: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 2);

    // Refusals: unknown school, not in the queue, a bad receipt id.
    let (code, _, err) = env.kim(&["review", "assign", &receipt, "1", "999999"]);
    assert_eq!(code, 1);
    assert!(err.contains("no school with URN 999999"), "{err}");
    let (code, _, err) = env.kim(&["review", "assign", &receipt, "0", "118765"]);
    assert_eq!(code, 1, "child 0 was matched, not queued");
    assert!(err.contains("waiting for review"), "{err}");
    assert_eq!(
        env.kim(&["review", "assign", "not-a-receipt", "1", "118765"])
            .0,
        2
    );

    // Decisions.
    let (code, out, err) = env.kim(&["review", "assign", &receipt, "1", "118766"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("assigned"));
    let (code, _, err) = env.kim(&[
        "review",
        "dismiss",
        &receipt,
        "2",
        "--reason",
        "Not on our roll: Nobody Known moved away",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        env.kim(&["review", "dismiss", &receipt, "2", "--reason", "again"])
            .0,
        1
    );
    let (_, out, _) = env.kim(&["review", "list"]);
    assert!(out.contains("empty"), "{out}");

    // The police see the outcome; the audit has it with the admin's name;
    // the dismissal's free text is sealed, not in the clear.
    let k = env.start();
    let s = status(&env, k.addr, &receipt);
    // Assigned while the daemon was stopped: its alert goes out on start.
    assert!(
        s["children"][1]["state"] == "matched" || s["children"][1]["state"] == "delivered",
        "{s}"
    );
    assert_eq!(s["children"][1]["school_urn"], "118766");
    assert_eq!(s["children"][2]["state"], "failed");
    drop(k);
    let master = kim::store::crypto::MasterKey::load(&env.path("master.key")).unwrap();
    let store = kim::store::Store::open(&env.path("store"), &master).unwrap();
    let events: Vec<_> = store.audit_events().collect::<Result<_, _>>().unwrap();
    kim::audit::verify_chain(&kim::audit::Head::default(), &events).unwrap();
    use kim::audit::EventKind::*;
    let count = |k| events.iter().filter(|e| e.kind == k).count();
    assert_eq!(
        (count(Matched), count(NeedsReview), count(Reviewed)),
        (1, 2, 2)
    );
    let reviewed: Vec<_> = events.iter().filter(|e| e.kind == Reviewed).collect();
    assert!(reviewed.iter().all(|e| e.actor.starts_with("admin:")));
    assert_eq!(reviewed[0].refs.school_urn.as_deref(), Some("118766"));
    assert_eq!(
        events
            .iter()
            .find(|e| e.kind == NeedsReview)
            .unwrap()
            .detail["reason"],
        "ambiguous_schools"
    );
    drop(store);
    let hits = files_containing(
        &env.path("store"),
        &["moved away", "Nobody", "Quixotic", "Jack"],
    );
    assert!(hits.is_empty(), "{hits:?}");
}

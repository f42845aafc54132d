//! The review notice (issue 12, items 1 and 5): a child entering review is
//! told to the `[review] notify` addresses once per `digest_every`, with
//! identifiers only; a burst is one digest; the `kim_review_*` metrics move.
//! Real binary, file transport.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Env, Options};

const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,,\n\
118766,Oakwood School,Mr Oak,dsl@oakwood.example,,\n";

/// Two Jack Smiths born the same day at two schools: every police Jack
/// Smith of that date goes to review.
const ROLL: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
KCC-2,Jack,Smith,,2015-05-05,ME1 1AA,118765\n\
KCC-3,Jack,Smith,,2015-05-05,ME2 2BB,118766\n";

fn installed(digest_every: &str) -> Env {
    let env = Env::with(Options {
        extra: Some(format!(
            "[review]\nnotify = [\"review-desk@council.example\"]\ndigest_every = \"{digest_every}\"\n"
        )),
        ..Options::default()
    });
    env.import(SCHOOLS, ROLL);
    env
}

/// Posts a namesake Jack Smith (with a postcode); the receipt.
fn post_namesake(env: &Env, addr: std::net::SocketAddr, reference: &str) -> String {
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
    let body = serde_json::to_vec(&json!({
        "police_reference": reference,
        "incident": {"occurred_at": occurred, "category": "domestic_abuse"},
        "children": [{"given_name": "Jack", "family_name": "Smith", "date_of_birth": "2015-05-05",
                      "postcode": "CT9 9ZZ", "involvement": "present"}]
    }))
    .unwrap();
    crate::support::post_accepted(env, addr, &body)
}

/// The review notices in the file outbox.
fn notices(env: &Env) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(env.path("outbox")) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("review.") && n.ends_with(".eml"))
        })
        .collect();
    v.sort();
    v
}

/// Waits (bounded) until at least one notice is in the outbox.
fn wait_for_notice(env: &Env, limit: Duration) -> Vec<PathBuf> {
    let start = Instant::now();
    while start.elapsed() < limit && notices(env).is_empty() {
        std::thread::sleep(Duration::from_millis(50));
    }
    notices(env)
}

/// An .eml's text with quoted-printable soft line breaks undone.
fn eml_text(p: &PathBuf) -> String {
    std::fs::read_to_string(p)
        .unwrap()
        .replace("=\r\n", "")
        .replace("=\n", "")
}

fn gauge(k: &crate::support::Kim, name: &str) -> i64 {
    let out = std::process::Command::new("curl")
        .arg("--silent")
        .arg(format!("http://{}/metrics", k.metrics.unwrap()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[test]
fn a_child_entering_review_is_told_once_with_identifiers_only_and_the_metrics_move() {
    let env = installed("1s");
    let k = env.start();
    assert_eq!(gauge(&k, "kim_review_waiting"), 0);
    let receipt = post_namesake(&env, k.addr, "KNT/REV/1");
    let found = wait_for_notice(&env, Duration::from_secs(8));
    assert_eq!(
        found.len(),
        1,
        "one notice within digest_every: {}",
        k.log_text()
    );
    // No second notice for the same child at the next windows.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(notices(&env).len(), 1, "the child is told once");

    let (code, out, err) = env.kim(&["review", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let reason = list
        .as_array()
        .and_then(|a| a.first())
        .or_else(|| list["items"].as_array().and_then(|a| a.first()))
        .map(|i| i["reason"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("{out}"));

    let eml = eml_text(&found[0]);
    assert!(eml.contains("To: review-desk@council.example"), "{eml}");
    assert!(eml.contains("Subject: kim: 1 child needs review"), "{eml}");
    assert!(eml.contains(&receipt), "{eml}");
    assert!(eml.contains(&reason), "{eml}");
    assert!(eml.contains("KNT/REV/1") && eml.contains("kent"), "{eml}");
    assert!(eml.contains("(UK time)"), "{eml}");
    assert!(
        eml.contains(&format!("kim status {receipt} --reveal"))
            && eml.contains("kim review assign RECEIPT CHILD URN"),
        "{eml}"
    );
    for personal in [
        "Jack",
        "Smith",
        "2015-05-05",
        "CT9",
        "9ZZ",
        "ME1",
        "ME2",
        "Oakwood",
        "Maidstone",
    ] {
        assert!(!eml.contains(personal), "{personal} in the notice: {eml}");
    }
    assert!(
        k.log_text().contains("review notice queued"),
        "one log line per notice"
    );
    assert!(!k.log_text().contains("Jack"));

    // The metrics: one waiting, then none after an admin assigns it.
    assert_eq!(gauge(&k, "kim_review_waiting"), 1);
    assert!(gauge(&k, "kim_review_oldest_seconds") >= 1);
    assert_eq!(gauge(&k, "kim_review_past_deadline"), 0);
    let (code, _, err) = env.kim(&["review", "assign", &receipt, "0", "118766"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(gauge(&k, "kim_review_waiting"), 0);
    assert_eq!(gauge(&k, "kim_review_oldest_seconds"), 0);

    // The notice is audited like other messages kim owes someone.
    let (code, out, _) = env.kim(&["audit", "list", "--json"]);
    assert_eq!(code, 0);
    assert!(out.contains("admin_review"), "{out}");
    assert!(k.terminate(Duration::from_secs(20)).success());
}

#[test]
fn a_burst_of_review_items_is_one_digest() {
    let env = installed("8s");
    let k = env.start();
    let receipts: Vec<String> = (0..50)
        .map(|i| post_namesake(&env, k.addr, &format!("KNT/BURST/{i}")))
        .collect();
    let found = wait_for_notice(&env, Duration::from_secs(20));
    assert!(!found.is_empty(), "a digest within digest_every");
    // Past the next window: still one.
    std::thread::sleep(Duration::from_millis(1500));
    let found = notices(&env);
    assert_eq!(found.len(), 1, "50 review items, one digest: {found:?}");
    let eml = eml_text(&found[0]);
    assert!(
        eml.contains("Subject: kim: 50 children need review"),
        "{eml}"
    );
    for r in &receipts {
        assert!(eml.contains(r), "{r} missing from the digest");
    }
    assert!(!eml.contains("Jack") && !eml.contains("2015-05-05"));
    assert!(k.terminate(Duration::from_secs(20)).success());
}

#[test]
fn an_open_digest_survives_a_kill() {
    let env = installed("3s");
    let k = env.start();
    let receipt = post_namesake(&env, k.addr, "KNT/KILL/1");
    // In the review queue, not yet told: then the daemon dies.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5)
        && !env.kim(&["review", "list"]).1.contains(&receipt)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(notices(&env).is_empty(), "the window is still open");
    k.kill();
    let k = env.start();
    let found = wait_for_notice(&env, Duration::from_secs(10));
    assert_eq!(found.len(), 1, "the open digest is in the store");
    assert!(eml_text(&found[0]).contains(&receipt));
    assert!(k.terminate(Duration::from_secs(20)).success());
}

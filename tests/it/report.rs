//! `kim report` (issue 15) with the real binary: a known mix of
//! notifications sent through the daemon over mTLS (matched and delivered
//! by the file transport, a namesake reviewed then assigned, a namesake
//! withdrawn), then the figures through the admin socket and on the store
//! with the daemon stopped; no personal data in any output; a tampered
//! audit makes the report refuse, naming the event.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{json, Value};

use crate::report_page;
use crate::support::{post_accepted, rt, simple, Env};

pub(crate) const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,,\n\
118766,Oakwood School,Mr Oak,dsl@oakwood.example,,\n";

/// Amelia Khan (matched); two Jack Smiths born the same day at two
/// schools, so a police Jack Smith of that date goes to review.
pub(crate) const ROLL: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
KCC-1,Amelia,Khan,,2014-03-09,ME14 1XX,118765\n\
KCC-2,Jack,Smith,,2015-05-05,ME1 1AA,118765\n\
KCC-3,Jack,Smith,,2015-05-05,ME2 2BB,118766\n";

/// What the children sent are: none may appear in a report.
pub(crate) const PERSONAL: &[&str] = &[
    "Amelia",
    "Khan",
    "Jack",
    "Smith",
    "2014-03-09",
    "2015-05-05",
    "ME14",
    "CT9",
    "9ZZ",
];

pub(crate) fn namesake(reference: &str) -> Vec<u8> {
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
    serde_json::to_vec(&json!({
        "police_reference": reference,
        "incident": {"occurred_at": occurred, "category": "domestic_abuse"},
        "children": [{"given_name": "Jack", "family_name": "Smith", "date_of_birth": "2015-05-05",
                      "postcode": "CT9 9ZZ", "involvement": "present"}]
    }))
    .unwrap()
}

pub(crate) fn wait_state(env: &Env, addr: SocketAddr, receipt: &str, state: &str) {
    let start = Instant::now();
    loop {
        let a = rt()
            .block_on(env.kent().once(
                addr,
                Method::GET,
                &format!("/v1/notifications/{receipt}"),
                None,
            ))
            .unwrap();
        if a.json()["children"][0]["state"] == state {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{receipt} never {state}: {}",
            a.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `kim report` over yesterday..tomorrow (UK), in `format` ("--json", …).
pub(crate) fn report(env: &Env, format: &str) -> (i32, String, String) {
    if format.is_empty() {
        report_to(env, &[])
    } else {
        report_to(env, &[format])
    }
}

/// `kim report` over yesterday..tomorrow (UK) with `more` flags.
pub(crate) fn report_to(env: &Env, more: &[&str]) -> (i32, String, String) {
    let today = jiff::Timestamp::now()
        .to_zoned(kim::calendar::school_tz())
        .date();
    let from = today.yesterday().unwrap().to_string();
    let to = today.tomorrow().unwrap().to_string();
    let mut args = vec!["report", "--from", &from, "--to", &to];
    args.extend_from_slice(more);
    env.kim(&args)
}

pub(crate) fn no_personal_data(what: &str, text: &str) {
    for p in PERSONAL {
        assert!(!text.contains(p), "{p} in the {what} report:\n{text}");
    }
}

/// The known truth of the mix sent.
fn check(j: &Value) {
    assert_eq!(
        j["received"],
        json!({"notifications": 3, "children": 3, "resends": 1, "conflicts": 1}),
        "{j:#}"
    );
    assert_eq!(j["per_force"]["kent"]["children"], 3);
    assert_eq!(j["per_force"]["kent"]["resends"], 1);
    assert_eq!(j["per_force"]["kent"]["conflicts"], 1);
    assert_eq!(j["events"]["resends"], 1, "{j:#}");
    assert_eq!(j["events"]["conflicts"], 1, "{j:#}");
    let per_day: u64 = j["per_day"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["children"].as_u64().unwrap())
        .sum();
    assert_eq!(per_day, 3);
    let m = &j["matching"];
    assert_eq!(m["matched_automatically"], 1, "{j:#}");
    assert_eq!(m["sent_to_review"], 2);
    assert_eq!(m["matched_after_review"], 1);
    let by = m["matched_after_review_by"].as_object().unwrap();
    assert_eq!(by.len(), 1, "{by:?}");
    let (admin, n) = by.iter().next().unwrap();
    assert!(admin.starts_with("admin:") && *n == 1, "{by:?}");
    let reasons: u64 = m["review_reasons"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(reasons, 2);
    assert_eq!(
        j["outcomes"],
        json!({"delivered": 2, "dismissed": 0, "withdrawn": 1, "failed": 0, "waiting": 0}),
        "{j:#}"
    );
    assert_eq!(j["deadline"], json!({"met": 2, "missed": 0}), "{j:#}");
    assert_eq!(j["receipt_to_delivery_seconds"]["count"], 2);
    assert!(j["receipt_to_delivery_seconds"]["max"].as_u64().is_some());
    assert_eq!(
        j["schools"],
        json!([
            {"urn": "118765", "name": "Maidstone Primary", "children_notified": 1,
             "alerts_delivered": 1, "deadline_misses": 0},
            {"urn": "118766", "name": "Oakwood School", "children_notified": 1,
             "alerts_delivered": 1, "deadline_misses": 0},
        ]),
        "{j:#}"
    );
    assert_eq!(j["events"]["withdrawals"], 1);
    assert_eq!(j["events"]["escalations"], 0);
}

#[test]
fn report_counts_a_known_mix_through_the_daemon_and_on_the_store_and_refuses_a_tampered_audit() {
    let env = Env::new();
    env.import(SCHOOLS, ROLL);
    let k = env.start();
    let first = simple("KNT/REP/1");
    let matched = post_accepted(&env, k.addr, &first);
    // The police re-send it (200, the original receipt), then send the
    // same reference with other content (409): each audited, counted once.
    let post = |body: &[u8]| {
        rt().block_on(
            env.kent()
                .once(k.addr, Method::POST, "/v1/notifications", Some(body)),
        )
        .unwrap()
    };
    let again = post(&first);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["receipt_id"], matched.as_str());
    let other = simple("KNT/REP/1");
    assert_ne!(other, first, "other content (another occurred_at)");
    let conflict = post(&other);
    assert_eq!(conflict.status, 409, "{}", conflict.text());
    let (code, out, err) = env.kim(&["audit", "list", "--receipt", &matched, "--json"]);
    assert_eq!(code, 0, "{err}");
    no_personal_data("audit list", &out);
    let events: Value = serde_json::from_str(&out).unwrap();
    for kind in ["resent", "reference_conflict"] {
        let ev: Vec<&Value> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == kind)
            .collect();
        assert_eq!(ev.len(), 1, "one {kind} event: {out}");
        assert_eq!(ev[0]["actor"], "force:kent", "{out}");
        assert_eq!(ev[0]["receipt"], matched.as_str(), "{out}");
        assert_eq!(ev[0]["detail"]["police_reference"], "KNT/REP/1", "{out}");
    }
    let reviewed = post_accepted(&env, k.addr, &namesake("KNT/REP/2"));
    let withdrawn = post_accepted(&env, k.addr, &namesake("KNT/REP/3"));
    wait_state(&env, k.addr, &matched, "delivered");
    wait_state(&env, k.addr, &reviewed, "needs_review");
    wait_state(&env, k.addr, &withdrawn, "needs_review");
    let (code, _, err) = env.kim(&["review", "assign", &reviewed, "0", "118766"]);
    assert_eq!(code, 0, "{err}");
    wait_state(&env, k.addr, &reviewed, "delivered");
    crate::support::withdraw_ok(&env, k.addr, &withdrawn, "sent in error");

    // Through the admin socket, while the daemon runs.
    let (code, out, err) = report(&env, "--json");
    assert_eq!(code, 0, "{err}");
    no_personal_data("JSON", &out);
    let live: Value = serde_json::from_str(&out).unwrap();
    check(&live);
    assert!(live["audit"]["events"].as_u64().unwrap() > 10);
    let (code, text, err) = report(&env, "");
    assert_eq!(code, 0, "{err}");
    no_personal_data("text", &text);
    assert!(text.starts_with("kim report "), "{text}");
    assert!(
        text.contains("audit chain verified from event 1 to the head"),
        "{text}"
    );
    assert!(
        text.contains("received: 3 notifications, 3 children"),
        "{text}"
    );
    assert!(text.contains("deadline met 2, missed 0"), "{text}");
    for line in [
        "re-sends (police)             1",
        "conflicts (police)            1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
    let (code, csv, err) = report(&env, "--csv");
    assert_eq!(code, 0, "{err}");
    no_personal_data("CSV", &csv);
    for row in [
        "received.children,,3",
        "outcomes.delivered,,2",
        "outcomes.withdrawn,,1",
        "schools.alerts_delivered,118766,1",
        "events.resends,,1",
        "events.conflicts,,1",
        "per_force.resends,kent,1",
        "per_force.conflicts,kent,1",
    ] {
        assert!(csv.lines().any(|l| l == row), "{row} not in\n{csv}");
    }

    // The page, through the daemon: the CLI creates the file, the daemon
    // writes into it; the headline on stdout.
    let page = env.path("report.html");
    let (code, out, err) = report_to(&env, &["--html", page.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().next(),
        Some("2 children kept in mind, 2 schools told, 100% before the school day"),
        "{out}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    no_personal_data("HTML", &html);
    report_page::check_document(&html);
    for same in [
        "<b>2</b>children kept in mind",
        "<b>2</b>schools told",
        "<b>100%</b>before the school day",
        r#"<td>118766</td><td>Oakwood School</td><td class="n">1</td><td class="n">1</td><td class="n">0</td>"#,
        r#"<td>withdrawn by the police</td><td class="n">1</td>"#,
        r#"<td>re-sends (police)</td><td class="n">1</td>"#,
        r#"<td>conflicts (police)</td><td class="n">1</td>"#,
    ] {
        assert!(html.contains(same), "{same} not in the page");
    }
    // Never overwrites: a clear error, the page untouched.
    let (code, out, err) = report_to(&env, &["--html", page.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&page).unwrap(), html);
    report_page::check_in_browser(&page, &env.path(""));

    no_personal_data("daemon log", &k.log_text());
    assert!(k.terminate(Duration::from_secs(30)).success());

    // On the store, with the daemon stopped: the same figures.
    let (code, out, err) = report(&env, "--json");
    assert_eq!(code, 0, "{err}");
    let mut stopped: Value = serde_json::from_str(&out).unwrap();
    check(&stopped);
    let mut live = live;
    stopped["audit"] = Value::Null;
    live["audit"] = Value::Null;
    assert_eq!(stopped, live, "the same figures with the daemon stopped");

    // A period with no notifications is a valid, empty report.
    let (code, out, err) = env.kim(&[
        "report",
        "--from",
        "2020-01-01",
        "--to",
        "2020-01-31",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let empty: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        empty["received"],
        json!({"notifications": 0, "children": 0, "resends": 0, "conflicts": 0})
    );
    assert_eq!(empty["schools"], json!([]));

    // Bad flags: a clear usage error.
    let (code, _, err) = env.kim(&["report", "--from", "2026-13-01"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--from"), "{err}");
    let (code, _, err) = env.kim(&["report", "--force", "atlantis"]);
    assert_eq!(code, 2, "{err}");

    // A tampered audit: the report refuses and names the event.
    {
        let db = sled::open(env.path("store")).unwrap();
        let t = db.open_tree("audit").unwrap();
        let key = 4u64.to_be_bytes();
        let v = t.get(key).unwrap().unwrap();
        let text =
            String::from_utf8(v.to_vec())
                .unwrap()
                .replacen("\"actor\":\"", "\"actor\":\"x", 1);
        assert_ne!(text.as_bytes(), &v[..], "the tamper changed something");
        t.insert(key, text.as_bytes()).unwrap();
        db.flush().unwrap();
    }
    let (code, out, err) = report(&env, "--json");
    assert_eq!(code, 1, "{out}");
    assert!(out.is_empty(), "no figures from a broken chain: {out}");
    assert!(
        err.contains("audit chain is broken") && err.contains("audit event 4:"),
        "{err}"
    );
    // No page from a broken chain either, and no empty file left behind.
    let refused = env.path("refused.html");
    let (code, _, err) = report_to(&env, &["--html", refused.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("audit event 4:"), "{err}");
    assert!(!refused.exists(), "a page from a broken chain");
}

//! A child in review has a deadline (issue 12, item 2): the police status
//! shows it, `kim review list` shows each child's wait and deadline, the
//! longest waiting first; and the review notice goes through a real SMTP
//! server that requires STARTTLS, once, identifiers only (item 1). The
//! reminders themselves run under the paused clock in
//! src/daemon/review_remind_tests.rs. Real binary, real certificates.

use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{json, Value};

use crate::support::smtp::{free_port, mail_config, SmtpServer};
use crate::support::{post_accepted, rt, Env, Options};

const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,,\n\
118766,Oakwood School,Mr Oak,dsl@oakwood.example,,\n";

/// Two Jack Smiths born the same day at two schools: every police Jack
/// Smith of that date goes to review.
const ROLL: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
KCC-2,Jack,Smith,,2015-05-05,ME1 1AA,118765\n\
KCC-3,Jack,Smith,,2015-05-05,ME2 2BB,118766\n";

const PERSONAL: [&str; 5] = ["Jack", "Smith", "2015-05-05", "CT9", "9ZZ"];

fn namesake(reference: &str) -> Vec<u8> {
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
    serde_json::to_vec(&json!({
        "police_reference": reference,
        "incident": {"occurred_at": occurred, "category": "domestic_abuse"},
        "children": [{"given_name": "Jack", "family_name": "Smith", "date_of_birth": "2015-05-05",
                      "postcode": "CT9 9ZZ", "involvement": "present"}]
    }))
    .unwrap()
}

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

/// Waits (bounded) until `receipts` are all in the review queue.
fn wait_in_review(env: &Env, receipts: &[&str]) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let (code, out, err) = env.kim(&["review", "list", "--json"]);
        assert_eq!(code, 0, "{err}");
        let list: Vec<Value> = serde_json::from_str(&out).unwrap();
        let all = receipts
            .iter()
            .all(|r| list.iter().any(|i| i["receipt_id"] == *r));
        if all || start.elapsed() > Duration::from_secs(10) {
            return list;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ts(v: &Value) -> jiff::Timestamp {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

#[test]
fn the_police_status_shows_the_deadline_of_a_child_in_review() {
    let env = Env::new();
    env.import(SCHOOLS, ROLL);
    let k = env.start();
    let receipt = post_accepted(&env, k.addr, &namesake("KNT/DL/1"));
    wait_in_review(&env, &[&receipt]);
    let s = status(&env, k.addr, &receipt);
    let child = &s["children"][0];
    assert_eq!(child["state"], "needs_review", "{s}");
    // The deadline an alert would have had: 08:00 UK on the next school day.
    let expected = kim::calendar::SchoolCalendar::default().deadline(ts(&s["received_at"]));
    assert_eq!(ts(&child["deadline"]), expected, "{s}");
    assert!(child.get("deadline_met").is_none(), "not known yet: {s}");
    assert!(!s.to_string().contains("Jack"));
    assert!(k.terminate(Duration::from_secs(20)).success());
}

#[test]
fn review_list_shows_the_longest_waiting_first_with_its_wait_and_deadline() {
    let env = Env::new();
    env.import(SCHOOLS, ROLL);
    let k = env.start();
    let first = post_accepted(&env, k.addr, &namesake("KNT/DL/OLD"));
    wait_in_review(&env, &[&first]);
    std::thread::sleep(Duration::from_millis(2100));
    let second = post_accepted(&env, k.addr, &namesake("KNT/DL/NEW"));
    let list = wait_in_review(&env, &[&first, &second]);
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(
        list[0]["receipt_id"],
        first.as_str(),
        "oldest first: {list:?}"
    );
    assert_eq!(list[1]["receipt_id"], second.as_str());
    let calendar = kim::calendar::SchoolCalendar::default();
    for item in &list {
        assert_eq!(
            ts(&item["deadline"]),
            calendar.deadline(ts(&item["received_at"])),
            "{item}"
        );
    }
    let (old, new) = (
        list[0]["age_seconds"].as_i64().expect("age_seconds"),
        list[1]["age_seconds"].as_i64().expect("age_seconds"),
    );
    assert!(old >= new + 2, "ages {old} and {new}");

    let (code, out, err) = env.kim(&["review", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("WAITING") && out.contains("DEADLINE (UK)"),
        "{out}"
    );
    let (at_old, at_new) = (out.find(&first).unwrap(), out.find(&second).unwrap());
    assert!(at_old < at_new, "oldest first: {out}");
    let deadline_uk = calendar
        .deadline(ts(&list[0]["received_at"]))
        .to_zoned(kim::calendar::school_tz())
        .strftime("%a %Y-%m-%d %H:%M")
        .to_string();
    let line = out.lines().find(|l| l.contains(&first)).unwrap();
    assert!(line.contains(&deadline_uk), "{line} lacks {deadline_uk}");
    for p in PERSONAL {
        assert!(!out.contains(p), "{p} in the list: {out}");
    }
    assert!(k.terminate(Duration::from_secs(20)).success());
}

#[test]
fn a_review_notice_reaches_the_desk_once_over_starttls_with_identifiers_only() {
    let port = free_port();
    let env = Env::with(Options {
        mail: Some(mail_config(port, std::path::Path::new("certs/ca.crt"))),
        extra: Some(
            "[review]\nnotify = [\"review-desk@council.example\"]\ndigest_every = \"1s\"\n".into(),
        ),
        ..Options::default()
    });
    env.import(SCHOOLS, ROLL);
    let smtp = SmtpServer::start(port, Some((&env.certs.server_cert, &env.certs.server_key)));
    let k = env.start();
    let receipt = post_accepted(&env, k.addr, &namesake("KNT/SMTP/1"));
    let got = smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "one notice: {}", k.log_text());
    // The next windows pass: still one.
    std::thread::sleep(Duration::from_millis(2500));
    let got = smtp.received();
    assert_eq!(got.len(), 1, "told once: {got:?}");
    let m = &got[0];
    assert!(m.tls, "the notice must arrive under STARTTLS");
    assert_eq!(smtp.shared.lock().unwrap().plaintext_mail, 0);
    assert_eq!(m.to, vec!["review-desk@council.example".to_owned()]);
    assert_eq!(m.header("Subject").unwrap(), "kim: 1 child needs review");

    let list = wait_in_review(&env, &[&receipt]);
    let reason = list[0]["reason"].as_str().unwrap().to_owned();
    let text = m.data.replace("=\r\n", "");
    assert!(text.contains(&receipt), "{text}");
    assert!(text.contains(&format!("reason {reason}")), "{text}");
    assert!(text.contains("KNT/SMTP/1"), "{text}");
    for p in PERSONAL
        .iter()
        .chain(["ME1", "ME2", "Maidstone", "Oakwood"].iter())
    {
        assert!(!text.contains(p), "{p} in the notice: {text}");
    }
    assert!(k.terminate(Duration::from_secs(20)).success());
}

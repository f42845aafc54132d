//! `kim alerts` against the real daemon and a real STARTTLS SMTP server:
//! a DSL address refused with 550 leaves the alert `failed`, listed with
//! its code and without the address; after the directory is corrected,
//! `alerts retry --failed` delivers it once to the new address with the
//! same Message-ID (audited `requeued`); a waiting alert is redirected after
//! a directory change and `alerts flush` sends it at once. Nothing a child
//! is known by reaches the listings, the audit or the log.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::smtp::{free_port, mail_config, Received, SmtpServer};
use crate::support::{Env, Options};

const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,,01622 111111\n";

/// The same directory with the DSL's address corrected.
const SCHOOLS_FIXED: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dee.new@maidstone.example,,01622 111111\n";

const ROLL: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
KCC-1,Zebediah,Quixotic-Marsh,Zeb,2013-05-17,QX9 7ZZ,118765\n";

/// What the child is known by: never in a listing, the audit or the log.
const PERSONAL: [&str; 5] = ["Zebediah", "Quixotic", "2013-05-17", "QX9 7ZZ", "QX9"];

fn installed(port: u16, extra: &str) -> (Env, SmtpServer) {
    let env = Env::with(Options {
        mail: Some(mail_config(port, std::path::Path::new("certs/ca.crt"))),
        extra: Some(extra.to_owned()),
        ..Options::default()
    });
    env.import(SCHOOLS, ROLL);
    let smtp = SmtpServer::start(port, Some((&env.certs.server_cert, &env.certs.server_key)));
    (env, smtp)
}

fn post(env: &Env, addr: SocketAddr, reference: &str) -> String {
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
    let body = serde_json::to_vec(&json!({
        "police_reference": reference,
        "incident": {"occurred_at": occurred, "category": "domestic_abuse"},
        "children": [{"given_name": "Zebediah", "family_name": "Quixotic-Marsh",
                      "date_of_birth": "2013-05-17", "postcode": "QX9 7ZZ",
                      "involvement": "present"}]
    }))
    .unwrap();
    crate::support::post_accepted(env, addr, &body)
}

fn kim_ok(env: &Env, args: &[&str]) -> String {
    let (code, out, err) = env.kim(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn listed(env: &Env, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["alerts", "list", "--json"];
    a.extend_from_slice(args);
    let v: Value = serde_json::from_str(&kim_ok(env, &a)).unwrap();
    v["alerts"].as_array().cloned().unwrap()
}

/// Polls `alerts list ARGS` until it shows `id` (at most `limit`).
fn wait_listed(env: &Env, args: &[&str], id: &str, limit: Duration) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let rows = listed(env, args);
        if rows.iter().any(|r| r["alert_id"] == id) || start.elapsed() > limit {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn to(smtp: &SmtpServer, address: &str) -> Vec<Received> {
    smtp.received()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t.contains(address)))
        .collect()
}

fn wait_to(smtp: &SmtpServer, address: &str, limit: Duration) -> Vec<Received> {
    let start = Instant::now();
    while to(smtp, address).is_empty() && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
    to(smtp, address)
}

fn audit(env: &Env, receipt: &str) -> Vec<Value> {
    let out = kim_ok(env, &["audit", "list", "--receipt", receipt, "--json"]);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap()
}

fn import_schools(env: &Env, csv: &str) -> String {
    let f = env.path("schools-new.csv");
    std::fs::write(&f, csv).unwrap();
    kim_ok(env, &["schools", "import", f.to_str().unwrap()])
}

fn no_personal_data(what: &str, text: &str) {
    for p in PERSONAL {
        assert!(!text.contains(p), "{what} holds {p}: {text}");
    }
}

#[test]
fn a_refused_alert_is_listed_and_after_the_directory_is_fixed_retry_delivers_it_once() {
    let port = free_port();
    let (env, smtp) = installed(port, "");
    smtp.shared.lock().unwrap().refuse_to.push((
        "dsl@maidstone.example".into(),
        550,
        "5.1.1 <dsl@maidstone.example>: Mailbox unavailable".into(),
    ));
    let k = env.start();
    let receipt = post(&env, k.addr, "KNT/AL/1");
    let id = format!("{receipt}.0");

    // Failed, listed with its 550 and without the address.
    let rows = wait_listed(&env, &["--state", "failed"], &id, Duration::from_secs(20));
    let row = rows
        .iter()
        .find(|r| r["alert_id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not failed: {rows:?}"));
    assert_eq!(row["last_code"], 550, "{row}");
    assert_eq!(row["kind"], "dsl");
    assert_eq!(row["school_urn"], "118765");
    assert_eq!(row["school_name"], "Maidstone Primary");
    assert_eq!(row["state"], "failed");
    let text = serde_json::to_string(&rows).unwrap();
    assert!(!text.contains("dsl@maidstone.example"), "{text}");
    assert!(text.contains("5.1.1"), "the reply is shown: {text}");
    no_personal_data("alerts list --json", &text);
    let table = kim_ok(&env, &["alerts", "list"]);
    assert!(table.contains(&id) && table.contains("failed"), "{table}");
    no_personal_data("alerts list", &table);

    // A second refused alert whose notification the police then withdraw:
    // never sent again.
    let gone = post(&env, k.addr, "KNT/AL/1W");
    let gone_id = format!("{gone}.0");
    wait_listed(
        &env,
        &["--state", "failed"],
        &gone_id,
        Duration::from_secs(20),
    );
    crate::support::withdraw_ok(&env, k.addr, &gone, "entered in error");

    let out = import_schools(&env, SCHOOLS_FIXED);
    assert!(out.contains("imported 1 schools"), "{out}");
    let out = kim_ok(&env, &["alerts", "retry", "--failed"]);
    assert!(out.contains("1 alert(s) queued again"), "{out}");
    assert!(
        out.contains(&format!("{gone_id}: the police withdrew")),
        "{out}"
    );

    let got = wait_to(&smtp, "dee.new@maidstone.example", Duration::from_secs(20));
    assert_eq!(got.len(), 1, "delivered to the new address");
    assert_eq!(
        got[0].header("Message-ID").as_deref(),
        Some(format!("<{}@council.example>", id.to_ascii_lowercase()).as_str()),
        "the same Message-ID as the first attempt"
    );
    // Exactly once: nothing more arrives for it, and nothing to the old address.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(to(&smtp, "dee.new@maidstone.example").len(), 1);
    assert!(to(&smtp, "dsl@maidstone.example").is_empty());
    let rows = listed(&env, &["--receipt", &receipt]);
    let row = rows.iter().find(|r| r["alert_id"] == id.as_str()).unwrap();
    assert_eq!(row["state"], "delivered", "{row}");
    // A second retry finds nothing to re-queue.
    let out = kim_ok(&env, &["alerts", "retry", "--failed"]);
    assert!(out.contains("0 alert(s) queued again"), "{out}");
    let (code, out, _) = env.kim(&["alerts", "retry", &id]);
    assert_eq!(code, 1, "a delivered alert is not re-queued: {out}");

    // The audit: requeued by the admin's OS user with the two address
    // hashes (no addresses), then the delivery.
    let ev = audit(&env, &receipt);
    let requeued: Vec<&Value> = ev.iter().filter(|e| e["kind"] == "requeued").collect();
    assert_eq!(requeued.len(), 1, "{ev:?}");
    let r = requeued[0];
    assert!(r["actor"].as_str().unwrap().starts_with("admin:"), "{r}");
    let (old, new) = (
        r["detail"]["old_to_hash"].clone(),
        r["detail"]["new_to_hash"].clone(),
    );
    assert!(old.is_string() && new.is_string() && old != new, "{r}");
    assert_eq!(r["detail"]["address_changed"], true);
    let text = serde_json::to_string(&ev).unwrap();
    assert!(
        !text.contains("maidstone.example"),
        "no address in the audit: {text}"
    );
    no_personal_data("the audit", &text);

    // `alerts show`: the history and the recipient's address, audited.
    let out = kim_ok(&env, &["alerts", "show", &id, "--json"]);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["recipient"], "dee.new@maidstone.example");
    assert_eq!(shown["last_attempt_went_to_recipient"], true);
    let kinds: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "alert_queued",
        "delivery_attempt",
        "failed",
        "requeued",
        "delivered",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let refused = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "delivery_attempt" && e["detail"]["code"] == 550)
        .expect("the refused attempt");
    assert!(refused["detail"]["reply"]
        .as_str()
        .unwrap()
        .contains("5.1.1"));
    no_personal_data("alerts show", &out);
    let shows = audit(&env, &receipt)
        .into_iter()
        .filter(|e| e["kind"] == "admin_access" && e["detail"]["action"] == "alerts_show")
        .count();
    assert_eq!(shows, 1, "alerts show is audited");

    assert!(k.terminate(Duration::from_secs(30)).success());
    no_personal_data(
        "the log",
        &std::fs::read_to_string(env.path("kim.log")).unwrap(),
    );
}

#[test]
fn a_waiting_alert_is_redirected_after_a_directory_change_and_flush_sends_it_at_once() {
    let port = free_port();
    // The first retry would be an hour away: only `flush` makes it go now.
    let (env, smtp) = installed(
        port,
        "[delivery]\nretry_initial = \"1h\"\nretry_max = \"1h\"\n",
    );
    smtp.shared.lock().unwrap().refuse_to.push((
        "dsl@maidstone.example".into(),
        451,
        "4.2.1 Mailbox busy, try later".into(),
    ));
    let k = env.start();
    let receipt = post(&env, k.addr, "KNT/AL/2");
    let id = format!("{receipt}.0");
    let rows = wait_listed(
        &env,
        &["--state", "retry_wait"],
        &id,
        Duration::from_secs(20),
    );
    let row = rows
        .iter()
        .find(|r| r["alert_id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not waiting: {rows:?}"));
    assert_eq!(row["last_code"], 451);
    assert!(row["next_attempt_at"].is_string(), "{row}");

    let out = import_schools(&env, SCHOOLS_FIXED);
    assert!(
        out.contains("1 waiting alert(s) will go to their school's new address"),
        "{out}"
    );
    // Not sent before the flush (its retry is an hour away).
    std::thread::sleep(Duration::from_millis(500));
    assert!(to(&smtp, "dee.new@maidstone.example").is_empty());
    let started = Instant::now();
    let out = kim_ok(&env, &["alerts", "flush"]);
    assert!(out.contains("1 waiting alert(s) made due now"), "{out}");
    let got = wait_to(&smtp, "dee.new@maidstone.example", Duration::from_secs(10));
    assert_eq!(got.len(), 1, "flushed and redirected");
    assert!(started.elapsed() < Duration::from_secs(10));

    let ev = audit(&env, &receipt);
    let kinds: Vec<&str> = ev.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"flushed"), "{kinds:?}");
    let redirected = ev
        .iter()
        .find(|e| e["kind"] == "redirected")
        .unwrap_or_else(|| panic!("no redirected event: {kinds:?}"));
    assert_ne!(
        redirected["detail"]["old_to_hash"],
        redirected["detail"]["new_to_hash"]
    );
    assert!(!serde_json::to_string(&ev)
        .unwrap()
        .contains("maidstone.example"));
    assert!(k.terminate(Duration::from_secs(30)).success());
    no_personal_data(
        "the log",
        &std::fs::read_to_string(env.path("kim.log")).unwrap(),
    );
}

#[test]
fn alerts_verbs_refuse_bad_input_clearly() {
    let env = Env::new();
    let (code, _, err) = env.kim(&["alerts", "list", "--state", "lost"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--state"), "{err}");
    let (code, _, err) = env.kim(&["alerts", "list", "--since", "soon"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = env.kim(&["alerts", "show", "NOPE.0"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no such alert"), "{err}");
    let (code, _, _) = env.kim(&["alerts", "retry"]);
    assert_eq!(code, 2, "retry needs ids or --failed");
}

#[test]
fn the_morning_summary_is_sent_once_at_summary_at_on_a_school_day() {
    let london =
        || jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap());
    let now = london();
    if matches!(
        now.weekday(),
        jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
    ) || (now.hour(), now.minute()) >= (23, 50)
    {
        eprintln!("SKIPPED: not a school day in London now (weekends are tested in the lib tests)");
        return;
    }
    let with_summary_at = |at: &str| Options {
        extra: Some(format!("[delivery]\nsummary_at = \"{at}\"\n")),
        ..Options::default()
    };
    // First without a summary: a child nobody on the roll matches waits
    // for review.
    let env = Env::with(with_summary_at(""));
    env.import(SCHOOLS, ROLL);
    let k = env.start();
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
    let body = serde_json::to_vec(&json!({
        "police_reference": "KNT/AL/S1",
        "incident": {"occurred_at": occurred, "category": "domestic_abuse"},
        "children": [{"given_name": "Zebediah", "family_name": "Unknownson",
                      "date_of_birth": "2013-05-17", "postcode": "QX9 7ZZ",
                      "involvement": "present"}]
    }))
    .unwrap();
    let receipt = crate::support::post_accepted(&env, k.addr, &body);
    let start = Instant::now();
    while !kim_ok(&env, &["review", "list"]).contains(&receipt)
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(k.terminate(Duration::from_secs(30)).success());
    assert!(
        !env.path("outbox").exists()
            || std::fs::read_dir(env.path("outbox"))
                .unwrap()
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().starts_with("summary.")),
        "no summary while summary_at is empty"
    );

    // summary_at = this minute: due now (within the 5-minute grace).
    let now = london();
    env.write_config(&with_summary_at(&format!(
        "{:02}:{:02}",
        now.hour(),
        now.minute()
    )));
    let k = env.start();
    let eml = env
        .path("outbox")
        .join(format!("summary.{}.eml", now.date()));
    let start = Instant::now();
    while !eml.exists() && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(eml.exists(), "no summary at {}", eml.display());
    // Restarted within the grace: still one summary.
    assert!(k.terminate(Duration::from_secs(30)).success());
    let k = env.start();
    std::thread::sleep(Duration::from_millis(1500));
    let summaries = std::fs::read_dir(env.path("outbox"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("summary."))
        .count();
    assert_eq!(summaries, 1, "one summary a day");
    let text = std::fs::read_to_string(&eml).unwrap().replace("=\r\n", "");
    assert!(
        text.contains("safeguarding@council.example"),
        "to the admin mailbox"
    );
    assert!(
        text.contains(&format!("kim review assign {receipt} 0 URN")),
        "the review item and the command to act: {text}"
    );
    no_personal_data("the summary", &text);
    assert!(!text.contains("Unknownson"));
    assert!(k.terminate(Duration::from_secs(30)).success());
    no_personal_data(
        "the log",
        &std::fs::read_to_string(env.path("kim.log")).unwrap(),
    );
}

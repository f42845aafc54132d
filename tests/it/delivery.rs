//! Delivery end to end: the real daemon matches a child and emails the DSL
//! through a real SMTP server that requires STARTTLS (mailin-embedded, in
//! this process). No plaintext ever; 4xx retried; 5xx fails and tells the
//! admin; a relay down for a while loses and doubles nothing; a crash while
//! `sending` resends with the same Message-ID; withdrawal.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{json, Value};

use crate::support::smtp::{free_port, mail_config, Received, SmtpServer};
use crate::support::{rt, Env, Options};

const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,deputy@maidstone.example,01622 111111\n\
118766,Oakwood School,Mr Oak,dsl@oakwood.example,,\n";

const ROLL: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
KCC-1,Zebediah,Quixotic-Marsh,Zeb,2013-05-17,QX9 7ZZ,118765\n\
KCC-2,Philippa,Wyndham-Thorne,,2012-02-02,QX1 1AA,118766\n\
KCC-3,Ottoline,Barrowclough,,2014-04-04,QX2 2BB,118765\n\
KCC-4,Peregrine,Fotheringay,,2015-05-05,QX3 3CC,118765\n\
KCC-5,Clementine,Aldergrove,,2016-06-06,QX4 4DD,118766\n\
KCC-6,Barnaby,Kittiwake,,2011-07-07,QX5 5EE,118765\n";

/// (given, family, dob) of the roll's pupils.
const PUPILS: [(&str, &str, &str); 6] = [
    ("Zebediah", "Quixotic-Marsh", "2013-05-17"),
    ("Philippa", "Wyndham-Thorne", "2012-02-02"),
    ("Ottoline", "Barrowclough", "2014-04-04"),
    ("Peregrine", "Fotheringay", "2015-05-05"),
    ("Clementine", "Aldergrove", "2016-06-06"),
    ("Barnaby", "Kittiwake", "2011-07-07"),
];

fn env_with(port: u16, extra: &str) -> Env {
    // The dev CA (certs/ca.crt, relative to the config) signed the SMTP
    // server's certificate too.
    let env = Env::with(Options {
        mail: Some(mail_config(port, std::path::Path::new("certs/ca.crt"))),
        extra: Some(extra.to_owned()),
        ..Options::default()
    });
    env.import(SCHOOLS, ROLL);
    env
}

fn smtp_for(env: &Env, port: u16) -> SmtpServer {
    SmtpServer::start(port, Some((&env.certs.server_cert, &env.certs.server_key)))
}

fn body(reference: &str, pupil: usize) -> Vec<u8> {
    let (g, f, d) = PUPILS[pupil];
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
    serde_json::to_vec(&json!({
        "police_reference": reference,
        "incident": {"occurred_at": occurred, "category": "domestic_abuse",
                     "summary_for_school": "Police attended a verbal argument at the home."},
        "children": [{"given_name": g, "family_name": f, "date_of_birth": d,
                      "postcode": "QX9 7ZZ", "involvement": "present"}],
        "officer": {"name": "PC 4411 Jones", "phone": "01622 000000"}
    }))
    .unwrap()
}

fn post(env: &Env, addr: SocketAddr, b: Vec<u8>) -> String {
    let r = rt()
        .block_on(
            env.kent()
                .once(addr, Method::POST, "/v1/notifications", Some(&b)),
        )
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    r.json()["receipt_id"].as_str().unwrap().to_owned()
}

fn status(env: &Env, addr: SocketAddr, receipt: &str) -> Value {
    rt().block_on(env.kent().once(
        addr,
        Method::GET,
        &format!("/v1/notifications/{receipt}"),
        None,
    ))
    .unwrap()
    .json()
}

fn wait_state(env: &Env, addr: SocketAddr, receipt: &str, state: &str, limit: Duration) -> Value {
    let start = Instant::now();
    loop {
        let s = status(env, addr, receipt);
        if s["children"][0]["state"] == state || start.elapsed() > limit {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn audit(env: &Env, receipt: &str) -> Vec<Value> {
    let (code, out, err) = env.kim(&["audit", "list", "--receipt", receipt, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .cloned()
        .or_else(|| v["events"].as_array().cloned())
        .unwrap_or_default()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn for_dsl(r: &[Received]) -> Vec<Received> {
    r.iter()
        .filter(|m| m.to.iter().any(|t| t.contains("dsl@")))
        .cloned()
        .collect()
}

#[test]
fn an_alert_reaches_the_dsl_over_starttls_with_only_the_allowed_facts() {
    let port = free_port();
    let env = env_with(port, "");
    let smtp = smtp_for(&env, port);
    let k = env.start();
    let receipt = post(&env, k.addr, body("KNT/26/D1", 0));
    let s = wait_state(&env, k.addr, &receipt, "delivered", Duration::from_secs(20));
    assert_eq!(s["children"][0]["state"], "delivered", "{s}");
    assert_eq!(s["children"][0]["school_urn"], "118765");
    assert!(s["children"][0]["delivered_at"].is_string());
    assert!(s["children"][0]["deadline"].is_string());
    assert_eq!(s["children"][0]["deadline_met"], true);

    let got = smtp.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert!(m.tls, "the message must arrive under STARTTLS");
    assert_eq!(m.to, vec!["dsl@maidstone.example".to_owned()]);
    assert_eq!(
        m.header("Subject").unwrap(),
        "Keep in mind: a notification for a pupil at Maidstone Primary"
    );
    assert_eq!(
        m.header("Message-ID").unwrap(),
        format!("<{}.0@council.example>", receipt.to_ascii_lowercase())
    );
    let text = m.data.replace("=\r\n", "");
    for needle in [
        "Zebediah",
        "Quixotic-Marsh",
        "17 May 2013",
        "KNT/26/D1",
        &receipt,
    ] {
        assert!(text.contains(needle), "mail lacks {needle}");
    }
    for banned in ["QX9", "7ZZ"] {
        assert!(!text.contains(banned), "mail leaks the postcode");
    }
    assert_eq!(smtp.shared.lock().unwrap().plaintext_mail, 0);

    k.terminate(Duration::from_secs(20));
    let ev = audit(&env, &receipt);
    let ks = kinds(&ev);
    for k in [
        "received",
        "matched",
        "alert_queued",
        "delivery_attempt",
        "delivered",
    ] {
        assert!(ks.contains(&k.to_owned()), "audit lacks {k}: {ks:?}");
    }
    let attempt = ev.iter().find(|e| e["kind"] == "delivery_attempt").unwrap();
    assert_eq!(attempt["detail"]["code"], 250, "{attempt}");
    let delivered = ev.iter().find(|e| e["kind"] == "delivered").unwrap();
    assert_eq!(delivered["detail"]["deadline_met"], true);

    // The child's details went to the DSL and nowhere else in the clear.
    let needles = [
        "Zebediah",
        "Quixotic",
        "2013-05-17",
        "17 May 2013",
        "QX9 7ZZ",
    ];
    let hits = crate::support::files_containing(&env.path("store"), &needles);
    assert!(
        hits.is_empty(),
        "personal data in the clear in the store: {hits:?}"
    );
    let log = std::fs::read_to_string(env.path("kim.log")).unwrap();
    let audit_text = serde_json::to_string(&ev).unwrap();
    for n in needles {
        assert!(!log.contains(n), "the log contains {n}");
        assert!(!audit_text.contains(n), "the audit contains {n}");
    }
}

#[test]
fn a_relay_without_starttls_gets_nothing() {
    let port = free_port();
    let env = env_with(
        port,
        "[delivery]\nretry_initial = \"1s\"\nretry_max = \"1s\"\n",
    );
    let smtp = SmtpServer::start(port, None);
    let k = env.start();
    let receipt = post(&env, k.addr, body("KNT/26/D2", 0));
    // Two attempts at least, both refused by kim itself (no TLS offered).
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20)
        && k.log_text().matches("will retry").count() < 2
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        status(&env, k.addr, &receipt)["children"][0]["state"],
        "matched"
    );
    k.terminate(Duration::from_secs(20));
    let ev = audit(&env, &receipt);
    let attempts: Vec<&Value> = ev
        .iter()
        .filter(|e| e["kind"] == "delivery_attempt")
        .collect();
    assert!(attempts.len() >= 2, "{ev:?}");
    assert!(attempts.iter().all(|a| a["detail"]["result"] == "retry"));
    assert!(
        smtp.received().is_empty(),
        "nothing may travel in plaintext"
    );
    assert_eq!(smtp.shared.lock().unwrap().data_ends, 0);
}

#[test]
fn a_temporary_refusal_is_retried_then_delivered() {
    let port = free_port();
    let env = env_with(
        port,
        "[delivery]\nretry_initial = \"1s\"\nretry_max = \"2s\"\n",
    );
    let smtp = smtp_for(&env, port);
    smtp.shared
        .lock()
        .unwrap()
        .script
        .push_back((451, "4.3.0 Try again later".into()));
    let k = env.start();
    let receipt = post(&env, k.addr, body("KNT/26/D3", 0));
    let s = wait_state(&env, k.addr, &receipt, "delivered", Duration::from_secs(20));
    assert_eq!(
        s["children"][0]["state"],
        "delivered",
        "{s}\n{}",
        k.log_text()
    );
    k.terminate(Duration::from_secs(20));
    let ev = audit(&env, &receipt);
    let codes: Vec<Value> = ev
        .iter()
        .filter(|e| e["kind"] == "delivery_attempt")
        .map(|e| e["detail"]["code"].clone())
        .collect();
    assert_eq!(codes, vec![json!(451), json!(250)], "{ev:?}");
    assert_eq!(for_dsl(&smtp.received()).len(), 1);
}

#[test]
fn a_permanent_refusal_fails_at_once_and_tells_the_admin_without_the_childs_details() {
    let port = free_port();
    let env = env_with(port, "");
    let smtp = smtp_for(&env, port);
    smtp.shared.lock().unwrap().refuse_to.push((
        "dsl@maidstone.example".into(),
        550,
        "5.1.1 Mailbox unavailable".into(),
    ));
    let k = env.start();
    let receipt = post(&env, k.addr, body("KNT/26/D4", 0));
    let s = wait_state(&env, k.addr, &receipt, "failed", Duration::from_secs(20));
    assert_eq!(s["children"][0]["state"], "failed", "{s}");
    let got = smtp.wait_for(1, Duration::from_secs(10));
    let admin: Vec<&Received> = got
        .iter()
        .filter(|m| {
            m.to.iter()
                .any(|t| t.contains("safeguarding@council.example"))
        })
        .collect();
    assert_eq!(admin.len(), 1, "{got:?}");
    let text = admin[0].data.replace("=\r\n", "");
    assert!(text.contains(&format!("{receipt}.0")), "{text}");
    for banned in ["Zebediah", "Quixotic", "2013", "QX9"] {
        assert!(!text.contains(banned), "admin notice leaks {banned}");
    }
    k.terminate(Duration::from_secs(20));
    let ev = audit(&env, &receipt);
    let attempts = ev
        .iter()
        .filter(|e| e["kind"] == "delivery_attempt")
        .count();
    assert_eq!(
        attempts, 2,
        "one refused DSL attempt, one admin notice: {ev:?}"
    );
    assert!(kinds(&ev).contains(&"failed".to_owned()));
}

#[test]
fn a_relay_down_for_a_while_loses_nothing_and_doubles_nothing() {
    let port = free_port();
    let env = env_with(
        port,
        "[delivery]\nretry_initial = \"1s\"\nretry_max = \"1s\"\n",
    );
    let k = env.start();
    let receipts: Vec<String> = (0..PUPILS.len())
        .map(|i| post(&env, k.addr, body(&format!("KNT/26/DOWN{i}"), i)))
        .collect();
    // Wait until every alert has failed at least once against the closed port.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20)
        && k.log_text().matches("will retry").count() < receipts.len()
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let smtp = smtp_for(&env, port);
    for r in &receipts {
        let s = wait_state(&env, k.addr, r, "delivered", Duration::from_secs(30));
        assert_eq!(s["children"][0]["state"], "delivered", "{s}");
    }
    let got = for_dsl(&smtp.received());
    assert_eq!(got.len(), PUPILS.len(), "every alert exactly once");
    let mut ids: Vec<String> = got
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), PUPILS.len(), "no alert doubled");
    k.terminate(Duration::from_secs(20));
}

#[test]
fn a_crash_while_sending_resends_with_the_same_message_id() {
    let port = free_port();
    let env = env_with(
        port,
        "[delivery]\nretry_initial = \"1s\"\nretry_max = \"1s\"\nsend_timeout = \"60s\"\n",
    );
    let smtp = smtp_for(&env, port);
    smtp.shared.lock().unwrap().stall_once = Some(Duration::from_secs(3));
    let k = env.start();
    let receipt = post(&env, k.addr, body("KNT/26/CRASH", 0));
    // Wait until the server holds the message, then kill kim mid-send.
    let start = Instant::now();
    while smtp.shared.lock().unwrap().data_ends == 0 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    k.kill();
    let k = env.start();
    let s = wait_state(&env, k.addr, &receipt, "delivered", Duration::from_secs(20));
    assert_eq!(s["children"][0]["state"], "delivered", "{s}");
    let got = for_dsl(&smtp.wait_for(2, Duration::from_secs(10)));
    assert!(!got.is_empty());
    let ids: Vec<String> = got
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert!(
        ids.iter()
            .all(|i| *i == format!("<{}.0@council.example>", receipt.to_ascii_lowercase())),
        "{ids:?}"
    );
    k.terminate(Duration::from_secs(20));
}

#[test]
fn withdrawal_cancels_what_is_unsent_and_notifies_a_school_already_told() {
    let port = free_port();
    let env = env_with(port, "");
    let smtp = smtp_for(&env, port);
    let k = env.start();
    let delivered = post(&env, k.addr, body("KNT/26/W1", 0));
    wait_state(
        &env,
        k.addr,
        &delivered,
        "delivered",
        Duration::from_secs(20),
    );

    let withdraw = |receipt: &str, b: Value| {
        rt().block_on(env.kent().once(
            k.addr,
            Method::POST,
            &format!("/v1/notifications/{receipt}/withdraw"),
            Some(&serde_json::to_vec(&b).unwrap()),
        ))
        .unwrap()
    };
    // Rejections first: nothing changes.
    let r = withdraw(&delivered, json!({"reason": ""}));
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["errors"][0]["pointer"], "/reason");
    let r = withdraw(&delivered, json!({"reason": "x", "child": "Zebediah"}));
    assert_eq!(r.status, 422);
    assert!(!r.text().contains("Zebediah"));
    let r = withdraw(&delivered, json!({"reason": "x".repeat(501)}));
    assert_eq!(r.status, 422);
    let r = withdraw(&delivered, json!({"reason": 7}));
    assert_eq!(r.status, 422);
    let r = withdraw("0000-0000-0000-0000", json!({"reason": "x"}));
    assert_eq!(r.status, 404, "no such receipt");
    let r = withdraw("not-a-receipt", json!({"reason": "x"}));
    assert_eq!(r.status, 404);
    rt().block_on(async {
        let mut c = env.kent().connect(k.addr).await.unwrap();
        let path = format!("/v1/notifications/{delivered}/withdraw");
        let a = c
            .send_with_type(Method::POST, &path, Some(b"reason=x"), "text/plain")
            .await
            .unwrap();
        assert_eq!(a.status, 415);
        let a = c
            .send(Method::POST, &path, Some(b"{\"reason\": "))
            .await
            .unwrap();
        assert_eq!(a.status, 400);
        assert!(a.text().contains("problem") || a.text().contains("Malformed"));
        let a = c.send(Method::GET, &path, None).await.unwrap();
        assert_eq!(a.status, 405);
    });
    let r = rt()
        .block_on(env.met().once(
            k.addr,
            Method::POST,
            &format!("/v1/notifications/{delivered}/withdraw"),
            Some(br#"{"reason":"not yours"}"#),
        ))
        .unwrap();
    assert_eq!(r.status, 404, "another force cannot withdraw it");
    assert_eq!(
        status(&env, k.addr, &delivered)["children"][0]["state"],
        "delivered"
    );

    let r = withdraw(
        &delivered,
        json!({"reason": "Sent to the wrong force area"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["children"][0]["state"], "withdrawn");
    let got = smtp.wait_for(2, Duration::from_secs(10));
    let notice = got
        .iter()
        .find(|m| m.header("Subject").is_some_and(|s| s.contains("withdrawn")))
        .expect("a withdrawal notice");
    assert_eq!(notice.to, vec!["dsl@maidstone.example".to_owned()]);
    assert_eq!(
        notice.header("In-Reply-To").unwrap(),
        format!("<{}.0@council.example>", delivered.to_ascii_lowercase())
    );
    assert!(
        !notice.data.contains("wrong force area"),
        "the reason stays with kim"
    );
    // Twice is fine and sends nothing more.
    assert_eq!(withdraw(&delivered, json!({"reason": "again"})).status, 200);

    // A child waiting for review is withdrawn and leaves the queue.
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
    let unknown = post(
        &env,
        k.addr,
        serde_json::to_vec(&json!({
            "police_reference": "KNT/26/W2",
            "incident": {"occurred_at": occurred, "category": "domestic_abuse"},
            "children": [{"given_name": "Nobody", "family_name": "Notonroll",
                          "date_of_birth": "2015-01-01", "involvement": "unknown"}]
        }))
        .unwrap(),
    );
    wait_state(
        &env,
        k.addr,
        &unknown,
        "needs_review",
        Duration::from_secs(10),
    );
    assert_eq!(
        withdraw(&unknown, json!({"reason": "duplicate"})).status,
        200
    );
    assert_eq!(
        status(&env, k.addr, &unknown)["children"][0]["state"],
        "withdrawn"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        smtp.received().len(),
        2,
        "nothing sent about the withdrawn child"
    );
    k.terminate(Duration::from_secs(20));
    let ks = kinds(&audit(&env, &delivered));
    assert!(ks.contains(&"withdrawn".to_owned()), "{ks:?}");
}

#[test]
fn a_relay_whose_certificate_is_not_trusted_gets_nothing_and_the_metrics_show_the_wait() {
    let port = free_port();
    // No ca_file: only the system roots, which do not include the dev CA.
    let env = Env::with(Options {
        mail: Some(
            mail_config(port, std::path::Path::new("certs/ca.crt"))
                .replace("ca_file = \"certs/ca.crt\"\n", ""),
        ),
        extra: Some("[delivery]\nretry_initial = \"1s\"\nretry_max = \"1s\"\n".into()),
        ..Options::default()
    });
    env.import(SCHOOLS, ROLL);
    let smtp = smtp_for(&env, port);
    let k = env.start();
    let receipt = post(&env, k.addr, body("KNT/26/UNTRUSTED", 0));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20)
        && k.log_text().matches("will retry").count() < 2
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        k.log_text().matches("will retry").count() >= 2,
        "{}",
        k.log_text()
    );
    assert!(
        smtp.received().is_empty(),
        "nothing to a relay kim cannot verify"
    );
    assert_eq!(smtp.shared.lock().unwrap().data_ends, 0);
    assert_eq!(
        status(&env, k.addr, &receipt)["children"][0]["state"],
        "matched"
    );
    let metrics = std::process::Command::new("curl")
        .arg("--silent")
        .arg(format!("http://{}/metrics", k.metrics.unwrap()))
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout).into_owned();
    let waiting: u32 = metrics
        .lines()
        .filter(|l| l.starts_with("kim_alerts_waiting{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u32>().ok())
        .sum();
    assert_eq!(waiting, 1, "{metrics}");
    assert!(metrics.contains("kim_alert_oldest_undelivered_seconds"));
    assert!(!metrics.contains("Zebediah") && !metrics.contains(&receipt));
    k.terminate(Duration::from_secs(20));
}

#[test]
fn the_relay_login_comes_from_password_file_and_only_over_tls() {
    let port = free_port();
    let env = Env::with(Options {
        mail: Some(format!(
            "{}username = \"kim-relay\"\npassword_file = \"smtp.password\"\n",
            mail_config(port, std::path::Path::new("certs/ca.crt"))
        )),
        ..Options::default()
    });
    std::fs::write(env.path("smtp.password"), "s3cret-relay-pass\n").unwrap();
    env.import(SCHOOLS, ROLL);
    let smtp = SmtpServer::start_with_login(
        port,
        Some((&env.certs.server_cert, &env.certs.server_key)),
        Some(("kim-relay", "s3cret-relay-pass")),
    );
    let k = env.start();
    let receipt = post(&env, k.addr, body("KNT/26/AUTH", 0));
    let st = wait_state(&env, k.addr, &receipt, "delivered", Duration::from_secs(20));
    assert_eq!(
        st["children"][0]["state"],
        "delivered",
        "{st}\n{}",
        k.log_text()
    );
    assert_eq!(smtp.shared.lock().unwrap().bad_auth, 0);
    assert!(smtp.received()[0].tls);
    assert!(
        !k.log_text().contains("s3cret"),
        "the password is never logged"
    );
    k.terminate(Duration::from_secs(20));
}

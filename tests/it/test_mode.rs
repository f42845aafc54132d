//! A safe place for a force to test (issue 16, item 5): a force with
//! `test = true`, or a certificate name in `test_client_names`, goes through
//! everything (validation, matching, rendering, the outbox) but its alerts
//! reach only `[mail] test_recipient` — over the real STARTTLS SMTP server,
//! "TEST" first in the subject, the would-be school named — while a live
//! force's alert still reaches the DSL. The status and the audit say which
//! is which; a config in test mode without a test recipient is refused.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::Method;
use kim::police_client::PoliceClient;
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
KCC-3,Ottoline,Barrowclough,,2014-04-04,QX2 2BB,118765\n";

const TEST_RECIPIENT: &str = "force-tests@council.example";

/// The Met in test mode as a whole force (`test = true`); Durham live under
/// another name, its SPIFFE certificate a `test_client_names` entry; Kent live.
pub(crate) fn test_mode_config(text: &str, recipient: bool) -> String {
    let met = r#"client_names = ["relay.met-police.example"]"#;
    let durham = r#"client_names = ["spiffe://police.example/durham"]"#;
    assert!(text.contains(met) && text.contains(durham), "{text}");
    let mut t = text.replace(met, &format!("{met}\ntest = true")).replace(
        durham,
        "client_names = [\"spiffe://police.example/durham-live\"]\n\
             test_client_names = [\"spiffe://police.example/durham\"]",
    );
    if recipient {
        let admin = "admin_email = \"safeguarding@council.example\"";
        assert!(t.contains(admin), "{t}");
        t = t.replace(
            admin,
            &format!("{admin}\ntest_recipient = \"{TEST_RECIPIENT}\""),
        );
    }
    t
}

fn env_with(port: u16, extra: &str) -> Env {
    let env = Env::with(Options {
        mail: Some(mail_config(port, std::path::Path::new("certs/ca.crt"))),
        extra: Some(extra.to_owned()),
        ..Options::default()
    });
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, test_mode_config(&text, true)).unwrap();
    env.import(SCHOOLS, ROLL);
    env
}

fn body(reference: &str, given: &str, family: &str, dob: &str) -> Vec<u8> {
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
    serde_json::to_vec(&json!({
        "police_reference": reference,
        "incident": {"occurred_at": occurred, "category": "domestic_abuse",
                     "summary_for_school": "Police attended a verbal argument at the home."},
        "children": [{"given_name": given, "family_name": family, "date_of_birth": dob,
                      "postcode": "QX9 7ZZ", "involvement": "present"}],
        "officer": {"name": "PC 4411 Jones", "phone": "01622 000000"}
    }))
    .unwrap()
}

fn post(c: &PoliceClient, addr: SocketAddr, b: Vec<u8>) -> String {
    let r = rt()
        .block_on(c.once(addr, Method::POST, "/v1/notifications", Some(&b)))
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    r.json()["receipt_id"].as_str().unwrap().to_owned()
}

fn status(c: &PoliceClient, addr: SocketAddr, receipt: &str) -> Value {
    let r = rt()
        .block_on(c.once(
            addr,
            Method::GET,
            &format!("/v1/notifications/{receipt}"),
            None,
        ))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn wait_delivered(c: &PoliceClient, addr: SocketAddr, receipt: &str) -> Value {
    let start = Instant::now();
    loop {
        let s = status(c, addr, receipt);
        if s["children"][0]["state"] == "delivered" || start.elapsed() > Duration::from_secs(20) {
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

/// The mail whose Message-ID is the alert of `receipt`'s first child.
fn mail_for<'a>(got: &'a [Received], receipt: &str) -> &'a Received {
    let id = format!("<{}.0@council.example>", receipt.to_ascii_lowercase());
    got.iter()
        .find(|m| m.header("Message-ID").as_deref() == Some(id.as_str()))
        .unwrap_or_else(|| panic!("no mail for {receipt}: {got:?}"))
}

fn unfolded(m: &Received) -> String {
    m.data.replace("=\r\n", "").replace("=3D", "=")
}

#[test]
fn a_test_forces_alert_reaches_only_the_test_recipient_and_a_live_forces_the_dsl() {
    let port = free_port();
    let env = env_with(port, "");
    let smtp = SmtpServer::start(port, Some((&env.certs.server_cert, &env.certs.server_key)));
    let k = env.start();
    assert!(
        k.wait_for_log("forces in test mode"),
        "the start names the test forces"
    );
    let met = env.met();
    let durham = env.client((&env.fx.uri_client.0, &env.fx.uri_client.1));
    let kent = env.kent();

    // Each force's child is on the roll at Maidstone Primary (118765).
    let test_force = post(
        &met,
        k.addr,
        body("MET/T/1", "Zebediah", "Quixotic-Marsh", "2013-05-17"),
    );
    let test_name = post(
        &durham,
        k.addr,
        body("DUR/T/1", "Ottoline", "Barrowclough", "2014-04-04"),
    );
    let live = post(
        &kent,
        k.addr,
        body("KNT/L/1", "Zebediah", "Quixotic-Marsh", "2013-05-17"),
    );

    // Matched and delivered like any other: the test recipient took it.
    for (c, r) in [(&met, &test_force), (&durham, &test_name)] {
        let s = wait_delivered(c, k.addr, r);
        assert_eq!(s["children"][0]["state"], "delivered", "{s}");
        assert_eq!(s["children"][0]["school_urn"], "118765", "{s}");
        assert_eq!(s["test"], true, "{s}");
    }
    let s = wait_delivered(&kent, k.addr, &live);
    assert_eq!(s["children"][0]["state"], "delivered", "{s}");
    assert!(s.get("test").is_none(), "a live status says nothing: {s}");

    let got = smtp.wait_for(3, Duration::from_secs(10));
    assert_eq!(got.len(), 3, "{got:?}");
    for r in [&test_force, &test_name] {
        let m = mail_for(&got, r);
        assert!(m.tls);
        assert_eq!(
            m.to,
            vec![TEST_RECIPIENT.to_owned()],
            "only the test recipient"
        );
        let subject = m.header("Subject").unwrap();
        assert!(subject.starts_with("TEST"), "{subject}");
        assert!(subject.contains("Maidstone Primary"), "{subject}");
        let text = unfolded(m);
        assert!(
            text.contains("Nothing went to the school"),
            "no test line: {text}"
        );
        for would_be in ["URN 118765", "Maidstone Primary", "dsl@maidstone.example"] {
            assert!(text.contains(would_be), "the test line lacks {would_be}");
        }
        assert!(!text.contains("QX9"), "the postcode leaked");
    }
    // The DSL got exactly the live alert, unchanged.
    let dsl: Vec<&Received> = got
        .iter()
        .filter(|m| m.to.iter().any(|t| t != TEST_RECIPIENT))
        .collect();
    assert_eq!(dsl.len(), 1, "{dsl:?}");
    let m = mail_for(&got, &live);
    assert_eq!(m.to, vec!["dsl@maidstone.example".to_owned()]);
    assert_eq!(
        m.header("Subject").unwrap(),
        "Keep in mind: a notification for a pupil at Maidstone Primary"
    );
    assert!(!unfolded(m).contains("TEST"), "a live alert is unmarked");

    // `kim alerts show` names the address it really goes to.
    for (r, to) in [
        (&test_force, TEST_RECIPIENT),
        (&live, "dsl@maidstone.example"),
    ] {
        let (code, out, err) = env.kim(&["alerts", "show", &format!("{r}.0"), "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["recipient"], to, "{v}");
        assert_eq!(v["last_attempt_went_to_recipient"], true, "{v}");
    }

    k.terminate(Duration::from_secs(20));
    // The audit marks the test notifications' events, and only theirs.
    for r in [&test_force, &test_name] {
        let ev = audit(&env, r);
        for kind in ["received", "alert_queued", "delivered"] {
            let e = ev
                .iter()
                .find(|e| e["kind"] == kind)
                .unwrap_or_else(|| panic!("no {kind} for {r}: {ev:?}"));
            assert_eq!(e["detail"]["test"], true, "{e}");
        }
    }
    let ev = audit(&env, &live);
    assert!(ev.iter().any(|e| e["kind"] == "delivered"), "{ev:?}");
    for e in &ev {
        assert!(e["detail"].get("test").is_none(), "live event marked: {e}");
    }
}

#[test]
fn a_test_forces_child_in_review_is_told_only_to_the_test_recipient() {
    let port = free_port();
    let env = env_with(
        port,
        "[review]\nnotify = [\"review-desk@council.example\"]\ndigest_every = \"1s\"\n",
    );
    let smtp = SmtpServer::start(port, Some((&env.certs.server_cert, &env.certs.server_key)));
    let k = env.start();
    // Children on no roll: both wait for review.
    let test = post(
        &env.met(),
        k.addr,
        body("MET/R/1", "Nobody", "Unknownson", "2010-01-01"),
    );
    let live = post(
        &env.kent(),
        k.addr,
        body("KNT/R/1", "Noone", "Elsewhere", "2010-02-02"),
    );
    let got = smtp.wait_for(2, Duration::from_secs(15));
    assert_eq!(got.len(), 2, "{got:?} {}", k.log_text());
    let (to_test, to_desk): (Vec<&Received>, Vec<&Received>) = got
        .iter()
        .partition(|m| m.to == vec![TEST_RECIPIENT.to_owned()]);
    assert_eq!(to_test.len(), 1, "{got:?}");
    assert_eq!(to_desk.len(), 1, "{got:?}");
    let t = unfolded(to_test[0]);
    assert!(to_test[0].header("Subject").unwrap().starts_with("TEST"));
    assert!(t.contains(&test) && !t.contains(&live), "{t}");
    assert!(
        t.contains("review-desk@council.example"),
        "names the desk: {t}"
    );
    let d = to_desk[0];
    assert_eq!(d.to, vec!["review-desk@council.example".to_owned()]);
    assert!(!d.header("Subject").unwrap().contains("TEST"));
    let d = unfolded(d);
    assert!(d.contains(&live) && !d.contains(&test), "{d}");
    assert!(k.terminate(Duration::from_secs(20)).success());
}

#[test]
fn test_mode_without_a_test_recipient_is_refused_naming_the_key() {
    let env = Env::new();
    let text = std::fs::read_to_string(&env.config).unwrap();
    let cfg = env.config.to_str().unwrap();
    // `test = true` on a force, then only a test name: each needs the key.
    let whole_force = test_mode_config(&text, false).replace(
        "test_client_names = [\"spiffe://police.example/durham\"]",
        "",
    );
    let one_name = test_mode_config(&text, false).replace("test = true\n", "");
    for bad in [whole_force, one_name] {
        std::fs::write(&env.config, &bad).unwrap();
        let (code, out, err) = env.kim(&["check-config", cfg]);
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains("mail.test_recipient"), "{err}");
    }
    // With the recipient it is accepted.
    std::fs::write(
        &env.config,
        test_mode_config(&text, false).replace(
            "[mail]\n",
            &format!("[mail]\ntest_recipient = \"{TEST_RECIPIENT}\"\n"),
        ),
    )
    .unwrap();
    let (code, out, err) = env.kim(&["check-config", cfg]);
    assert_eq!(code, 0, "{out}{err}");
}

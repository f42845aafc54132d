//! Live reload of `[mail]` and `[review]` (issue 13): after SIGHUP the
//! next alert goes to the new SMTP relay (a real STARTTLS server), without
//! a restart; a changed `[review] remind_at` is planned with at once.

use std::time::Duration;

use crate::reload::reload;
use crate::support::smtp::{free_port, mail_config, SmtpServer};
use crate::support::{notification, post_accepted, Env, Options};

const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,,\n";
const ROLL: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
KCC-1,Amelia,Khan,,2014-03-09,ME14 1XX,118765\n";

fn options(port: u16, review: &str) -> Options {
    Options {
        mail: Some(mail_config(port, std::path::Path::new("certs/ca.crt"))),
        extra: Some(format!("[review]\n{review}\n")),
        ..Options::default()
    }
}

#[test]
fn a_mail_relay_changed_by_sighup_gets_the_next_alert() {
    let (a, b) = (free_port(), free_port());
    let env = Env::with(options(a, "remind_at = \"06:30\""));
    env.import(SCHOOLS, ROLL);
    let tls = Some((
        env.certs.server_cert.as_path(),
        env.certs.server_key.as_path(),
    ));
    let first = SmtpServer::start(a, tls);
    let second = SmtpServer::start(b, tls);
    let kim = env.start();
    let body = |r: &str| notification(r, "Amelia", "Khan", "2014-03-09", "ME14 1XX");
    post_accepted(&env, kim.addr, &body("KNT/MAIL/1"));
    let got = first.wait_for(1, Duration::from_secs(15));
    assert_eq!(got.len(), 1, "{}", kim.log_text());
    assert_eq!(got[0].to, vec!["dsl@maidstone.example".to_owned()]);

    // The relay's port and [review] remind_at change; SIGHUP.
    env.write_config(&options(b, "remind_at = \"06:00\""));
    assert!(reload(&kim), "{}", kim.log_text());
    let log = kim.log_text();
    let line = log
        .lines()
        .rfind(|l| l.contains("config reloaded"))
        .unwrap();
    eprintln!(
        "reload with a new [mail] relay took effect in {} ms",
        line.split("ms=")
            .nth(1)
            .unwrap_or("?")
            .split_whitespace()
            .next()
            .unwrap_or("?")
    );
    assert!(
        kim.wait_for_log("review reminders planned with the new remind_at"),
        "{}",
        kim.log_text()
    );
    post_accepted(&env, kim.addr, &body("KNT/MAIL/2"));
    let got = second.wait_for(1, Duration::from_secs(15));
    assert_eq!(got.len(), 1, "the new relay: {}", kim.log_text());
    assert!(got[0].tls);
    assert_eq!(first.received().len(), 1, "nothing more to the old relay");
    let mut kim = kim;
    assert!(kim.child.try_wait().unwrap().is_none());
    assert!(kim.terminate(Duration::from_secs(30)).success());
}

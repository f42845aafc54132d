//! Expiry warnings (issue 13): a CRL whose nextUpdate is within `[server]
//! expiry_warning_crl` (48 h by default) gets a log warning and one notice
//! to `[mail] admin_email` through the outbox and a real STARTTLS SMTP
//! server, identifiers only; a restart the same day sends no second one.

use std::time::Duration;

use crate::reload_pki::TestCa;
use crate::support::smtp::{free_port, mail_config, SmtpServer};
use crate::support::{Env, Options};

#[test]
fn a_crl_near_its_next_update_is_told_to_the_admin_once_a_day_across_restarts() {
    let port = free_port();
    let opts = Options {
        mail: Some(mail_config(port, std::path::Path::new("certs/ca.crt"))),
        ..Options::default()
    };
    let env = Env::with(opts.clone());
    // nextUpdate in a day: inside the default 48 h window.
    let crl = env.path("police-soon.crl");
    std::fs::write(&crl, TestCa::dev(&env).crl(3, &[]).pem().unwrap()).unwrap();
    env.write_config(&Options {
        crls: vec![crl.clone()],
        ..opts
    });
    let smtp = SmtpServer::start(port, Some((&env.certs.server_cert, &env.certs.server_key)));
    let kim = env.start();
    let got = smtp.wait_for(1, Duration::from_secs(15));
    assert_eq!(got.len(), 1, "one notice: {}", kim.log_text());
    let m = &got[0];
    assert_eq!(m.to, vec!["safeguarding@council.example".to_owned()]);
    let subject = m.header("Subject").unwrap();
    assert!(subject.contains("CRL"), "{subject}");
    assert!(m.data.contains("police-soon.crl"), "{}", m.data);
    assert!(m.data.contains("expires at"), "{}", m.data);
    assert!(kim.wait_for_log("expires soon; the admin mailbox is told"));
    // Nothing else within its window: the dev certificates last longer.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(smtp.received().len(), 1, "{:?}", smtp.received());
    assert!(kim.terminate(Duration::from_secs(30)).success());

    // The same day, after a restart: checked, not sent again.
    let kim = env.start();
    assert!(kim.wait_for_log("expiry check done"), "{}", kim.log_text());
    let log = kim.log_text();
    let line = log
        .lines()
        .rfind(|l| l.contains("expiry check done"))
        .unwrap();
    assert!(
        line.contains("due=1") && line.contains("queued=0"),
        "{line}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(smtp.received().len(), 1, "told once a day");
    assert!(kim.terminate(Duration::from_secs(30)).success());
}

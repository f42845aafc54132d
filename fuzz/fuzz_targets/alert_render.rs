//! The alert and withdrawal renderers, fed with any stored notification
//! (read as the store reads one: serde, no validation — a record from
//! before a rule existed must still render harmless). For every child: the
//! subject holds no personal data; text and HTML have exactly the lines
//! and tags of the same notification with plain values (no value breaks a
//! line or opens a tag), and no forbidden character survives.
#![no_main]

use kim::alert::{render_alert, render_withdrawal, AllowedFacts, Rendered};
use kim::config::AlertConfig;
use kim::fields::class_of;
use kim::import::School;
use kim::ingest::notification::Notification;
use libfuzzer_sys::fuzz_target;

fn school() -> School {
    School {
        urn: "123456".into(),
        name: "Hill Road Primary".into(),
        dsl_name: "Dee Ess".into(),
        dsl_email: "dsl@hill.example".into(),
        deputy_email: None,
        phone: Some("01234 567890".into()),
    }
}

fn policy() -> AlertConfig {
    AlertConfig {
        summary_for_school: true,
        voice_of_child: true,
        officer_contact: true,
        local_contact: Some("the front door on 0300 123 4567".into()),
    }
}

/// The same notification with every text value plain.
fn plain(n: &Notification) -> Notification {
    let mut p = n.clone();
    let x = |s: &mut String| *s = "x".into();
    x(&mut p.police_reference);
    p.incident.summary_for_school.as_mut().map(x);
    for c in &mut p.children {
        x(&mut c.given_name);
        x(&mut c.family_name);
        c.voice_of_child.as_mut().map(x);
    }
    if let Some(o) = p.officer.as_mut() {
        x(&mut o.name);
        o.phone.as_mut().map(x);
        o.email.as_mut().map(x);
    }
    p
}

fn check(r: &Rendered, p: &Rendered) {
    assert_eq!(r.subject, p.subject, "the subject depends on the child");
    for (s, what) in [
        (&r.subject, "subject"),
        (&r.text, "text"),
        (&r.html, "html"),
    ] {
        assert!(
            !s.chars().any(|c| c != '\n' && class_of(c).is_some()),
            "a forbidden character in the {what}"
        );
    }
    assert_eq!(
        r.text.lines().count(),
        p.text.lines().count(),
        "a value broke a line"
    );
    let tags = |s: &str| s.matches('<').count() + s.matches('>').count();
    assert_eq!(tags(&r.html), tags(&p.html), "a value opened a tag");
}

fuzz_target!(|data: &[u8]| {
    let Ok(n) = serde_json::from_slice::<Notification>(data) else {
        return;
    };
    let p = plain(&n);
    let (school, policy) = (school(), policy());
    for i in 0..n.children.len().min(20) as u32 {
        let f = AllowedFacts::select(&n, i, &school, "20260302-abcdefgh", &policy).unwrap();
        let g = AllowedFacts::select(&p, i, &school, "20260302-abcdefgh", &policy).unwrap();
        check(&render_alert(&f), &render_alert(&g));
        check(&render_withdrawal(&f), &render_withdrawal(&g));
    }
});

//! The allow-list and the escaping, checked against every field a
//! notification can carry.

use super::*;
use crate::ingest::notification::{parse_notification, Notification};

fn notification(given: &str, summary: &str) -> Notification {
    let body = serde_json::json!({
        "police_reference": "KNT/26/004512",
        "incident": {
            "occurred_at": "2026-11-22T21:40:00Z",
            "category": "domestic_abuse",
            "summary_for_school": summary,
        },
        "children": [
            {
                "given_name": given,
                "family_name": "Khan",
                "other_names": ["Amyalias"],
                "date_of_birth": "2014-03-09",
                "school_urn": "118765",
                "postcode": "ME14 1XX",
                "involvement": "present",
                "voice_of_child": "Said she was scared but is OK now."
            },
            {
                "given_name": "Siblingname",
                "family_name": "Khan",
                "date_of_birth": "2016-05-01",
                "postcode": "ME14 1XX",
                "involvement": "not_present"
            }
        ],
        "officer": { "name": "PC 4411 Jones", "phone": "01622 000000", "email": "p.jones@police.example" }
    });
    parse_notification(
        body.to_string().as_bytes(),
        "2026-11-23T00:00:00Z".parse().unwrap(),
    )
    .unwrap()
}

fn school() -> School {
    School {
        urn: "118765".into(),
        name: "Oakfield Primary".into(),
        dsl_name: "Ms Dsl".into(),
        dsl_email: "dsl@oakfield.example".into(),
        deputy_email: None,
        phone: None,
    }
}

fn all_parts(r: &Rendered) -> String {
    format!("{}\n{}\n{}", r.subject, r.text, r.html)
}

#[test]
fn the_alert_carries_the_allowed_facts() {
    let n = notification("Amelia", "Police attended a verbal argument.");
    let s = school();
    let policy = AlertConfig::default();
    let f = AllowedFacts::select(&n, 0, &s, "7K3M-0000-0000-Q2ZT", &policy).unwrap();
    let r = render_alert(&f);
    assert_eq!(
        r.subject,
        "Keep in mind: a notification for a pupil at Oakfield Primary"
    );
    for needle in [
        "Amelia Khan",
        "9 March 2014",
        "Oakfield Primary (URN 118765)",
        "Sunday 22 November 2026 at 21:40 (UK time)",
        "domestic abuse",
        "present at the incident",
        "KNT/26/004512",
        "Police attended a verbal argument.",
        "Said she was scared",
        "PC 4411 Jones, 01622 000000, p.jones@police.example",
        "7K3M-0000-0000-Q2ZT",
        "Record this notification on your school's safeguarding system",
        "Do not raise it with the child's parents",
    ] {
        assert!(r.text.contains(needle), "text lacks {needle}:\n{}", r.text);
    }
    assert!(r.html.contains("Amelia Khan"));
}

#[test]
fn never_the_postcode_other_children_or_other_names() {
    let n = notification("Amelia", "Summary.");
    let s = school();
    let policy = AlertConfig::default();
    let all = all_parts(&render_alert(
        &AllowedFacts::select(&n, 0, &s, "R", &policy).unwrap(),
    ));
    for banned in ["ME14", "1XX", "Siblingname", "2016", "Amyalias"] {
        assert!(!all.contains(banned), "alert leaks {banned}");
    }
    // The subject names no child.
    let r = render_alert(&AllowedFacts::select(&n, 0, &s, "R", &policy).unwrap());
    assert!(!r.subject.contains("Amelia") && !r.subject.contains("Khan"));
}

#[test]
fn switched_off_fields_are_left_out() {
    let n = notification("Amelia", "Secret summary.");
    let s = school();
    let policy = AlertConfig {
        summary_for_school: false,
        voice_of_child: false,
        officer_contact: false,
        local_contact: Some("Kent front door 03000 411111".into()),
    };
    let all = all_parts(&render_alert(
        &AllowedFacts::select(&n, 0, &s, "R", &policy).unwrap(),
    ));
    for banned in ["Secret summary", "scared", "Jones", "01622", "p.jones"] {
        assert!(!all.contains(banned), "switched-off field leaks {banned}");
    }
    assert!(all.contains("Kent front door 03000 411111"));
}

#[test]
fn html_is_escaped_and_nothing_is_fetched_or_tracked() {
    let n = notification(
        "<script>alert(1)</script>",
        "<img src=http://x/t.gif> & more",
    );
    let s = School {
        name: "St <b>Mary's</b>\r\nBcc: evil@example.com".into(),
        ..school()
    };
    let policy = AlertConfig::default();
    let r = render_alert(&AllowedFacts::select(&n, 0, &s, "R", &policy).unwrap());
    assert!(!r.html.contains("<script>"));
    assert!(r.html.contains("&lt;script&gt;"));
    assert!(!r.html.contains("<img"));
    assert!(!r.html.contains("<b>"));
    // Only these elements, none of which fetches anything or links out.
    let allowed = [
        "!DOCTYPE", "html", "head", "meta", "title", "body", "p", "table", "tr", "th", "td", "h3",
        "ul", "li", "small",
    ];
    for tag in r.html.split('<').skip(1) {
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
            .collect();
        assert!(
            allowed.contains(&name.as_str()),
            "unexpected element <{name}"
        );
    }
    assert!(!r.html.contains("href") && !r.html.contains("src=\""));
    assert!(!r.subject.contains('\r') && !r.subject.contains('\n'));
    assert!(r.text.lines().all(|l| !l.starts_with("Bcc")));
}

#[test]
fn admin_notices_carry_no_childs_details() {
    let r = render_admin_notice(
        AdminReason::Escalated { deputy: true },
        "7K3M-0000-0000-Q2ZT.0",
        "Oakfield Primary",
        "118765",
        Some("421 4.3.0 try later"),
    );
    let all = all_parts(&r);
    assert!(all.contains("7K3M-0000-0000-Q2ZT.0") && all.contains("deputy DSL"));
    assert!(all.contains("421 4.3.0"));
    for banned in ["Amelia", "Khan", "2014", "KNT/"] {
        assert!(!all.contains(banned));
    }
}

#[test]
fn withdrawal_notice_names_the_receipt() {
    let n = notification("Amelia", "S");
    let s = school();
    let policy = AlertConfig::default();
    let r = render_withdrawal(
        &AllowedFacts::select(&n, 0, &s, "7K3M-0000-0000-Q2ZT", &policy).unwrap(),
    );
    assert!(r.subject.ends_with("has been withdrawn"));
    assert!(r.text.contains("7K3M-0000-0000-Q2ZT") && r.text.contains("withdrawn"));
    assert!(!all_parts(&r).contains("ME14"));
}

#[test]
fn incident_time_is_uk_local_time_across_the_clock_change() {
    // 23:30 UTC on 1 July is 00:30 BST the next day.
    assert_eq!(
        uk_time("2026-07-01T23:30:00Z".parse().unwrap()),
        "Thursday 2 July 2026 at 00:30 (UK time)"
    );
    assert_eq!(
        uk_time("2026-12-01T23:30:00Z".parse().unwrap()),
        "Tuesday 1 December 2026 at 23:30 (UK time)"
    );
}

/// Issue 11: a record stored before the API refused them (or by any path
/// that skips validation) may hold forbidden characters; none of them may
/// reach a school's inbox, in the subject, the text or the HTML.
#[test]
fn no_forbidden_character_is_ever_rendered_even_from_an_old_record() {
    use crate::fields::{check_free_text, check_line, tests::FORBIDDEN_SAMPLES};
    for &(c, class) in FORBIDDEN_SAMPLES {
        let hex = format!("U+{:04X} ({class:?})", c as u32);
        let bad = |s: &str| format!("{c}{s}{c}x{c}");
        // Straight into the typed record: no parser on the way.
        let mut n = notification("Amelia", "Summary.");
        n.police_reference = bad("KNT/26/1");
        n.incident.summary_for_school = Some(bad("Line one\nline two\t"));
        let child = &mut n.children[0];
        child.given_name = bad("Amelia");
        child.family_name = bad("Khan");
        child.other_names = vec![bad("Amy")];
        child.voice_of_child = Some(bad("Scared\nbut OK"));
        n.officer = Some(crate::ingest::notification::Officer {
            name: bad("PC Jones"),
            phone: Some(bad("01622")),
            email: Some(bad("p@x.example")),
        });
        let s = School {
            name: bad("Oakfield"),
            ..school()
        };
        let policy = AlertConfig {
            local_contact: Some(bad("Front door")),
            ..AlertConfig::default()
        };
        let f = AllowedFacts::select(&n, 0, &s, "R", &policy).unwrap();
        for r in [render_alert(&f), render_withdrawal(&f)] {
            assert_eq!(check_line(&r.subject), Ok(()), "{hex}: subject");
            assert_eq!(check_free_text(&r.text), Ok(()), "{hex}: text");
            assert_eq!(check_free_text(&r.html), Ok(()), "{hex}: html");
            for part in [&r.subject, &r.text, &r.html] {
                assert!(!part.contains(c) && !part.contains('\t'), "{hex}");
            }
            // The name is still there, just without the hidden characters.
            assert!(r.text.contains("Amelia"), "{hex}");
        }
    }
}

#[test]
fn the_review_notice_lists_identifiers_and_the_command() {
    let e = |r: &str, i| crate::store::review_digest::ReviewEntry {
        receipt: r.into(),
        index: i,
        reason: "namesakes".into(),
        force: "kent".into(),
        police_reference: "KNT/26/1".into(),
        deadline: "2026-11-23T08:00:00Z".parse().unwrap(),
    };
    let r = render_review_notice(&[e("AAAA-BBBB-CCCC-DDDD", 0), e("AAAA-BBBB-CCCC-EEEE", 2)]);
    assert_eq!(r.subject, "kim: 2 children need review");
    assert!(
        r.text.contains("child 2:")
            && r.text.contains("kim status AAAA-BBBB-CCCC-EEEE --reveal")
            && r.text.contains("kim review show AAAA-BBBB-CCCC-EEEE 2")
    );
    assert!(r.text.contains("kim review assign RECEIPT CHILD URN"));
    assert!(r
        .text
        .contains("reason namesakes, force kent, police reference KNT/26/1"));
    assert!(
        r.text
            .contains("Monday 23 November 2026 at 08:00 (UK time)"),
        "{}",
        r.text
    );
    assert_eq!(
        render_review_notice(&[e("A", 0)]).subject,
        "kim: 1 child needs review"
    );
}

#[test]
fn a_test_message_says_test_first_and_names_the_would_be_school_escaped() {
    let r = Rendered {
        subject: subject_for("St <Mary's>"),
        text: "Body.\n".into(),
        html: "<!DOCTYPE html>\n<html><body>\n<p>Body.</p>\n</body></html>\n".into(),
    };
    let to: lettre::message::Mailbox = "Ms Dee <dsl@school.example>".parse().unwrap();
    let w = WouldBe {
        to: &to,
        extra_to: &[],
        school_urn: "118765",
        school_name: Some("St <Mary's>\u{202e}"),
    };
    let m = mark_test(r, &w);
    assert!(m.subject.starts_with("TEST: Keep in mind"), "{}", m.subject);
    let first = m.text.lines().next().unwrap();
    assert!(first.starts_with("TEST"), "{first}");
    assert!(first.contains("dsl@school.example"), "{first}");
    assert!(first.contains("URN 118765 (St <Mary's>)"), "{first}");
    assert!(m.text.ends_with("Body.\n"));
    assert!(m.html.contains("<body>\n<p><strong>TEST: "), "{}", m.html);
    assert!(m.html.contains("St &lt;Mary&#39;s&gt;"), "{}", m.html);
    assert!(!m.html.contains("<Mary"), "{}", m.html);
}

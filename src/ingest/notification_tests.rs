//! Tests of the parent module, kept in their own file.

use super::*;
use crate::mutation::{mutate, Rng};
use serde_json::json;

fn now() -> Timestamp {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

fn valid() -> Value {
    json!({
        "police_reference": "KNT/26/004512",
        "incident": {
            "occurred_at": "2026-11-22T21:40:00Z",
            "category": "domestic_abuse",
            "summary_for_school": "Police attended a verbal argument at the home. No injuries."
        },
        "children": [
            {
                "given_name": "Amelia", "family_name": "Khan", "other_names": ["Amy"],
                "date_of_birth": "2014-03-09", "school_urn": "118765", "postcode": "ME14 1XX",
                "involvement": "present",
                "voice_of_child": "Spoken to by officers; said she was scared but is OK now."
            }
        ],
        "officer": { "name": "PC 4411 Jones", "phone": "01622 000000", "email": "p.jones@police.example" }
    })
}

fn parse_value(v: &Value) -> Result<Notification, ParseError> {
    parse_notification(&serde_json::to_vec(v).unwrap(), now())
}

fn accepts(v: &Value) -> Notification {
    match parse_value(v) {
        Ok(n) => n,
        Err(e) => panic!("expected acceptance, got {e:?}"),
    }
}

fn errors(v: &Value) -> Vec<FieldError> {
    match parse_value(v) {
        Err(ParseError::Invalid(errs)) => errs,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Asserts exactly one error, at `pointer`; returns its message.
fn rejects_at(v: &Value, pointer: &str) -> String {
    let errs = errors(v);
    assert_eq!(
        errs.len(),
        1,
        "expected one error at {pointer}, got {errs:?}"
    );
    assert_eq!(errs[0].pointer, pointer, "{errs:?}");
    errs[0].message.clone()
}

/// Sets (or inserts) the member at `pointer`.
fn set(v: &mut Value, pointer: &str, new: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    match v.pointer_mut(parent).unwrap() {
        Value::Object(m) => {
            m.insert(key.replace("~1", "/").replace("~0", "~"), new);
        }
        Value::Array(a) => a[key.parse::<usize>().unwrap()] = new,
        _ => panic!("bad parent {parent}"),
    }
}

fn remove(v: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    v.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key)
        .unwrap();
}

fn with(pointer: &str, new: Value) -> Value {
    let mut v = valid();
    set(&mut v, pointer, new);
    v
}

fn without(pointer: &str) -> Value {
    let mut v = valid();
    remove(&mut v, pointer);
    v
}

fn child() -> Value {
    valid()["children"][0].clone()
}

// --- whole body -------------------------------------------------------

#[test]
fn example_body_is_accepted() {
    let n = accepts(&valid());
    assert_eq!(n.police_reference, "KNT/26/004512");
    assert_eq!(
        n.incident.occurred_at,
        "2026-11-22T21:40:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(n.incident.category, Category::DomesticAbuse);
    assert!(n.incident.summary_for_school.is_some());
    let c = &n.children[0];
    assert_eq!(
        (c.given_name.as_str(), c.family_name.as_str()),
        ("Amelia", "Khan")
    );
    assert_eq!(c.other_names, vec!["Amy".to_owned()]);
    assert_eq!(c.date_of_birth, jiff::civil::date(2014, 3, 9));
    assert_eq!(c.school_urn.as_deref(), Some("118765"));
    assert_eq!(c.postcode.as_deref(), Some("ME14 1XX"));
    assert_eq!(c.involvement, Involvement::Present);
    let o = n.officer.as_ref().unwrap();
    assert_eq!(o.name, "PC 4411 Jones");
    assert_eq!(o.phone.as_deref(), Some("01622 000000"));
    assert_eq!(o.email.as_deref(), Some("p.jones@police.example"));
}

#[test]
fn minimal_body_is_accepted_and_optionals_are_absent() {
    let v = json!({
        "police_reference": "R1",
        "incident": { "occurred_at": "2026-11-22T21:40:00Z", "category": "domestic_abuse" },
        "children": [{ "given_name": "A", "family_name": "B", "date_of_birth": "2014-03-09", "involvement": "unknown" }]
    });
    let n = accepts(&v);
    assert!(n.officer.is_none() && n.incident.summary_for_school.is_none());
    let c = &n.children[0];
    assert!(
        c.other_names.is_empty()
            && c.school_urn.is_none()
            && c.postcode.is_none()
            && c.voice_of_child.is_none()
    );
}

#[test]
fn null_optional_fields_are_treated_as_absent() {
    let mut v = valid();
    for p in [
        "/incident/summary_for_school",
        "/children/0/other_names",
        "/children/0/school_urn",
        "/children/0/postcode",
        "/children/0/voice_of_child",
        "/officer/phone",
        "/officer/email",
    ] {
        set(&mut v, p, Value::Null);
    }
    let n = accepts(&v);
    assert!(n.incident.summary_for_school.is_none());
    assert!(n.children[0].other_names.is_empty() && n.children[0].postcode.is_none());
    let n = accepts(&with("/officer", Value::Null));
    assert!(n.officer.is_none());
}

#[test]
fn top_level_must_be_an_object() {
    for v in [json!([]), json!("x"), json!(1), Value::Null] {
        assert_eq!(rejects_at(&v, ""), MSG_OBJECT);
    }
}

#[test]
fn not_json_is_a_syntax_error_without_quoting_input() {
    for body in [
        &b"{\"police_reference\": Zebediah}"[..],
        b"",
        b"{\"a\":1",
        b"{} trailing",
        b"\xff\xfe",
    ] {
        match parse_notification(body, now()) {
            Err(ParseError::Syntax(msg)) => {
                assert!(msg.contains("line ") && msg.contains("column "), "{msg}");
                assert!(
                    !msg.contains("Zebediah") && !msg.contains("trailing"),
                    "{msg}"
                );
            }
            other => panic!("expected Syntax, got {other:?}"),
        }
    }
    let e = parse_notification(b"{\"x\": Zebediah}", now()).unwrap_err();
    assert!(!e.to_string().contains("Zebediah") && !format!("{e:?}").contains("Zebediah"));
}

#[test]
fn deep_nesting_is_a_syntax_error_not_a_crash() {
    let body = format!(
        "{{\"police_reference\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(matches!(
        parse_notification(body.as_bytes(), now()),
        Err(ParseError::Syntax(_))
    ));
}

#[test]
fn duplicate_keys_are_rejected_at_their_pointer() {
    let body = valid()
        .to_string()
        .replacen('{', "{\"police_reference\":\"X\",", 1);
    let errs = match parse_notification(body.as_bytes(), now()) {
        Err(ParseError::Invalid(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        errs,
        vec![FieldError {
            pointer: "/police_reference".into(),
            message: MSG_DUPLICATE.into()
        }]
    );
    let body = r#"{"children":[{"postcode":"A","postcode":"B"}]}"#;
    let Err(ParseError::Invalid(errs)) = parse_notification(body.as_bytes(), now()) else {
        panic!()
    };
    assert!(
        errs.iter()
            .any(|e| e.pointer == "/children/0/postcode" && e.message == MSG_DUPLICATE),
        "{errs:?}"
    );
}

#[test]
fn multiple_errors_are_reported_together() {
    let mut v = valid();
    set(&mut v, "/police_reference", json!("has space"));
    set(
        &mut v,
        "/incident/occurred_at",
        json!("2026-11-22T21:40:00"),
    );
    set(&mut v, "/children/0/date_of_birth", json!("2014-02-30"));
    set(&mut v, "/children/0/nickname", json!("x"));
    set(&mut v, "/officer/email", json!("nope"));
    set(&mut v, "/unexpected_field", json!(1));
    let mut pointers: Vec<_> = errors(&v).into_iter().map(|e| e.pointer).collect();
    pointers.sort();
    assert_eq!(
        pointers,
        [
            "/children/0/date_of_birth",
            "/children/0/nickname",
            "/incident/occurred_at",
            "/officer/email",
            "/police_reference",
            "/unexpected_field"
        ]
    );
}

// --- unknown fields -----------------------------------------------------

#[test]
fn unknown_fields_are_rejected_at_every_level() {
    for p in [
        "/unexpected_field",
        "/incident/severity",
        "/children/0/nickname",
        "/officer/badge",
    ] {
        let msg = rejects_at(&with(p, json!("x")), p);
        assert_eq!(msg, MSG_UNKNOWN);
    }
    // even when null
    rejects_at(
        &with("/children/0/nickname", Value::Null),
        "/children/0/nickname",
    );
}

#[test]
fn unknown_field_pointer_is_escaped_and_capped() {
    rejects_at(&with("/a~1b~0c", json!(1)), "/a~1b~0c");
    let long = "k".repeat(200);
    let p = rejects_at(
        &with(&format!("/{long}"), json!(1)),
        &format!("/{}", "k".repeat(64)),
    );
    assert_eq!(p, MSG_UNKNOWN);
    let errs = errors(&with("/bad\u{7}key", json!(1)));
    assert_eq!(errs[0].pointer, "/bad\u{FFFD}key");
}

// --- police_reference ------------------------------------------------------

#[test]
fn police_reference_accepts_allowed_charset_up_to_64() {
    let r = format!("Az09/-_.{}", "x".repeat(56));
    assert_eq!(r.len(), 64);
    assert_eq!(
        accepts(&with("/police_reference", json!(r))).police_reference,
        r
    );
}

#[test]
fn police_reference_rejections() {
    let p = "/police_reference";
    assert_eq!(
        rejects_at(&with(p, json!("KNT 26")), p),
        MSG_REFERENCE_CHARS
    );
    assert_eq!(rejects_at(&with(p, json!("x".repeat(65))), p), too_long(64));
    assert_eq!(rejects_at(&with(p, json!("")), p), MSG_EMPTY);
    assert_eq!(rejects_at(&with(p, json!("KNT/é")), p), MSG_REFERENCE_CHARS);
    assert_eq!(rejects_at(&with(p, json!(4512)), p), MSG_STRING);
    assert_eq!(rejects_at(&with(p, Value::Null), p), MSG_REQUIRED);
    assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
}

// --- incident ---------------------------------------------------------------

#[test]
fn incident_is_a_required_object() {
    assert_eq!(rejects_at(&without("/incident"), "/incident"), MSG_REQUIRED);
    assert_eq!(
        rejects_at(&with("/incident", Value::Null), "/incident"),
        MSG_REQUIRED
    );
    assert_eq!(
        rejects_at(&with("/incident", json!(["x"])), "/incident"),
        MSG_OBJECT
    );
}

#[test]
fn occurred_at_accepts_rfc3339_forms() {
    let p = "/incident/occurred_at";
    let n = accepts(&with(p, json!("2026-11-22T22:40:00+01:00")));
    assert_eq!(
        n.incident.occurred_at,
        "2026-11-22T21:40:00Z".parse::<Timestamp>().unwrap()
    );
    accepts(&with(p, json!("2026-11-22T16:40:00-05:00")));
    accepts(&with(p, json!("2026-11-22t21:40:00.123456789z")));
    accepts(&with(p, json!("2026-11-22T21:40:00.5Z")));
}

#[test]
fn occurred_at_rejects_other_forms() {
    let p = "/incident/occurred_at";
    for bad in [
        "2026-11-22T21:40:00",
        "2026-11-22",
        "2026-11-22 21:40:00Z",
        "2026-11-22T21:40Z",
        "2026-11-22T21:40:00+01",
        "2026-11-22T21:40:00+0100",
        "2026-11-22T21:40:00Z[Europe/London]",
        "2026-11-22T21:40:00.Z",
        "20261122T214000Z",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T21:40:00+24:00",
        "yesterday",
        "",
    ] {
        assert_eq!(rejects_at(&with(p, json!(bad)), p), MSG_TIMESTAMP, "{bad}");
    }
    assert_eq!(rejects_at(&with(p, json!(1_795_000_000)), p), MSG_STRING);
    assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
}

#[test]
fn occurred_at_future_bound_is_five_minutes() {
    let p = "/incident/occurred_at";
    let at = |mins: i64| (now() + SignedDuration::from_mins(mins)).to_string();
    accepts(&with(p, json!(at(4))));
    accepts(&with(p, json!(at(5))));
    accepts(&with(p, json!(at(-60 * 24 * 365))));
    assert_eq!(rejects_at(&with(p, json!(at(6))), p), MSG_FUTURE);
    // 5 minutes and one second
    let late = (now() + SignedDuration::from_secs(301)).to_string();
    assert_eq!(rejects_at(&with(p, json!(late)), p), MSG_FUTURE);
}

#[test]
fn category_is_an_enum() {
    let p = "/incident/category";
    assert_eq!(
        accepts(&valid()).incident.category.as_str(),
        "domestic_abuse"
    );
    let msg = rejects_at(&with(p, json!("burglary")), p);
    assert_eq!(msg, "must be one of: domestic_abuse");
    rejects_at(&with(p, json!("DomesticAbuse")), p);
    rejects_at(&with(p, json!("DOMESTIC_ABUSE")), p);
    assert_eq!(
        rejects_at(&with(p, json!(["domestic_abuse"])), p),
        MSG_STRING
    );
    assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
    for c in Category::ALL {
        assert_eq!(serde_json::to_value(c).unwrap(), json!(c.as_str()));
    }
}

#[test]
fn summary_for_school_rules() {
    let p = "/incident/summary_for_school";
    // 500 characters but 1000 bytes: chars are counted
    accepts(&with(p, json!("é".repeat(500))));
    accepts(&with(p, json!("")));
    accepts(&with(p, json!("line one\nline two\tindented")));
    accepts(&with(p, json!("العربية हिन्दी русский \u{1F600}")));
    assert_eq!(
        rejects_at(&with(p, json!("é".repeat(501))), p),
        too_long(500)
    );
    for bad in [
        "a\r\nb",
        "bell\u{7}",
        "nul\u{0}",
        "del\u{7f}",
        "c1\u{85}",
        "esc\u{1b}[31m",
    ] {
        assert_eq!(
            rejects_at(&with(p, json!(bad)), p),
            MSG_TEXT_CONTROL,
            "{bad:?}"
        );
    }
    assert_eq!(rejects_at(&with(p, json!(true)), p), MSG_STRING);
}

// --- children ------------------------------------------------------------------

#[test]
fn children_is_a_required_array_of_1_to_20() {
    let p = "/children";
    assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
    assert_eq!(rejects_at(&with(p, Value::Null), p), MSG_REQUIRED);
    assert_eq!(rejects_at(&with(p, child()), p), MSG_ARRAY);
    assert_eq!(
        rejects_at(&with(p, json!([])), p),
        "must have at least 1 entry"
    );
    let twenty = vec![child(); MAX_CHILDREN];
    assert_eq!(accepts(&with(p, json!(twenty))).children.len(), 20);
    let twenty_one = vec![child(); MAX_CHILDREN + 1];
    assert_eq!(
        rejects_at(&with(p, json!(twenty_one)), p),
        "must have at most 20 entries"
    );
}

#[test]
fn each_child_must_be_an_object() {
    let v = with("/children", json!([child(), "Amelia", null]));
    let errs = errors(&v);
    assert_eq!(
        errs,
        vec![
            FieldError {
                pointer: "/children/1".into(),
                message: MSG_OBJECT.into()
            },
            FieldError {
                pointer: "/children/2".into(),
                message: MSG_OBJECT.into()
            },
        ]
    );
}

#[test]
fn names_in_any_script_are_accepted() {
    for (given, family) in [
        ("Анастасия", "Смирнова"),
        ("فاطمة", "الزهراء"),
        ("अनन्या", "शर्मा"),
        ("Zoë", "O'Brien-Núñez"),
    ] {
        let mut v = valid();
        set(&mut v, "/children/0/given_name", json!(given));
        set(&mut v, "/children/0/family_name", json!(family));
        let n = accepts(&v);
        assert_eq!(
            (
                n.children[0].given_name.as_str(),
                n.children[0].family_name.as_str()
            ),
            (given, family)
        );
    }
    accepts(&with("/children/0/given_name", json!("x".repeat(100))));
    accepts(&with("/children/0/family_name", json!(" Khan ")));
}

#[test]
fn name_rejections() {
    for p in ["/children/0/given_name", "/children/0/family_name"] {
        assert_eq!(rejects_at(&with(p, json!("Ame\u{7}lia")), p), MSG_CONTROL);
        assert_eq!(rejects_at(&with(p, json!("Ame\tlia")), p), MSG_CONTROL);
        assert_eq!(rejects_at(&with(p, json!("Amelia\n")), p), MSG_CONTROL);
        assert_eq!(rejects_at(&with(p, json!("")), p), MSG_EMPTY);
        assert_eq!(rejects_at(&with(p, json!("   ")), p), MSG_BLANK);
        assert_eq!(rejects_at(&with(p, json!("\u{3000}")), p), MSG_BLANK);
        assert_eq!(
            rejects_at(&with(p, json!("я".repeat(101))), p),
            too_long(100)
        );
        assert_eq!(rejects_at(&with(p, json!(42)), p), MSG_STRING);
        assert_eq!(rejects_at(&with(p, Value::Null), p), MSG_REQUIRED);
        assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
    }
}

#[test]
fn other_names_rules() {
    let p = "/children/0/other_names";
    let ten: Vec<String> = (0..10).map(|i| format!("Name{i}")).collect();
    assert_eq!(accepts(&with(p, json!(ten))).children[0].other_names, ten);
    accepts(&with(p, json!([])));
    let eleven: Vec<String> = (0..11).map(|i| format!("Name{i}")).collect();
    assert_eq!(
        rejects_at(&with(p, json!(eleven)), p),
        "must have at most 10 entries"
    );
    assert_eq!(rejects_at(&with(p, json!("Amy")), p), MSG_ARRAY);

    let mut second = child();
    second["other_names"] = json!(["A", "B", "C", "D\u{7}"]);
    let v = with("/children", json!([child(), second]));
    assert_eq!(rejects_at(&v, "/children/1/other_names/3"), MSG_CONTROL);
    assert_eq!(
        rejects_at(&with(p, json!(["A", ""])), "/children/0/other_names/1"),
        MSG_EMPTY
    );
    assert_eq!(
        rejects_at(&with(p, json!([null])), "/children/0/other_names/0"),
        MSG_STRING
    );
    assert_eq!(
        rejects_at(
            &with(p, json!(["x".repeat(101)])),
            "/children/0/other_names/0"
        ),
        too_long(100)
    );
}

#[test]
fn date_of_birth_format() {
    let p = "/children/0/date_of_birth";
    for bad in [
        "2014-02-30",
        "2014-3-9",
        "2014-03-09T00:00:00Z",
        "20140309",
        "09/03/2014",
        "2014-13-01",
        "+2014-03-09",
        "",
        "２０１４-03-09",
    ] {
        assert_eq!(rejects_at(&with(p, json!(bad)), p), MSG_DATE, "{bad}");
    }
    accepts(&with(p, json!("2012-02-29")));
    assert_eq!(rejects_at(&with(p, json!("2013-02-29")), p), MSG_DATE);
    assert_eq!(rejects_at(&with(p, json!(20140309)), p), MSG_STRING);
    assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
}

#[test]
fn date_of_birth_not_after_incident_date() {
    let p = "/children/0/date_of_birth";
    // incident 2026-11-22 (UTC)
    accepts(&with(p, json!("2026-11-22")));
    assert_eq!(
        rejects_at(&with(p, json!("2026-11-23")), p),
        MSG_DOB_AFTER_INCIDENT
    );
}

#[test]
fn incident_date_is_taken_in_utc() {
    // 00:30 at +01:00 is 23:30 UTC the previous day.
    let mut v = with("/incident/occurred_at", json!("2026-11-23T00:30:00+01:00"));
    set(&mut v, "/children/0/date_of_birth", json!("2026-11-23"));
    assert_eq!(
        rejects_at(&v, "/children/0/date_of_birth"),
        MSG_DOB_AFTER_INCIDENT
    );
}

#[test]
fn child_must_be_under_18_on_the_incident_date() {
    let p = "/children/0/date_of_birth";
    // 18th birthday exactly on the incident date: reject.
    assert_eq!(rejects_at(&with(p, json!("2008-11-22")), p), MSG_DOB_ADULT);
    // Incident the day before the 18th birthday: accept.
    accepts(&with(p, json!("2008-11-23")));
    assert_eq!(rejects_at(&with(p, json!("1990-01-01")), p), MSG_DOB_ADULT);
}

#[test]
fn leap_day_birthday_uses_jiff_arithmetic() {
    // Born 2008-02-29; jiff puts the 18th birthday on 2026-02-28.
    let mut v = with("/children/0/date_of_birth", json!("2008-02-29"));
    set(
        &mut v,
        "/incident/occurred_at",
        json!("2026-02-27T12:00:00Z"),
    );
    accepts(&v);
    set(
        &mut v,
        "/incident/occurred_at",
        json!("2026-02-28T12:00:00Z"),
    );
    assert_eq!(rejects_at(&v, "/children/0/date_of_birth"), MSG_DOB_ADULT);
}

#[test]
fn date_of_birth_cross_checks_are_skipped_when_occurred_at_is_invalid() {
    let mut v = with("/incident/occurred_at", json!("not a time"));
    set(&mut v, "/children/0/date_of_birth", json!("1990-01-01"));
    rejects_at(&v, "/incident/occurred_at");
}

#[test]
fn school_urn_rules() {
    let p = "/children/0/school_urn";
    accepts(&with(p, json!("118765")));
    accepts(&with(p, json!("1187650")));
    for bad in ["11876", "11876501", "11876A", "١١٨٧٦٥", " 118765", ""] {
        assert_eq!(rejects_at(&with(p, json!(bad)), p), MSG_URN, "{bad}");
    }
    assert_eq!(rejects_at(&with(p, json!(118765)), p), MSG_STRING);
}

#[test]
fn postcode_rules() {
    let p = "/children/0/postcode";
    accepts(&with(p, json!("ME141XX")));
    accepts(&with(p, json!("SW1A  2AA ")));
    assert_eq!(rejects_at(&with(p, json!("SW1A  2AA X")), p), too_long(10));
    assert_eq!(
        rejects_at(&with(p, json!("ME14-1XX")), p),
        MSG_POSTCODE_CHARS
    );
    assert_eq!(
        rejects_at(&with(p, json!("МЕ14 1XX")), p),
        MSG_POSTCODE_CHARS
    );
    assert_eq!(
        rejects_at(&with(p, json!("ME14\t1XX")), p),
        MSG_POSTCODE_CHARS
    );
    assert_eq!(rejects_at(&with(p, json!("")), p), MSG_EMPTY);
    assert_eq!(rejects_at(&with(p, json!("   ")), p), MSG_BLANK);
    assert_eq!(rejects_at(&with(p, json!({})), p), MSG_STRING);
}

#[test]
fn involvement_rules() {
    let p = "/children/0/involvement";
    for i in Involvement::ALL {
        assert_eq!(
            accepts(&with(p, json!(i.as_str()))).children[0].involvement,
            *i
        );
        assert_eq!(serde_json::to_value(i).unwrap(), json!(i.as_str()));
    }
    assert_eq!(Involvement::NotPresent.as_str(), "not_present");
    let msg = rejects_at(&with(p, json!("Present")), p);
    assert_eq!(
        msg,
        "must be one of: present, witnessed, not_present, unknown"
    );
    rejects_at(&with(p, json!("notpresent")), p);
    assert_eq!(rejects_at(&with(p, Value::Null), p), MSG_REQUIRED);
    assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
    assert_eq!(rejects_at(&with(p, json!(1)), p), MSG_STRING);
}

#[test]
fn voice_of_child_rules() {
    let p = "/children/0/voice_of_child";
    accepts(&with(p, json!("ж".repeat(500))));
    accepts(&with(p, json!("She said:\n\t\"I'm OK\"")));
    assert_eq!(
        rejects_at(&with(p, json!("ж".repeat(501))), p),
        too_long(500)
    );
    assert_eq!(rejects_at(&with(p, json!("a\rb")), p), MSG_TEXT_CONTROL);
    assert_eq!(rejects_at(&with(p, json!("a\u{7}b")), p), MSG_TEXT_CONTROL);
    assert_eq!(rejects_at(&with(p, json!(["x"])), p), MSG_STRING);
}

// --- officer ----------------------------------------------------------------------

#[test]
fn officer_is_an_optional_object_with_required_name() {
    accepts(&without("/officer"));
    assert_eq!(
        rejects_at(&with("/officer", json!("PC Jones")), "/officer"),
        MSG_OBJECT
    );
    let p = "/officer/name";
    assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
    assert_eq!(rejects_at(&with(p, Value::Null), p), MSG_REQUIRED);
    assert_eq!(
        rejects_at(&with(p, json!("x".repeat(101))), p),
        too_long(100)
    );
    assert_eq!(rejects_at(&with(p, json!("PC\u{0}Jones")), p), MSG_CONTROL);
    assert_eq!(rejects_at(&with(p, json!("")), p), MSG_EMPTY);
    accepts(&with(p, json!("x".repeat(100))));
    let n = accepts(&with("/officer", json!({ "name": "DC Smith" })));
    let o = n.officer.unwrap();
    assert!(o.phone.is_none() && o.email.is_none());
}

#[test]
fn officer_phone_rules() {
    let p = "/officer/phone";
    accepts(&with(p, json!("+44 (0)1622 000-000")));
    accepts(&with(p, json!("0".repeat(30))));
    assert_eq!(rejects_at(&with(p, json!("0".repeat(31))), p), too_long(30));
    assert_eq!(
        rejects_at(&with(p, json!("01622 000000 ext 4")), p),
        MSG_PHONE_CHARS
    );
    assert_eq!(
        rejects_at(&with(p, json!("01622.000000")), p),
        MSG_PHONE_CHARS
    );
    assert_eq!(rejects_at(&with(p, json!("+ ( ) -")), p), MSG_PHONE_DIGIT);
    assert_eq!(rejects_at(&with(p, json!("")), p), MSG_EMPTY);
    assert_eq!(rejects_at(&with(p, json!(1622000000)), p), MSG_STRING);
}

#[test]
fn officer_email_rules() {
    let p = "/officer/email";
    accepts(&with(p, json!("a@b.c")));
    accepts(&with(p, json!("first.last+tag@kent.police.example")));
    // Domain labels are at most 63 characters (RFC 1035), as in the school
    // directory (one rule: `fields::Email`).
    let b63 = "b".repeat(63);
    let max = format!(
        "{}@{b63}.{b63}.{}.example",
        "a".repeat(64),
        "b".repeat(254 - 64 - 1 - 2 * 64 - 8)
    );
    assert_eq!(max.len(), 254);
    accepts(&with(p, json!(max)));
    let over = format!(
        "{}@{b63}.{b63}.{}.example",
        "a".repeat(64),
        "b".repeat(254 - 64 - 2 * 64 - 8)
    );
    assert_eq!(rejects_at(&with(p, json!(over)), p), too_long(254));
    for bad in [
        "p.jones",
        "p@jones@police.example",
        "@police.example",
        "p.jones@police",
        "p jones@police.example",
        "p.jones@police.example ",
        "p.jones@.example",
        "p.jones@police.",
        "p.jones@police..example",
        "p.jones@",
    ] {
        assert_eq!(rejects_at(&with(p, json!(bad)), p), MSG_EMAIL, "{bad}");
    }
    assert_eq!(rejects_at(&with(p, json!(false)), p), MSG_STRING);
}

// --- serde, canonical bytes, redaction -------------------------------------------

#[test]
fn serde_round_trip_is_exact() {
    let mut v = valid();
    set(
        &mut v,
        "/incident/occurred_at",
        json!("2026-11-22T22:40:00.123456789+01:00"),
    );
    let twenty = vec![child(); 2];
    set(&mut v, "/children", json!(twenty));
    remove(&mut v, "/children/1/other_names");
    remove(&mut v, "/children/1/postcode");
    for n in [
        accepts(&v),
        accepts(&valid()),
        accepts(&without("/officer")),
    ] {
        let bytes = serde_json::to_vec(&n).unwrap();
        let back: Notification = serde_json::from_slice(&bytes).unwrap();
        assert!(back == n);
        assert_eq!(back.canonical_bytes(), n.canonical_bytes());
        assert_eq!(back.canonical_bytes(), bytes);
    }
    let n = accepts(&v);
    let j: Value = serde_json::from_slice(&n.canonical_bytes()).unwrap();
    assert_eq!(
        j["incident"]["occurred_at"],
        "2026-11-22T21:40:00.123456789Z"
    );
    assert_eq!(j["children"][0]["date_of_birth"], "2014-03-09");
    assert!(j["children"][1].get("postcode").is_none());
}

#[test]
fn canonical_bytes_equal_for_equal_content() {
    // Same content, different key order, whitespace, null-vs-absent and offset.
    let a = accepts(&valid());
    let mut v = valid();
    set(
        &mut v,
        "/incident/occurred_at",
        json!("2026-11-22T22:40:00+01:00"),
    );
    let reordered = format!(
        "{{ \"officer\": {},\n \"children\": {}, \"incident\": {}, \"police_reference\": \"KNT/26/004512\" }}",
        v["officer"], v["children"], v["incident"]
    );
    let b = parse_notification(reordered.as_bytes(), now()).unwrap();
    assert!(a == b);
    assert_eq!(a.canonical_bytes(), b.canonical_bytes());
    let c = accepts(&with("/children/0/other_names", json!(["Amy", "Mia"])));
    assert_ne!(a.canonical_bytes(), c.canonical_bytes());
}

#[test]
fn stored_json_with_unknown_fields_does_not_deserialize() {
    let mut j = serde_json::to_value(accepts(&valid())).unwrap();
    j["children"][0]["nickname"] = json!("x");
    assert!(serde_json::from_value::<Notification>(j).is_err());
}

#[test]
fn errors_never_echo_submitted_values() {
    let mut v = valid();
    set(&mut v, "/children/0/given_name", json!("Zebediah\u{7}"));
    set(&mut v, "/children/0/family_name", json!("Quixotic-Marsh"));
    set(&mut v, "/children/0/date_of_birth", json!("2031-01-01"));
    set(&mut v, "/children/0/postcode", json!("ZZ9 9ZZ-"));
    set(&mut v, "/children/0/school_urn", json!("ZZ9"));
    set(&mut v, "/children/0/involvement", json!("Zebediah"));
    set(&mut v, "/children/0/other_names", json!(["Quixotic\u{0}"]));
    set(
        &mut v,
        "/incident/occurred_at",
        json!("2031-01-01T00:00:00Z"),
    );
    set(&mut v, "/incident/category", json!("Quixotic"));
    set(&mut v, "/incident/summary_for_school", json!("Zebediah\r"));
    set(
        &mut v,
        "/officer/email",
        json!("Zebediah Quixotic-Marsh@ZZ9"),
    );
    set(&mut v, "/officer/phone", json!("ZZ9 2031"));
    set(&mut v, "/police_reference", json!("ZZ9 2031"));
    let err = parse_value(&v).unwrap_err();
    let ParseError::Invalid(errs) = &err else {
        panic!("{err:?}")
    };
    assert!(errs.len() >= 10, "{errs:?}");
    let outputs = [
        format!("{err:?}"),
        err.to_string(),
        serde_json::to_string(errs).unwrap(),
    ];
    for out in &outputs {
        for secret in ["Zebediah", "Quixotic", "2031", "ZZ9"] {
            assert!(!out.contains(secret), "{secret} leaked in {out}");
        }
    }
    // valid except for the child's age: the dob must still not leak
    let mut v = with("/children/0/date_of_birth", json!("2031-01-01"));
    set(&mut v, "/children/0/given_name", json!("Zebediah"));
    let err = parse_value(&v).unwrap_err();
    assert!(!format!("{err:?}").contains("2031") && !err.to_string().contains("2031"));
}

#[test]
fn debug_is_redacting() {
    let mut v = valid();
    set(&mut v, "/children/0/given_name", json!("Zebediah"));
    set(&mut v, "/children/0/family_name", json!("Quixotic-Marsh"));
    set(&mut v, "/children/0/postcode", json!("ZZ9 9ZZ"));
    let n = accepts(&v);
    let dbg = format!("{n:?}");
    let pretty = format!("{n:#?}");
    for out in [&dbg, &pretty] {
        for secret in [
            "Zebediah",
            "Quixotic",
            "Amy",
            "2014",
            "03-09",
            "ZZ9",
            "118765",
            "KNT",
            "004512",
            "Jones",
            "01622",
            "police.example",
            "argument",
            "scared",
            "21:40",
        ] {
            assert!(!out.contains(secret), "{secret} leaked in {out}");
        }
    }
    assert!(dbg.contains("involvement: Present"), "{dbg}");
    assert!(dbg.contains("DomesticAbuse"), "{dbg}");
}

/// 20,000 mutated bodies: the parser never panics, and whatever it says
/// (the error, its pointers and messages) never repeats a submitted value.
#[test]
fn mutated_bodies_never_panic_and_errors_never_echo_the_values() {
    let base = serde_json::to_vec(&valid()).unwrap();
    let secrets = [
        "Amelia",
        "Khan",
        "2014-03-09",
        "ME14",
        "Amy",
        "scared",
        "Jones",
        "01622",
    ];
    let mut rng = Rng(0x6b69_6d5f_6675_7a7a);
    let (mut accepted, mut syntax, mut invalid) = (0, 0, 0);
    for _ in 0..20_000 {
        let mut body = base.clone();
        mutate(&mut rng, &mut body);
        match parse_notification(&body, now()) {
            Ok(_) => accepted += 1,
            Err(e) => {
                let said = match &e {
                    ParseError::Syntax(_) => {
                        syntax += 1;
                        format!("{e} {e:?}")
                    }
                    ParseError::Invalid(errs) => {
                        invalid += 1;
                        // A mutated key can be echoed in a pointer (that is
                        // what an unknown field is); the messages never
                        // carry a value.
                        errs.iter()
                            .map(|f| f.message.clone())
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                };
                for s in secrets {
                    assert!(
                        !said.contains(s),
                        "{s} echoed in {said:?} for {:?}",
                        String::from_utf8_lossy(&body)
                    );
                }
            }
        }
    }
    // The mutations reach all three outcomes.
    assert!(
        accepted > 100 && syntax > 1000 && invalid > 1000,
        "{accepted} {syntax} {invalid}"
    );
}

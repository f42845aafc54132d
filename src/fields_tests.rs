//! The field rules, one class of input at a time.

use super::*;

/// One example of every forbidden class (and every listed invisible).
pub(crate) const FORBIDDEN_SAMPLES: &[(char, CharClass)] = &[
    ('\u{0}', CharClass::Control),
    ('\u{7}', CharClass::Control),
    ('\r', CharClass::Control),
    ('\u{7f}', CharClass::Control),
    ('\u{85}', CharClass::Control),
    ('\u{9f}', CharClass::Control),
    ('\u{2028}', CharClass::LineSeparator),
    ('\u{2029}', CharClass::LineSeparator),
    ('\u{202a}', CharClass::Bidi),
    ('\u{202e}', CharClass::Bidi),
    ('\u{2066}', CharClass::Bidi),
    ('\u{2069}', CharClass::Bidi),
    ('\u{200e}', CharClass::Bidi),
    ('\u{200f}', CharClass::Bidi),
    ('\u{61c}', CharClass::Bidi),
    ('\u{200b}', CharClass::Invisible),
    ('\u{200c}', CharClass::Invisible),
    ('\u{200d}', CharClass::Invisible),
    ('\u{2060}', CharClass::Invisible),
    ('\u{feff}', CharClass::Invisible),
    ('\u{180e}', CharClass::Invisible),
    ('\u{ad}', CharClass::Invisible),
    ('\u{e0041}', CharClass::Invisible),
];

#[test]
fn every_forbidden_class_is_refused_in_a_line_wherever_it_stands() {
    for &(c, class) in FORBIDDEN_SAMPLES {
        for s in [
            format!("{c}Amelia"),
            format!("Ame{c}lia"),
            format!("Amelia{c}"),
        ] {
            assert_eq!(check_line(&s), Err(Forbidden(class)), "U+{:04X}", c as u32);
            assert!(check_free_text(&s).is_err(), "U+{:04X}", c as u32);
            assert_eq!(
                PersonName::parse(&s),
                Err(TextError::Forbidden(Forbidden(class)))
            );
        }
    }
    // Tab and line feed: only free text.
    assert_eq!(check_line("a\tb"), Err(Forbidden(CharClass::Control)));
    assert_eq!(check_line("a\nb"), Err(Forbidden(CharClass::Control)));
    assert_eq!(check_free_text("a\n\tb"), Ok(()));
    assert_eq!(
        check_free_text("a\r\nb"),
        Err(Forbidden(CharClass::Control))
    );
    assert_eq!(
        check_free_text("a\u{202e}b"),
        Err(Forbidden(CharClass::Bidi))
    );
}

#[test]
fn joiners_are_allowed_only_inside_scripts_that_need_them() {
    // Persian "mi-khaham" (ZWNJ between Arabic-script letters), Hindi
    // "kshetra" style conjunct (ZWJ after a virama): real spellings.
    assert_eq!(
        check_line("\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}"),
        Ok(())
    );
    assert_eq!(check_line("\u{915}\u{94d}\u{200d}\u{937}"), Ok(()));
    // Latin, at an edge, beside a space, or across scripts: refused.
    for s in [
        "Ame\u{200c}lia",
        "Ame\u{200d}lia",
        "\u{200c}\u{645}",
        "\u{645}\u{200c}",
        "\u{645}\u{200c} \u{645}",
        "a\u{200d}\u{915}",
    ] {
        assert_eq!(check_line(s), Err(Forbidden(CharClass::Invisible)), "{s:?}");
    }
}

#[test]
fn ordinary_names_in_any_script_pass() {
    for s in [
        "Amelia",
        "O'Brien",
        "Smith-Jones",
        "Zoë",
        "Łukasz",
        "李",
        "Ахмед",
        "محمد",
        "אברהם",
    ] {
        assert_eq!(PersonName::parse(s).map(|n| n.as_str()), Ok(s));
    }
    assert_eq!(PersonName::parse("  Ann ").unwrap().as_str(), "Ann");
    assert_eq!(PersonName::parse(""), Err(TextError::Empty));
    assert_eq!(PersonName::parse("   "), Err(TextError::Blank));
    assert!(PersonName::parse(&"é".repeat(100)).is_ok());
    assert_eq!(
        PersonName::parse(&"é".repeat(101)),
        Err(TextError::TooLong { max: 100 })
    );
}

#[test]
fn sanitize_removes_every_forbidden_character() {
    for &(c, _) in FORBIDDEN_SAMPLES {
        let s = format!("Ame{c}lia\nKhan\t!");
        let kept = sanitize(&s, true);
        assert!(check_free_text(&kept).is_ok(), "U+{:04X}", c as u32);
        assert!(!kept.contains('\t'));
        assert!(kept.contains('\n'));
        let line = sanitize(&s, false);
        assert!(check_line(&line).is_ok(), "U+{:04X}", c as u32);
    }
    assert_eq!(sanitize("Ame\u{202e}lia", false), "Amelia");
    assert_eq!(sanitize("Ame\u{7}lia", false), "Ame lia");
    assert!(matches!(sanitize("Amelia", false), Cow::Borrowed(_)));
    let persian = "\u{645}\u{6cc}\u{200c}\u{62e}";
    assert_eq!(sanitize(persian, false), persian);
}

#[test]
fn emails() {
    for ok in [
        "p.jones@police.example",
        "a+b@x-y.example",
        "o'neil@x.co.uk",
    ] {
        assert_eq!(Email::parse(ok).map(|e| e.as_str()), Ok(ok));
    }
    for bad in [
        "a..b@x.y",
        ".a@x.y",
        "a.@x.y",
        "a@b",
        "a@@b.c",
        "a@b..c",
        "a@-b.c",
        "a b@c.d",
        "\"a\"@b.c",
        "a@[127.0.0.1]",
        "ä@b.c",
        "not-an-email",
    ] {
        assert_eq!(Email::parse(bad), Err(EmailError::Invalid), "{bad}");
    }
    assert_eq!(Email::parse(""), Err(EmailError::Empty));
    assert_eq!(
        Email::parse("a\u{202e}@b.c"),
        Err(EmailError::Forbidden(Forbidden(CharClass::Bidi)))
    );
    let long = format!("{}@example.org", "a".repeat(250));
    assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
}

#[test]
fn mailboxes() {
    let m = Mailbox::parse("Keep in mind <kim@council.example>").unwrap();
    assert_eq!(m.name, Some("Keep in mind"));
    assert_eq!(m.email.as_str(), "kim@council.example");
    assert_eq!(Mailbox::parse("kim@council.example").unwrap().name, None);
    assert_eq!(Mailbox::parse("<kim@council.example>").unwrap().name, None);
    assert!(Mailbox::parse("\"Kent, Council\" <kim@council.example>").is_ok());
    assert_eq!(Mailbox::parse("kim"), Err(EmailError::Invalid));
    assert_eq!(Mailbox::parse("K<m <a@b.c>"), Err(EmailError::Invalid));
    assert_eq!(Mailbox::parse("Kim <a..b@x.y>"), Err(EmailError::Invalid));
    assert_eq!(Mailbox::parse("Kim a@b.c>"), Err(EmailError::Invalid));
    assert_eq!(
        Mailbox::parse("K\u{202e}im <a@b.c>"),
        Err(EmailError::Forbidden(Forbidden(CharClass::Bidi)))
    );
}

#[test]
fn codes_and_dates() {
    assert!(Urn::parse("118765").is_ok() && Urn::parse("1187650").is_ok());
    assert_eq!(Urn::parse(""), Err(UrnError::Empty));
    for bad in ["11876", "11876500", "ABC123", "118 65", "１１８７６５"] {
        assert_eq!(Urn::parse(bad), Err(UrnError::Shape), "{bad}");
    }
    assert!(Postcode::parse("ME14 1XX").is_ok());
    assert_eq!(Postcode::parse(""), Err(CodeError::Empty));
    assert_eq!(Postcode::parse("   "), Err(CodeError::Blank));
    assert_eq!(Postcode::parse("AB1-2CD"), Err(CodeError::BadChars));
    assert_eq!(
        Postcode::parse("AB12 3CDEFG"),
        Err(CodeError::TooLong { max: 10 })
    );
    assert!(Phone::parse("+44 (1622) 000-000").is_ok());
    assert_eq!(Phone::parse("()"), Err(CodeError::NoDigit));
    assert_eq!(Phone::parse("0 x"), Err(CodeError::BadChars));
    assert_eq!(
        Phone::parse(&"1".repeat(31)),
        Err(CodeError::TooLong { max: 30 })
    );
    assert_eq!(parse_date("2014-03-09"), Ok(Date::new(2014, 3, 9).unwrap()));
    assert_eq!(parse_date(""), Err(DateError::Empty));
    for bad in ["2014-3-09", "17/05/2013", "+014-03-09", "2014-03-09T00"] {
        assert_eq!(parse_date(bad), Err(DateError::Shape), "{bad}");
    }
    assert_eq!(parse_date("2013-02-30"), Err(DateError::Impossible));
}

#[test]
fn errors_never_carry_the_value() {
    let shown = [
        TextError::Forbidden(Forbidden(CharClass::Bidi)).to_string(),
        EmailError::Invalid.to_string(),
        DateError::Impossible.to_string(),
        CodeError::BadChars.to_string(),
    ];
    for s in shown {
        assert!(!s.contains('\u{202e}') && !s.contains("Amelia"), "{s}");
    }
}

/// The config's addresses go through the same rule (kept here, beside the
/// rule, so `config_tests.rs` stays with the config's own checks).
#[test]
fn config_addresses_use_the_email_rule_and_name_the_key() {
    use crate::config::{tests::MINIMAL, Config};
    let load = |text: &str| Config::from_toml(text, std::path::Path::new("/etc/kim/kim.toml"));
    assert!(load(MINIMAL).is_ok());
    for (key, from, to) in [
        (
            "mail.admin_email",
            "safeguarding@council.example",
            "a..b@x.y",
        ),
        (
            "mail.admin_email",
            "safeguarding@council.example",
            "s@council",
        ),
        (
            "mail.admin_email",
            "safeguarding@council.example",
            "s\u{202e}@council.example",
        ),
        (
            "mail.from",
            "Keep in mind <kim@council.example>",
            "Keep in mind <a..b@x.y>",
        ),
        (
            "mail.from",
            "Keep in mind <kim@council.example>",
            "Keep\u{202e} in mind <kim@council.example>",
        ),
        (
            "mail.from",
            "Keep in mind <kim@council.example>",
            "Keep in mind <kim@council.example",
        ),
    ] {
        let err = load(&MINIMAL.replace(from, to)).unwrap_err().to_string();
        assert!(err.contains(key), "{to:?}: {err}");
        assert!(!err.contains(to), "{to:?} echoed: {err}");
    }
    // A bare address is still a valid `from`.
    let bare = MINIMAL.replace("Keep in mind <kim@council.example>", "kim@council.example");
    assert!(load(&bare).is_ok());
}

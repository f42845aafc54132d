//! `POST /v1/notifications` bodies: parse and validate. Accepted: the
//! canonical form parses back to the same notification (and reads back as
//! the store reads it). Refused: every error is a rule, never a quote of
//! the body, under a log-safe pointer.
#![no_main]

use kim::ingest::notification::{parse_notification, Notification, ParseError};
use libfuzzer_sys::fuzz_target;

fn refusal(body: &[u8]) -> Option<String> {
    match parse_notification(body, kim_fuzz::now()) {
        Ok(_) => None,
        Err(ParseError::Syntax(s)) => Some(s),
        Err(e @ ParseError::Invalid(_)) => {
            let ParseError::Invalid(errors) = &e else {
                unreachable!()
            };
            let mut text = e.to_string();
            for f in errors {
                text.push('\n');
                text.push_str(&f.message);
            }
            Some(text)
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match parse_notification(data, kim_fuzz::now()) {
        Ok(n) => {
            let bytes = n.canonical_bytes();
            let again = parse_notification(&bytes, kim_fuzz::now())
                .expect("an accepted notification's canonical form is accepted");
            assert!(
                again == n,
                "parse -> serialise -> parse changed the notification"
            );
            assert_eq!(again.canonical_bytes(), bytes, "canonical form not stable");
            let stored: Notification =
                serde_json::from_slice(&bytes).expect("the canonical form deserialises");
            assert!(stored == n, "the stored form reads back different");
        }
        Err(e) => {
            if let ParseError::Invalid(errors) = &e {
                assert!(!errors.is_empty(), "a refusal without a reason");
                for f in errors {
                    kim_fuzz::assert_pointer_safe(&f.pointer);
                }
            }
            if let Ok(text) = std::str::from_utf8(data) {
                let refused = refusal(data).expect("refused");
                kim_fuzz::assert_quotes_nothing(text, &refused, |s| refusal(s.as_bytes()));
            }
        }
    }
});

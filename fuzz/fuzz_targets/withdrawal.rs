//! `POST /v1/notifications/{id}/withdraw` bodies. Accepted: a reason of
//! 1-500 characters without control characters but line feeds, which
//! round-trips. Refused: 400 or 422, the answer never quotes the body and
//! its pointer is log-safe.
#![no_main]

use kim::ingest::http::withdrawal_reason;
use libfuzzer_sys::fuzz_target;

fn refusal(body: &[u8]) -> Option<String> {
    withdrawal_reason(body).err().map(|r| {
        let mut text = r.detail.clone();
        for f in &r.errors {
            text.push('\n');
            text.push_str(&f.message);
        }
        text
    })
}

fuzz_target!(|data: &[u8]| match withdrawal_reason(data) {
    Ok(reason) => {
        let n = reason.chars().count();
        assert!((1..=500).contains(&n));
        assert!(!reason.chars().any(|c| c.is_control() && c != '\n'));
        let again = serde_json::to_vec(&serde_json::json!({ "reason": reason })).unwrap();
        assert_eq!(withdrawal_reason(&again).ok(), Some(reason));
    }
    Err(r) => {
        assert!(matches!(r.status.as_u16(), 400 | 422), "{}", r.status);
        for f in &r.errors {
            kim_fuzz::assert_pointer_safe(&f.pointer);
        }
        if let Ok(text) = std::str::from_utf8(data) {
            let refused = refusal(data).expect("refused");
            kim_fuzz::assert_quotes_nothing(text, &refused, |s| refusal(s.as_bytes()));
        }
    }
});

//! The report's reader of kim's stored event layout
//! (`kim::report::layout::parse`), held to serde_json's reading: on any
//! input it never panics, and whatever it reads, serde_json reads the same
//! (the input is the part of an event before its hashes; serde_json reads
//! it with the closing `}` put back). Peeking at the kind and receipt,
//! and what the report's workers read of a stored event (`prepare`: the
//! same reader, after the kind), never panic either.
#![no_main]

use kim::report::event::Ev;
use kim::report::layout::{accepted_attempt, parse, peek};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = peek(data);
    let _ = kim::report::scan::prepare(data);
    let _ = accepted_attempt(data);
    if let Some(fast) = parse(data) {
        // What a peek tells of an event read whole is what the reading says.
        if let Some(k) = p.kind {
            assert_eq!(serde_json::to_value(fast.kind).unwrap(), std::str::from_utf8(k).unwrap());
        }
        if let Some(r) = p.receipt {
            assert_eq!(fast.receipt.as_deref().map(str::as_bytes), Some(r));
        }
    }
    let Some(fast) = parse(data) else { return };
    let mut text = data.to_vec();
    text.push(b'}');
    let slow: Ev<'_> = serde_json::from_slice(&text)
        .unwrap_or_else(|e| panic!("read by the layout reader, refused by serde_json: {e}"));
    assert_eq!(fast, slow, "the layout reader and serde_json read it differently");
});

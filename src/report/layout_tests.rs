use serde_json::json;

use super::*;
use crate::audit::raw::without_hashes;
use crate::audit::{AuditEvent, Head, Refs};

/// `detail` as kim stores it in an event of `kind`, with `refs`.
fn stored(kind: EventKind, actor: &str, refs: Refs, detail: serde_json::Value) -> Vec<u8> {
    let ev = AuditEvent::next(
        &Head::default(),
        "2025-03-04T07:45:00.123456789Z".parse().unwrap(),
        kind,
        actor.into(),
        refs,
        detail.as_object().cloned().unwrap_or_default(),
    );
    serde_json::to_vec(&ev).unwrap()
}

fn refs(receipt: Option<&str>, child: Option<u32>, urn: Option<&str>, alert: Option<&str>) -> Refs {
    Refs {
        receipt: receipt.map(Into::into),
        child,
        school_urn: urn.map(Into::into),
        alert_id: alert.map(Into::into),
    }
}

/// serde_json's reading of the part before the hashes (what `parse` reads).
fn serde_reading(head: &[u8]) -> Result<Ev<'_>, serde_json::Error> {
    let mut text = head.to_vec();
    text.push(b'}');
    let ev: Ev<'_> = serde_json::from_slice(&text)?;
    // Owned strings, so the reading outlives `text`.
    Ok(Ev {
        time: ev.time,
        kind: ev.kind,
        actor: Cow::Owned(ev.actor.into_owned()),
        receipt: ev.receipt.map(|r| Cow::Owned(r.into_owned())),
        child: ev.child,
        school_urn: ev.school_urn.map(|r| Cow::Owned(r.into_owned())),
        alert_id: ev.alert_id.map(|r| Cow::Owned(r.into_owned())),
        detail: Detail {
            children: owned(ev.detail.children),
            reason: owned(ev.detail.reason),
            decision: owned(ev.detail.decision),
            kind: owned(ev.detail.kind),
            deadline_met: owned(ev.detail.deadline_met),
            result: owned(ev.detail.result),
        },
    })
}

fn owned(l: Loose<'_>) -> Loose<'static> {
    match l {
        Loose::Absent => Loose::Absent,
        Loose::Str(s) => Loose::Str(Cow::Owned(s.into_owned())),
        Loose::U64(n) => Loose::U64(n),
        Loose::Bool(b) => Loose::Bool(b),
        Loose::Other => Loose::Other,
    }
}

/// Events of every shape kim writes.
fn kims_events() -> Vec<Vec<u8>> {
    let r = |rc| refs(Some(rc), None, None, None);
    vec![
        stored(
            EventKind::Received,
            "force:kent",
            r("KENT-1"),
            json!({"children": 3}),
        ),
        stored(
            EventKind::Matched,
            "system",
            refs(Some("KENT-1"), Some(0), Some("100001"), None),
            json!({"basis": "roll", "score": 97}),
        ),
        stored(
            EventKind::NeedsReview,
            "system",
            refs(Some("KENT-1"), Some(1), None, None),
            json!({"reason": "ambiguous"}),
        ),
        stored(
            EventKind::Reviewed,
            "admin:alice",
            refs(Some("KENT-1"), Some(1), Some("100002"), None),
            json!({"decision": "assigned"}),
        ),
        stored(
            EventKind::AlertQueued,
            "system",
            refs(Some("KENT-1"), Some(0), Some("100001"), Some("KENT-1.0")),
            json!({}),
        ),
        stored(
            EventKind::DeliveryAttempt,
            "system",
            refs(Some("KENT-1"), Some(0), None, Some("KENT-1.0")),
            json!({"result": "refused", "code": 554, "attempt": 2}),
        ),
        stored(
            EventKind::Delivered,
            "system",
            refs(Some("KENT-1"), Some(0), None, Some("KENT-1.0")),
            json!({"deadline_met": true, "kind": "dsl"}),
        ),
        stored(
            EventKind::Delivered,
            "system",
            refs(Some("KENT-1"), Some(0), None, Some("KENT-1.0.deputy")),
            json!({"deadline_met": false, "kind": "deputy"}),
        ),
        stored(EventKind::Withdrawn, "force:kent", r("KENT-1"), json!({})),
        stored(
            EventKind::Started,
            "system",
            Refs::default(),
            json!({"version": "0.1.0"}),
        ),
        stored(
            EventKind::Resent,
            "force:kent",
            r("KENT-1"),
            json!({"reference": "X/1"}),
        ),
        stored(
            EventKind::DeadlineMissed,
            "system",
            refs(Some("KENT-2"), Some(4_000_000_000), None, None),
            json!({"missing": null}),
        ),
    ]
}

#[test]
fn kims_own_events_read_as_serde_json_reads_them() {
    for bytes in kims_events() {
        let head = without_hashes(&bytes).expect("kim's layout");
        let fast =
            parse(head).unwrap_or_else(|| panic!("not read: {}", String::from_utf8_lossy(&bytes)));
        assert_eq!(fast, serde_reading(head).unwrap());
        let whole: Ev<'_> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(fast, whole, "the same as reading the whole event");
        assert_eq!(
            peek(&bytes)
                .kind
                .map(|k| kind_of(std::str::from_utf8(k).unwrap()).unwrap()),
            Some(fast.kind)
        );
        let receipt = peek(&bytes).receipt;
        assert_eq!(
            receipt.map(|r| std::str::from_utf8(r).unwrap()),
            fast.receipt.as_deref()
        );
    }
}

#[test]
fn anything_but_kims_plain_layout_is_left_to_serde_json() {
    let received = |d: serde_json::Value| {
        stored(
            EventKind::Received,
            "force:kent",
            refs(Some("K-1"), None, None, None),
            d,
        )
    };
    let cases: Vec<Vec<u8>> = vec![
        // An escape in a string, a nested value, a fraction, a sign, an
        // integer past u64, a reason given twice.
        stored(EventKind::Received, "force:k\"ent", refs(Some("K-1"), None, None, None), json!({})),
        received(json!({"reason": "a\nb"})),
        received(json!({"children": {"n": 2}})),
        received(json!({"children": [2]})),
        received(json!({"children": 2.5})),
        received(json!({"children": -2})),
        received(json!({"children": 1e3})),
        br#"{"seq":1,"time":"2025-03-04T07:45:00Z","kind":"received","actor":"force:kent","detail":{"children":18446744073709551616}}"#.to_vec(),
        br#"{"seq":1,"time":"2025-03-04T07:45:00Z","kind":"received","actor":"force:kent","detail":{"reason":"a","reason":"b"}}"#.to_vec(),
        br#"{"seq":1,"time":"2025-03-04T07:45:00Z","kind":"received","actor":"force:kent","detail":{"children":007}}"#.to_vec(),
        // Whitespace, another key order, a key kim does not write, null.
        br#"{"seq":1, "time":"2025-03-04T07:45:00Z","kind":"received","actor":"force:kent"}"#.to_vec(),
        br#"{"seq":1,"kind":"received","time":"2025-03-04T07:45:00Z","actor":"force:kent"}"#.to_vec(),
        br#"{"seq":1,"time":"2025-03-04T07:45:00Z","kind":"received","actor":"force:kent","new":1}"#.to_vec(),
        br#"{"seq":1,"time":"2025-03-04T07:45:00Z","kind":"received","actor":"force:kent","receipt":null}"#.to_vec(),
        br#"{"seq":1,"time":"2025-03-04T07:45:00Z","kind":"received","actor":"force:kent","child":4294967296}"#.to_vec(),
        // A kind this kim does not know, a time that is not one.
        br#"{"seq":1,"time":"2025-03-04T07:45:00Z","kind":"teleported","actor":"system"}"#.to_vec(),
        br#"{"seq":1,"time":"yesterday","kind":"received","actor":"system"}"#.to_vec(),
    ];
    for bytes in cases {
        let head = without_hashes(&bytes).unwrap_or_else(|| bytes.strip_suffix(b"}").unwrap());
        assert_eq!(
            parse(head),
            None,
            "read without serde_json: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

/// A small deterministic generator (xorshift), so a failure repeats.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The differential check: kim's events changed at random (bytes flipped,
/// put in, cut out, from the JSON punctuation and more); whenever `parse`
/// reads one, serde_json reads the same.
#[test]
fn whatever_the_layout_reader_reads_serde_json_reads_the_same() {
    const BYTES: &[u8] = b"\"\\{}[],:0123456789-+.eEtrufalsn \t\x01\xc3\xa9kindchildrenreason";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let events = kims_events();
    let (mut read, mut total) = (0, 0);
    for _ in 0..200_000 {
        let base = &events[rng.below(events.len())];
        let mut head = without_hashes(base).unwrap().to_vec();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(head.len());
            let b = BYTES[rng.below(BYTES.len())];
            match rng.below(3) {
                0 => head[at] = b,
                1 => head.insert(at, b),
                _ => {
                    head.remove(at);
                }
            }
        }
        total += 1;
        if let Some(fast) = parse(&head) {
            read += 1;
            let slow = serde_reading(&head).unwrap_or_else(|e| {
                panic!(
                    "read, but serde_json refuses it ({e}): {}",
                    String::from_utf8_lossy(&head)
                )
            });
            assert_eq!(fast, slow, "{}", String::from_utf8_lossy(&head));
        }
    }
    assert!(
        read > total / 20,
        "only {read} of {total} changed events were read"
    );
}

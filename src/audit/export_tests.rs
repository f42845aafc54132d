//! Tampering with an export, byte by byte, is named; so is a checkpoint
//! from another key and a chain cut short behind its checkpoints.

use super::*;
use crate::audit::checkpoint::{write_new_signing_key, Signer, Trusted};
use crate::audit::{EventKind, Refs};

fn chain(n: u64) -> Vec<AuditEvent> {
    let mut head = Head::default();
    (0..n)
        .map(|i| {
            let mut detail = serde_json::Map::new();
            detail.insert("code".into(), 250.into());
            let ev = AuditEvent::next(
                &head,
                jiff::Timestamp::from_second(1_800_000_000 + i as i64).unwrap(),
                EventKind::DeliveryAttempt,
                "system".into(),
                Refs {
                    receipt: Some(format!("R{i:04}")),
                    child: Some(0),
                    ..Refs::default()
                },
                detail,
            );
            head = ev.head();
            ev
        })
        .collect()
}

fn signer(dir: &std::path::Path, name: &str) -> Signer {
    write_new_signing_key(&dir.join(name)).unwrap();
    Signer::load(&dir.join(name)).unwrap()
}

fn export(events: &[AuditEvent], cps: &[Checkpoint]) -> Vec<u8> {
    let mut out = Vec::new();
    write_export(
        &mut out,
        events
            .iter()
            .cloned()
            .map(Ok::<_, std::convert::Infallible>),
        cps,
    )
    .unwrap();
    out
}

fn checkpoints(s: &Signer, events: &[AuditEvent], every: usize) -> Vec<Checkpoint> {
    events
        .iter()
        .filter(|e| e.seq as usize % every == 0)
        .map(|e| s.sign(&e.head(), e.time))
        .collect()
}

#[test]
fn an_intact_export_verifies_and_reports_the_uncovered_tail() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), "a.key");
    let events = chain(50);
    let cps = checkpoints(&s, &events, 10);
    let bytes = export(&events, &cps);
    let r = verify_export(&bytes[..], &Trusted::one(s.public_key())).unwrap();
    assert_eq!(r.head.seq, 50);
    assert_eq!(r.checkpoints, 5);
    assert_eq!(r.after_last_checkpoint, 0);
    let r = verify_export(
        &export(&events[..45], &cps[..4])[..],
        &Trusted::one(s.public_key()),
    )
    .unwrap();
    assert_eq!(r.after_last_checkpoint, 5);
}

#[test]
fn flipping_any_byte_is_caught_and_names_the_line_and_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), "a.key");
    let events = chain(30);
    let cps = checkpoints(&s, &events, 10);
    let bytes = export(&events, &cps);
    // Line number → (seq it is about, is a checkpoint).
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let mut starts = Vec::new();
    let mut at = 0;
    for l in &lines {
        starts.push(at);
        at += l.len() + 1;
    }
    let mut tried = 0;
    for pos in (0..bytes.len()).step_by(7) {
        let mut copy = bytes.clone();
        copy[pos] ^= 0x01;
        let err = verify_export(&copy[..], &Trusted::one(s.public_key()))
            .expect_err(&format!("a flipped byte at {pos} went unnoticed"));
        let line = starts.iter().rposition(|s| *s <= pos).unwrap() + 1;
        assert_eq!(err.line, line, "byte {pos}: {err}");
        let text = std::str::from_utf8(lines[line - 1]).unwrap();
        if text.starts_with("{\"event\"") {
            let seq = events
                .iter()
                .position(|e| serde_json::to_string(&Line::Event(e.clone())).unwrap() == text)
                .unwrap() as u64
                + 1;
            assert_eq!(err.seq, seq, "byte {pos}: {err}");
        } else {
            assert!(
                err.why.contains("checkpoint") || err.why.contains("not a valid"),
                "{err}"
            );
        }
        tried += 1;
    }
    assert!(tried > 100);
}

#[test]
fn deleted_swapped_and_foreign_signed_lines_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), "a.key");
    let other = signer(dir.path(), "b.key");
    let events = chain(30);
    let cps = checkpoints(&s, &events, 10);

    let mut deleted = events.clone();
    deleted.remove(11);
    let err =
        verify_export(&export(&deleted, &cps)[..], &Trusted::one(s.public_key())).unwrap_err();
    assert_eq!(err.seq, 12, "{err}");

    let mut swapped = events.clone();
    swapped.swap(4, 5);
    let err =
        verify_export(&export(&swapped, &cps)[..], &Trusted::one(s.public_key())).unwrap_err();
    assert_eq!(err.seq, 5, "{err}");

    let mut foreign = cps.clone();
    foreign[1] = other.sign(&events[19].head(), events[19].time);
    let err = verify_export(
        &export(&events, &foreign)[..],
        &Trusted::one(s.public_key()),
    )
    .unwrap_err();
    assert_eq!(err.seq, 20);
    assert!(err.why.contains("checkpoint"), "{err}");

    // The whole export re-signed with another key does not pass either.
    let err = verify_export(
        &export(&events, &checkpoints(&other, &events, 10))[..],
        &Trusted::one(s.public_key()),
    )
    .unwrap_err();
    assert!(err.why.contains("key"), "{err}");
}

#[test]
fn a_chain_cut_short_behind_its_checkpoints_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), "a.key");
    let events = chain(30);
    let cps = checkpoints(&s, &events, 10);
    // The tail from event 21 on is gone; the chain itself still verifies.
    let kept = &events[..20];
    let head = kept.last().unwrap().head();
    let hash_at = |seq: u64| kept.get(seq as usize - 1).map(|e| e.hash.clone());
    let err = verify_checkpoints(
        &cps,
        &Trusted::one(s.public_key()),
        &head,
        hash_at,
        "checkpoint file",
    )
    .unwrap_err();
    assert_eq!(err.seq, 21);
    assert!(err.why.contains("vouches for sequence 30"), "{err}");
    // A rewritten event under a checkpoint.
    let mut rewritten = events.clone();
    rewritten[9].hash = "00".repeat(32);
    let head = rewritten.last().unwrap().head();
    let err = verify_checkpoints(
        &cps,
        &Trusted::one(s.public_key()),
        &head,
        |seq| rewritten.get(seq as usize - 1).map(|e| e.hash.clone()),
        "store",
    )
    .unwrap_err();
    assert_eq!(err.seq, 10);
    // The checkpoint file round-trips.
    let mut file = Vec::new();
    for c in &cps {
        file.extend_from_slice(serde_json::to_string(c).unwrap().as_bytes());
        file.push(b'\n');
    }
    assert_eq!(read_checkpoint_file(&file[..]).unwrap(), cps);
    file[5] ^= 1;
    assert!(read_checkpoint_file(&file[..])
        .unwrap_err()
        .contains("line 1"));
}

/// Found writing the `audit_line` fuzz target (which signs the checkpoints
/// it reads): a validly signed checkpoint whose hash is not hex, with a
/// multi-byte character across its 16th byte, panicked where the refusal
/// quotes the first 16 characters; it is refused like any other.
#[test]
fn a_signed_checkpoint_with_a_non_hex_hash_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), "audit.key");
    let events = chain(2);
    let odd = Head {
        seq: 2,
        hash: format!("a{}", "é".repeat(20)),
    };
    let cp = s.sign(&odd, events[1].time);
    let err = verify_export(
        &export(&events, &[cp])[..],
        &crate::audit::checkpoint::Trusted::one(s.public_key()),
    )
    .unwrap_err();
    assert_eq!((err.seq, err.line), (2, 3), "{err}");
    assert!(err.why.contains("does not match the chain"), "{err}");
}

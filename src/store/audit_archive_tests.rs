//! Tests of `store/audit_archive.rs`, kept in their own file.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::audit::{verify_chain, AuditEvent, EventKind, Head, Refs};
use crate::store::crypto::MasterKey;

fn key() -> MasterKey {
    MasterKey::from_bytes([7; 32])
}

pub(in crate::store) fn store_with(events: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), &key()).unwrap();
    let have = s.audit_head().unwrap().seq;
    for i in have..events {
        let mut d = serde_json::Map::new();
        d.insert("n".into(), i.into());
        let _ = s
            .audit_append(
                EventKind::ConfigLoaded,
                "system",
                Refs {
                    receipt: Some(format!("R{i}")),
                    ..Refs::default()
                },
                d,
            )
            .unwrap();
    }
    assert_eq!(s.audit_head().unwrap().seq, events);
    (dir, s)
}

fn loose_bytes(s: &Store) -> Vec<Vec<u8>> {
    s.t.audit
        .iter()
        .values()
        .map(|v| v.unwrap().to_vec())
        .collect()
}

fn read_all(s: &Store) -> Vec<(u64, Vec<u8>)> {
    s.audit_cursor(1)
        .map(|r| r.map(|(seq, e)| (seq, e.to_vec())).unwrap())
        .collect()
}

fn same_as(s: &Store, before: &[Vec<u8>]) {
    let got = read_all(s);
    assert_eq!(got.len(), before.len(), "every event once");
    for (i, (seq, bytes)) in got.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1);
        assert_eq!(bytes, &before[i], "event {seq} as stored");
    }
}

#[test]
fn archived_events_keep_their_bytes_and_every_reader_finds_them() {
    let (d, s) = store_with(600);
    let before = loose_bytes(&s);
    let events_before: Vec<AuditEvent> = s.audit_events().map(Result::unwrap).collect();

    assert_eq!(s.audit_compact(0, usize::MAX).unwrap(), 2, "512 of 600");
    assert_eq!(s.t.audit.len(), 600, "sled keeps its copy");
    assert_eq!(s.t.audit_archive.len(), 2);
    // Nothing more until a whole chunk is loose again.
    assert_eq!(s.audit_compact(0, usize::MAX).unwrap(), 0);
    let file = file_path(d.path(), 1);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let chunks = s.audit_chunks().unwrap();
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        chunks[1].offset + u64::from(chunks[1].len)
    );

    same_as(&s, &before);
    let events: Vec<AuditEvent> = s.audit_events().map(Result::unwrap).collect();
    assert_eq!(events, events_before);
    verify_chain(&Head::default(), events.iter()).unwrap();
    for seq in [1, 2, 255, 256, 257, 512, 513, 600] {
        let raw = s.audit_raw_at(seq).unwrap().unwrap();
        assert_eq!(raw.to_vec(), before[seq as usize - 1], "event {seq}");
        assert_eq!(
            s.audit_hash_at(seq).unwrap().as_deref(),
            Some(events[seq as usize - 1].hash.as_str())
        );
    }
    assert!(s.audit_raw_at(0).unwrap().is_none());
    assert!(s.audit_raw_at(601).unwrap().is_none());
    // From the middle of a chunk.
    let from: Vec<u64> = s.audit_cursor(300).map(|r| r.unwrap().0).collect();
    assert_eq!(from, (300..=600).collect::<Vec<_>>());
    // By time: every event was appended now, so from an hour ago is all.
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    assert_eq!(s.audit_events_from(since).unwrap().count(), 600);
    assert_eq!(s.audit_raw_from(since).unwrap().count(), 600);

    // And after a reopen, appending on.
    drop(s);
    let s = Store::open(d.path(), &key()).unwrap();
    same_as(&s, &before);
}

#[test]
fn the_newest_events_stay_loose_a_pass_is_bounded_and_files_roll_over() {
    let (_d, s) = store_with(1300);
    let before = loose_bytes(&s);
    assert_eq!(s.audit_compact(300, 1).unwrap(), 1, "at most one chunk");
    assert_eq!(s.audit_compact(300, usize::MAX).unwrap(), 2, "to event 768");
    // Event 769 on is not archived: 769 + 255 + 300 > 1300.
    let last = s.audit_chunks().unwrap().last().copied().unwrap();
    assert_eq!(last.first + u64::from(last.count), 769);
    same_as(&s, &before);

    // Files of 512 events: 1..512 fill the first, the next pass begins
    // another and stops at its end.
    let (d, s) = store_with(1300);
    let before = loose_bytes(&s);
    assert_eq!(s.archive_pass(0, usize::MAX, 512).unwrap(), 2);
    assert_eq!(s.archive_pass(0, usize::MAX, 512).unwrap(), 2);
    assert_eq!(s.archive_pass(0, usize::MAX, 512).unwrap(), 1);
    let files: Vec<u64> = s.audit_chunks().unwrap().iter().map(|c| c.file).collect();
    assert_eq!(files, [1, 1, 513, 513, 1025]);
    assert!(file_path(d.path(), 1025).exists());
    same_as(&s, &before);
}

#[test]
fn a_reader_finds_every_event_once_while_they_are_archived() {
    let (_d, s) = store_with(900);
    let before = loose_bytes(&s);
    // Reading from sled, interrupted by a pass: the rest is archived now.
    let mut c = s.audit_cursor(1);
    let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
    for _ in 0..10 {
        let (seq, e) = c.next().unwrap().unwrap();
        got.push((seq, e.to_vec()));
    }
    s.audit_compact(0, 1).unwrap();
    for _ in 0..300 {
        let (seq, e) = c.next().unwrap().unwrap();
        got.push((seq, e.to_vec()));
    }
    // Reading the archive, then more of it archived meanwhile.
    s.audit_compact(0, usize::MAX).unwrap();
    got.extend(c.map(|r| r.map(|(seq, e)| (seq, e.to_vec())).unwrap()));
    assert_eq!(got.len(), 900, "every event once");
    for (i, (seq, bytes)) in got.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1);
        assert_eq!(bytes, &before[i]);
    }
}

#[test]
fn a_gap_among_the_loose_events_is_not_archived_and_verification_names_it() {
    let (_d, s) = store_with(600);
    s.t.audit.remove(300u64.to_be_bytes()).unwrap();
    assert_eq!(s.audit_compact(0, usize::MAX).unwrap(), 1, "1..256 only");
    assert_eq!(s.audit_compact(0, usize::MAX).unwrap(), 0);
    let seqs: Vec<u64> = s.audit_cursor(1).map(|r| r.unwrap().0).collect();
    assert_eq!(seqs.len(), 599);
    assert!(!seqs.contains(&300) && seqs.contains(&301));
    let events: Vec<AuditEvent> = s.audit_events().map(Result::unwrap).collect();
    let err = verify_chain(&Head::default(), events.iter()).unwrap_err();
    assert_eq!(err.seq, 300, "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn an_event_altered_in_a_file_is_named_and_a_damaged_file_is_an_error() {
    let (d, s) = store_with(300);
    s.audit_compact(0, usize::MAX).unwrap();
    // Archived events are read from the file, not from sled's copy.
    s.t.audit.remove(3u64.to_be_bytes()).unwrap();
    assert_eq!(s.audit_events().count(), 300);
    let file = file_path(d.path(), 1);
    let bytes = std::fs::read(&file).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let at = text.find("\"receipt\":\"R4\"").unwrap();
    let mut altered = bytes.clone();
    altered[at + 12] = b'9';
    std::fs::write(&file, &altered).unwrap();
    let events: Vec<AuditEvent> = s.audit_events().map(Result::unwrap).collect();
    let err = verify_chain(&Head::default(), events.iter()).unwrap_err();
    assert_eq!(err.seq, 5, "{err}");
    assert!(err.to_string().contains("audit event 5:"), "{err}");

    // A file cut short: an error that names the chunk.
    std::fs::write(&file, &bytes[..bytes.len() - 3]).unwrap();
    let err = s.audit_events().find_map(Result::err).expect("an error");
    assert!(
        err.to_string().contains("audit archive chunk from event 1"),
        "{err}"
    );
    // A file gone.
    std::fs::remove_file(&file).unwrap();
    assert!(s.audit_events().any(|r| r.is_err()));
}

#[test]
fn bytes_a_pass_left_past_the_indexed_end_are_never_read_and_are_cut_off() {
    let (d, s) = store_with(800);
    let before = loose_bytes(&s);
    assert_eq!(s.audit_compact(0, 1).unwrap(), 1);
    // A pass that wrote and crashed before its transaction.
    let file = file_path(d.path(), 1);
    let indexed = std::fs::metadata(&file).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut f, b"\x10\0\0\0half a chunk").unwrap();
    drop(f);
    same_as(&s, &before);
    assert_eq!(s.audit_compact(0, usize::MAX).unwrap(), 2);
    let chunks = s.audit_chunks().unwrap();
    assert_eq!(chunks[1].offset, indexed, "written over the leftover");
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        chunks[2].offset + u64::from(chunks[2].len)
    );
    same_as(&s, &before);
}

#[test]
fn a_key_rotation_copies_the_archive() {
    let (d, s) = store_with(700);
    let before = loose_bytes(&s);
    s.audit_compact(0, usize::MAX).unwrap();
    let new = Store::open(&d.path().join("new"), &MasterKey::from_bytes([2; 32])).unwrap();
    let r = s.rotate_into(&new, "admin:root").unwrap();
    assert_eq!(r.audit_events, 700);
    assert_eq!(new.audit_chunks().unwrap(), s.audit_chunks().unwrap());
    let got: Vec<Vec<u8>> = new
        .audit_cursor(1)
        .take(700)
        .map(|r| r.unwrap().1.to_vec())
        .collect();
    assert_eq!(got, before);
    assert!(file_path(&d.path().join("new"), 1).exists());
}

#[test]
fn decode_refuses_what_is_not_framed_events() {
    assert!(decode(b"").is_none());
    assert!(decode(&[5, 0, 0]).is_none());
    assert!(decode(&[5, 0, 0, 0, b'a']).is_none());
    let p = encode([&b"ab"[..], &b"c"[..]]);
    let r = decode(&p).unwrap();
    assert_eq!(
        r.iter().map(|r| &p[r.clone()]).collect::<Vec<_>>(),
        [&b"ab"[..], &b"c"[..]]
    );
}

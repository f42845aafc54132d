use super::*;

fn key() -> SealKey {
    SealKey::from_bytes(&[7; 32])
}

fn entry(i: u8) -> Entry {
    Entry {
        ids: Identifiers {
            receipt: format!("R{i}"),
            force: "kent".into(),
            police_reference: format!("KNT/{i}"),
        },
        record: format!("{{\"n\":{i}}}").into_bytes(),
        sealed: vec![i; 100 + usize::from(i)],
    }
}

fn entries(range: std::ops::Range<u8>) -> Vec<Entry> {
    range.map(entry).collect()
}

fn setup(n: u8) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::create(dir.path(), &key()).unwrap();
    j.append(&key(), &entries(0..n / 2)).unwrap();
    j.append(&key(), &entries(n / 2..n)).unwrap();
    let jd = journal_dir(dir.path());
    let full = std::fs::read(segment_path(&jd, 1)).unwrap();
    (dir, jd, full)
}

#[test]
fn frames_round_trip_in_order_across_appends_and_are_sealed() {
    let (dir, jd, raw) = setup(4);
    assert_eq!(segments(&jd).unwrap(), [1]);
    let got = scan(&jd, &key()).unwrap();
    assert!(got.damage.is_empty() && got.torn.is_empty(), "{got:?}");
    assert_eq!(got.entries, entries(0..4));
    // Nothing readable in the clear: neither the record nor the identifiers.
    assert!(!raw.windows(5).any(|w| w == b"{\"n\":"));
    assert!(!raw.windows(4).any(|w| w == b"KNT/"));
    // A new journal starts after the existing segment.
    let j2 = Journal::create(dir.path(), &key()).unwrap();
    assert_eq!(j2.segment(), 2);
    remove_before(&jd, 2).unwrap();
    assert_eq!(segments(&jd).unwrap(), [2]);
}

#[test]
fn a_torn_tail_of_the_last_segment_is_discarded_as_unacknowledged() {
    let (_dir, jd, full) = setup(4);
    let path = segment_path(&jd, 1);
    // The last frame half written.
    std::fs::write(&path, &full[..full.len() - 30]).unwrap();
    let got = scan(&jd, &key()).unwrap();
    assert!(got.damage.is_empty(), "{:?}", got.damage);
    assert_eq!(got.entries, entries(0..3));
    assert_eq!(got.torn.len(), 1);
    // Garbage after the last frame (a write cut in its prefix).
    let mut junk = full.clone();
    junk.extend_from_slice(b"KIMj\0\0");
    std::fs::write(&path, &junk).unwrap();
    let got = scan(&jd, &key()).unwrap();
    assert!(got.damage.is_empty());
    assert_eq!(got.entries, entries(0..4));
}

#[test]
fn one_flipped_bit_in_a_middle_frame_is_damage_and_every_later_frame_still_reads() {
    let (_dir, jd, full) = setup(10);
    let path = segment_path(&jd, 1);
    let offs = frame_starts(&full);
    assert_eq!(offs.len(), 11, "start frame + 10");
    // In frame 5's body (entry 4): its head still names it.
    let mut bad = full.clone();
    let last_byte_of_frame5 = offs[6] - 1;
    bad[last_byte_of_frame5] ^= 0x10;
    std::fs::write(&path, &bad).unwrap();
    let got = scan(&jd, &key()).unwrap();
    assert_eq!(got.damage.len(), 1, "{:?}", got.damage);
    let d = &got.damage[0];
    assert_eq!((d.segment, d.offset, d.lost), (1, offs[5] as u64, 1));
    assert_eq!(d.named, vec![entry(4).ids]);
    let mut want = entries(0..10);
    want.remove(4);
    assert_eq!(got.entries, want);
    // In frame 5's head: it cannot be named, only counted.
    let mut bad = full.clone();
    bad[offs[5] + PREFIX + 3] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    let got = scan(&jd, &key()).unwrap();
    assert_eq!(got.damage.len(), 1, "{:?}", got.damage);
    assert_eq!((got.damage[0].lost, got.damage[0].named.len()), (1, 0));
    assert_eq!(got.entries, want);
    // In frame 5's length: the reader finds frame 6 by its magic.
    let mut bad = full.clone();
    bad[offs[5] + 12] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    let got = scan(&jd, &key()).unwrap();
    assert_eq!(got.damage.len(), 1, "{:?}", got.damage);
    assert_eq!(got.damage[0].lost, 1);
    assert_eq!(got.entries, want);
    // The last frame's body altered is torn by the rule (nothing follows).
    let mut bad = full.clone();
    let n = bad.len();
    bad[n - 2] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    let got = scan(&jd, &key()).unwrap();
    assert!(got.damage.is_empty());
    assert_eq!(got.entries, entries(0..9));
}

#[test]
fn frames_do_not_open_with_another_key_or_in_another_segment() {
    let (_dir, jd, full) = setup(2);
    let other = SealKey::from_bytes(&[8; 32]);
    let got = scan(&jd, &other).unwrap();
    assert!(got.entries.is_empty());
    // A frame moved to another segment does not open.
    std::fs::remove_file(segment_path(&jd, 1)).unwrap();
    std::fs::write(segment_path(&jd, 5), &full).unwrap();
    assert!(scan(&jd, &key()).unwrap().entries.is_empty());
}

#[test]
fn segments_rotate_past_their_size_and_the_next_vouches_for_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::create(dir.path(), &key()).unwrap();
    assert_eq!(j.rotate_if_full(&key()).unwrap(), None);
    j.append(&key(), &entries(0..3)).unwrap();
    let real_len = j.len;
    j.len = SEGMENT_BYTES;
    assert_eq!(j.rotate_if_full(&key()).unwrap(), Some(1));
    j.append(&key(), &entries(3..4)).unwrap();
    let jd = journal_dir(dir.path());
    assert_eq!(segments(&jd).unwrap(), [1, 2]);
    // The test pretended segment 1 was full, so segment 2's start frame
    // vouches for SEGMENT_BYTES of it: the bytes past its real end are
    // missing, which is damage.
    let s1 = std::fs::read(segment_path(&jd, 1)).unwrap();
    assert_eq!(s1.len() as u64, real_len);
    let got = scan(&jd, &key()).unwrap();
    assert_eq!(got.damage.len(), 1, "{:?}", got.damage);
    assert_eq!(got.damage[0].segment, 1);
    assert_eq!(got.entries, entries(0..4));
    assert_eq!(segment_of("0000000000000002.journal"), Some(2));
    assert_eq!(segment_of("2.journal"), None);
}

#[test]
fn an_earlier_segment_cut_short_is_damage_even_at_a_frame_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::create(dir.path(), &key()).unwrap();
    j.append(&key(), &entries(0..3)).unwrap();
    j.start_next(&key()).unwrap();
    j.append(&key(), &entries(3..5)).unwrap();
    let jd = journal_dir(dir.path());
    let whole = scan(&jd, &key()).unwrap();
    assert!(
        whole.damage.is_empty() && whole.torn.is_empty(),
        "{whole:?}"
    );
    assert_eq!(whole.entries, entries(0..5));
    // Drop segment 1's last frame exactly.
    let p1 = segment_path(&jd, 1);
    let s1 = std::fs::read(&p1).unwrap();
    let offs = frame_starts(&s1);
    std::fs::write(&p1, &s1[..offs[3]]).unwrap();
    let got = scan(&jd, &key()).unwrap();
    assert_eq!(got.damage.len(), 1, "{:?}", got.damage);
    assert_eq!((got.damage[0].segment, got.damage[0].lost), (1, 1));
    assert_eq!(got.entries.len(), 4);
    // A whole earlier segment gone while an older one remains.
    j.start_next(&key()).unwrap();
    std::fs::write(&p1, &s1).unwrap();
    std::fs::remove_file(segment_path(&jd, 2)).unwrap();
    let got = scan(&jd, &key()).unwrap();
    assert!(
        got.damage.iter().any(|d| d.segment == 2 && d.lost == 2),
        "{:?}",
        got.damage
    );
}

#[test]
fn a_failed_append_that_cannot_be_cut_back_moves_on_and_its_tail_is_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::create(dir.path(), &key()).unwrap();
    j.append(&key(), &entries(0..2)).unwrap();
    // As if a write half-landed and the cut failed.
    j.file.write_all(b"KIMj\0\0\0\x03garbage").unwrap();
    j.broken = true;
    j.append(&key(), &entries(2..3)).unwrap();
    assert_eq!(j.segment(), 2);
    let got = scan(&journal_dir(dir.path()), &key()).unwrap();
    assert!(got.damage.is_empty(), "{:?}", got.damage);
    assert_eq!(got.torn.len(), 1);
    assert_eq!(got.entries, entries(0..3));
}

#[test]
fn a_segment_moved_aside_is_kept_not_deleted() {
    let (_dir, jd, full) = setup(2);
    let to = set_aside(&jd, 1).unwrap();
    assert_eq!(std::fs::read(&to).unwrap(), full);
    assert!(segments(&jd).unwrap().is_empty());
}

/// Found by `fuzz/` (journal target): a segment holding an acknowledged
/// entry, cut to nothing, read as an empty journal — the entry gone without
/// a word. A segment is named only once its start frame is on disk, so a
/// segment without one is damage.
#[test]
fn a_segment_cut_to_nothing_or_without_its_start_frame_is_damage() {
    let (_dir, jd, full) = setup(2);
    let path = segment_path(&jd, 1);
    std::fs::write(&path, b"").unwrap();
    let got = scan(&jd, &key()).unwrap();
    assert_eq!(got.damage.len(), 1, "{got:?}");
    assert_eq!(got.damage[0].segment, 1);
    assert!(got.torn.is_empty());
    // Its first bytes overwritten: damage too, the later frames still read.
    let mut bad = full.clone();
    for b in &mut bad[..8] {
        *b = 0;
    }
    std::fs::write(&path, &bad).unwrap();
    let got = scan(&jd, &key()).unwrap();
    assert!(!got.damage.is_empty(), "{got:?}");
    // A segment being made is never seen under its name.
    let dir = tempfile::tempdir().unwrap();
    let _ = Journal::create(dir.path(), &key()).unwrap();
    let names: Vec<String> = std::fs::read_dir(journal_dir(dir.path()))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["0000000000000001.journal"]);
}

/// fuzz target `journal` (fuzz/findings/journal-tail-cut-at-frame-boundary):
/// the last segment cut exactly where a frame starts reads as a journal
/// that was never longer — no damage, no torn tail, the frames before it
/// whole. Like any write-ahead log's, the journal's tail rests on fsync:
/// a storage that loses synced writes at a frame boundary is not seen by a
/// scan (docs/guarantees.md). A cut anywhere inside the last frame is a
/// torn tail; a cut at a boundary of an earlier segment is damage (above).
#[test]
fn the_last_segment_cut_where_a_frame_starts_reads_as_a_shorter_journal() {
    let (_dir, jd, full) = setup(6);
    let path = segment_path(&jd, 1);
    let starts = frame_starts(&full);
    assert_eq!(starts.len(), 7, "a start frame and six");
    let last = starts[6];
    std::fs::write(&path, &full[..last]).unwrap();
    let got = scan(&jd, &key()).unwrap();
    assert_eq!(got.entries, entries(0..5));
    assert!(got.damage.is_empty() && got.torn.is_empty(), "{got:?}");
    for cut in [last + 1, full.len() - 1] {
        std::fs::write(&path, &full[..cut]).unwrap();
        let got = scan(&jd, &key()).unwrap();
        assert_eq!(got.entries, entries(0..5));
        assert!(got.damage.is_empty(), "{got:?}");
        assert_eq!(got.torn.len(), 1, "cut at {cut}: {got:?}");
    }
}

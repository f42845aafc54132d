//! Tests of `store/audit_detached.rs`, kept in their own file.

use crate::store::audit_archive::tests::store_with;
use crate::store::audit_archive::{file_path, CHUNK_EVENTS};

fn bytes_of(
    it: impl Iterator<Item = Result<(u64, super::RawEvent), super::StoreError>>,
) -> Vec<(u64, Vec<u8>)> {
    it.map(|r| r.map(|(seq, e)| (seq, e.to_vec())).unwrap())
        .collect()
}

#[test]
fn it_reads_what_the_cursor_reads_from_any_event_after_sled_is_closed() {
    let (_d, s) = store_with(1000);
    assert_eq!(s.audit_compact(100, usize::MAX).unwrap(), 3, "768 archived");
    let froms = [0, 1, 2, 255, 256, 257, 700, 768, 769, 900, 1000, 1001, 5000];
    let wanted: Vec<_> = froms.iter().map(|f| bytes_of(s.audit_cursor(*f))).collect();
    let readers: Vec<_> = froms
        .iter()
        .map(|f| s.audit_detached(*f, 1000).unwrap().expect("232 loose"))
        .collect();
    drop(s);
    for ((from, want), reader) in froms.iter().zip(&wanted).zip(readers) {
        let got = bytes_of(reader);
        assert_eq!(got.len(), want.len(), "from {from}");
        assert_eq!(&got, want, "from {from}");
    }
    assert_eq!(wanted[0].len(), 1000, "every event once");
    assert_eq!(wanted[11].len(), 0, "none after the head");
}

#[test]
fn a_store_with_more_loose_events_than_allowed_is_left_to_the_cursor() {
    let (_d, s) = store_with(600);
    assert!(
        s.audit_detached(1, 10).unwrap().is_none(),
        "600 in sled only"
    );
    assert_eq!(s.audit_compact(0, usize::MAX).unwrap(), 2);
    assert!(
        s.audit_detached(1, 10).unwrap().is_none(),
        "88 in sled only"
    );
    assert!(s.audit_detached(590, 10).unwrap().is_none(), "11 from 590");
    let tail = s.audit_detached(591, 10).unwrap().expect("10 from 591");
    assert_eq!(bytes_of(tail), bytes_of(s.audit_cursor(591)));
    assert!(s.audit_detached(1, 88).unwrap().is_some());
}

#[test]
fn a_damaged_archive_file_is_an_error_naming_the_chunk() {
    let (d, s) = store_with(600);
    assert_eq!(s.audit_compact(0, usize::MAX).unwrap(), 2);
    let file = file_path(d.path(), 1);
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let mut reader = s.audit_detached(1, 1000).unwrap().unwrap();
    let read: Vec<_> = reader.by_ref().take(CHUNK_EVENTS as usize).collect();
    assert!(read.iter().all(Result::is_ok), "the first chunk is whole");
    let e = reader
        .next()
        .unwrap()
        .err()
        .expect("the second chunk is cut");
    assert!(e.to_string().contains("chunk from event 257"), "{e}");
    assert!(reader.next().is_none(), "nothing after the error");
}

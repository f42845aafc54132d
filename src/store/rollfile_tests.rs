//! Tests of `store/rollfile.rs`, kept in their own file.

use super::*;
use std::collections::BTreeSet;

fn entry(h0: u8, h1: u8, row: u32) -> [u8; ENTRY] {
    let mut e = [0u8; ENTRY];
    e[0] = h0;
    e[1] = h1;
    e[16..].copy_from_slice(&row.to_be_bytes());
    e
}

fn hash(e: &[u8; ENTRY]) -> [u8; 16] {
    e[..16].try_into().unwrap()
}

#[test]
fn records_and_index_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = RecordWriter::create(dir.path(), 7).unwrap();
    for r in 0..100u32 {
        w.push(format!("record {r}").as_bytes()).unwrap();
    }
    w.finish(7).unwrap();
    let mut entries: Vec<_> = (0..100u32)
        .map(|r| entry((r * 37 % 256) as u8, (r % 3) as u8, r))
        .collect();
    // Row 99 under a second blind index too (a pupil has several).
    entries.push(entry(5, 1, 99));
    entries.sort_unstable();
    let mut iw = IndexWriter::create(dir.path(), 7, 3).unwrap();
    for e in &entries {
        iw.push(e).unwrap();
    }
    iw.finish(7).unwrap();

    let f = RollFiles::open(dir.path(), 7).unwrap();
    assert_eq!(f.rows(), 100);
    assert_eq!(f.record(42).unwrap(), b"record 42");
    assert_eq!(f.record(0).unwrap(), b"record 0");
    assert_eq!(f.record(99).unwrap(), b"record 99");
    assert!(f.record(100).is_err());
    for e in &entries {
        let mut rows = BTreeSet::new();
        f.rows_for(&hash(e), &mut rows).unwrap();
        let want: BTreeSet<u32> = entries
            .iter()
            .filter(|x| x[..16] == e[..16])
            .map(|x| u32::from_be_bytes(x[16..].try_into().unwrap()))
            .collect();
        assert_eq!(rows, want);
    }
    let mut none = BTreeSet::new();
    f.rows_for(&[0xff; 16], &mut none).unwrap();
    assert!(none.is_empty());
    let mut seen = 0;
    f.for_each_record(|row, rec| {
        assert_eq!(rec, format!("record {row}").as_bytes());
        seen += 1;
        Ok::<_, StoreError>(())
    })
    .unwrap();
    assert_eq!(seen, 100);
}

#[test]
fn out_of_order_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut iw = IndexWriter::create(dir.path(), 1, 2).unwrap();
    iw.push(&entry(9, 0, 1)).unwrap();
    assert!(iw.push(&entry(8, 0, 2)).is_err());
}

#[test]
fn damaged_or_foreign_files_do_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = RecordWriter::create(dir.path(), 3).unwrap();
    w.push(b"x").unwrap();
    w.finish(3).unwrap();
    let iw = IndexWriter::create(dir.path(), 3, 0).unwrap();
    iw.finish(3).unwrap();
    assert!(RollFiles::open(dir.path(), 3).is_ok());
    // Another generation's files under this generation's names.
    for ext in ["rec", "idx"] {
        std::fs::copy(path(dir.path(), 3, ext), path(dir.path(), 4, ext)).unwrap();
    }
    assert!(RollFiles::open(dir.path(), 4).is_err());
    // Truncated.
    let rec = path(dir.path(), 3, "rec");
    let len = std::fs::metadata(&rec).unwrap().len();
    File::options()
        .write(true)
        .open(&rec)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    assert!(RollFiles::open(dir.path(), 3).is_err());
}

#[test]
fn leftovers_are_removed_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["00000001.rec", "00000001.idx", "00000002.rec", "notes.txt"] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    remove_generations(dir.path(), |g| g != 2).unwrap();
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["00000002.rec", "notes.txt"]);
    assert_eq!(generation_of("00000012.idx"), Some(12));
    assert_eq!(generation_of("12.idx"), None);
    remove_generations(&dir.path().join("absent"), |_| true).unwrap();
}

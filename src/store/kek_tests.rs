//! Tests of `store/kek.rs`: day keys made once, durable, private, sealed by
//! the master key, destroyed for good, re-wrapped under another master key.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::store::crypto::{day_key_wrap, MasterKey};

fn keys(dir: &Path, b: u8) -> DayKeys {
    DayKeys::new(dir, day_key_wrap(&MasterKey::from_bytes([b; 32])))
}

fn day(s: &str) -> Date {
    s.parse().unwrap()
}

#[test]
fn a_day_key_is_made_once_private_and_opens_again_only_with_its_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path(), 7);
    assert!(k.get(day("2026-12-01"), false).unwrap().is_none());
    let a = k.get(day("2026-12-01"), true).unwrap().unwrap();
    let sealed = a.seal("t", b"r", b"secret").unwrap();
    let file = dir.path().join("keys/2026-12-01.kek");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A fresh handle (a restart) reads the same key.
    let again = keys(dir.path(), 7);
    let b = again.get(day("2026-12-01"), false).unwrap().unwrap();
    assert_eq!(&b.open("t", b"r", &sealed).unwrap()[..], b"secret");
    assert_eq!(again.days().unwrap(), vec![day("2026-12-01")]);
    // Another master key does not open the file, and says which file.
    let other = keys(dir.path(), 8);
    let err = other.get(day("2026-12-01"), false).unwrap_err().to_string();
    assert!(err.contains("2026-12-01.kek"), "{err}");
}

#[test]
fn a_destroyed_day_key_is_gone_from_disk_and_memory_and_rewrap_moves_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path(), 7);
    let a = k.get(day("2026-11-01"), true).unwrap().unwrap();
    let sealed = a.seal("t", b"r", b"kept").unwrap();
    k.get(day("2026-11-02"), true).unwrap().unwrap();
    assert!(k.destroy(day("2026-11-02")).unwrap());
    assert!(!k.destroy(day("2026-11-02")).unwrap());
    assert!(k.get(day("2026-11-02"), false).unwrap().is_none());
    assert_eq!(k.days().unwrap(), vec![day("2026-11-01")]);

    let to = tempfile::tempdir().unwrap();
    let n = keys(to.path(), 9);
    assert_eq!(k.rewrap_into(&n).unwrap(), 1);
    let b = n.get(day("2026-11-01"), false).unwrap().unwrap();
    assert_eq!(&b.open("t", b"r", &sealed).unwrap()[..], b"kept");
}

//! Tests of `store/format.rs`, kept in their own file.

use super::*;
use crate::store::crypto::MasterKey;
use crate::store::Store;

fn key() -> MasterKey {
    MasterKey::from_bytes([7; 32])
}

#[test]
fn a_new_store_is_stamped_with_this_format_and_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), &key()).unwrap();
    assert_eq!(
        s.t.meta.get(FORMAT_VERSION_KEY).unwrap().as_deref(),
        Some(FORMAT_VERSION.to_string().as_bytes())
    );
    drop(s);
    Store::open(dir.path(), &key()).unwrap();
}

#[test]
fn a_store_without_the_stamp_is_version_1_and_is_migrated_to_this_format() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), &key()).unwrap();
    s.t.meta.remove(FORMAT_VERSION_KEY).unwrap();
    s.flush_now().unwrap();
    drop(s);
    let s = Store::open(dir.path(), &key()).unwrap();
    assert_eq!(
        s.t.meta.get(FORMAT_VERSION_KEY).unwrap().as_deref(),
        Some(FORMAT_VERSION.to_string().as_bytes())
    );
    assert!(s
        .audit_events()
        .any(|e| e.unwrap().kind == crate::audit::EventKind::StoreMigrated));
}

#[test]
fn a_store_of_a_newer_format_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), &key()).unwrap();
    s.t.meta.insert(FORMAT_VERSION_KEY, &b"9"[..]).unwrap();
    s.flush_now().unwrap();
    drop(s);
    let err = Store::open(dir.path(), &key())
        .map(|_| ())
        .expect_err("refused");
    assert!(
        matches!(
            err,
            StoreError::FormatTooNew {
                found: 9,
                supported: FORMAT_VERSION,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("format version 9"), "{msg}");
    assert!(msg.contains(env!("CARGO_PKG_VERSION")), "{msg}");
    // Refusing changed nothing: still version 9.
    let db = sled::open(dir.path()).unwrap();
    let meta = db.open_tree(crate::store::trees::META).unwrap();
    assert_eq!(
        meta.get(FORMAT_VERSION_KEY).unwrap().as_deref(),
        Some(&b"9"[..])
    );
}

#[test]
fn a_version_that_is_not_a_number_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), &key()).unwrap();
    s.t.meta.insert(FORMAT_VERSION_KEY, &b"one"[..]).unwrap();
    s.flush_now().unwrap();
    drop(s);
    let err = Store::open(dir.path(), &key())
        .map(|_| ())
        .expect_err("refused");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}

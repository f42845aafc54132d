//! Tests of `store/health.rs`, kept in their own file.

use super::*;

#[test]
fn the_first_failure_of_the_disk_breaks_it_for_good_a_corrupt_record_does_not() {
    let h = Health::default();
    assert!(h.broken().is_none());
    h.failed(&StoreError::Corrupt("a record".into()));
    assert!(h.broken().is_none());
    let full = std::io::Error::from_raw_os_error(28);
    h.failed(&StoreError::Sled(sled::Error::Io(full)));
    let b = h.broken().expect("broken");
    assert!(b.disk_full);
    assert_eq!(b.reason(), "store cannot write: disk full");
    // A later failure keeps the first time and kind.
    h.failed(&StoreError::NotDurable);
    assert_eq!(h.broken(), Some(b));
}

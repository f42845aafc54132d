//! Tests of `store/ownership.rs` (run as root: they chown to nobody).

use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};

use super::*;

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn a_rewritten_tree_gets_the_owner_and_modes_of_the_one_it_replaces() {
    if !is_root() {
        eprintln!("skipped: needs root to chown");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (old, new) = (d.path().join("old"), d.path().join("new"));
    for root in [&old, &new] {
        std::fs::create_dir_all(root.join("roll")).unwrap();
        std::fs::write(root.join("db"), b"x").unwrap();
        std::fs::write(root.join("roll/1.rec"), b"x").unwrap();
    }
    std::fs::write(new.join("snap.new"), b"x").unwrap();
    for p in [
        &old,
        &old.join("roll"),
        &old.join("db"),
        &old.join("roll/1.rec"),
    ] {
        chown(p, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    std::fs::set_permissions(old.join("db"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::set_permissions(new.join("snap.new"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let fixed = match_tree(&old, &new).unwrap();
    assert_eq!(fixed.owners, 5, "{fixed:?}");
    for rel in ["", "roll", "db", "roll/1.rec", "snap.new"] {
        let m = std::fs::metadata(new.join(rel)).unwrap();
        assert_eq!((m.uid(), m.gid()), (NOBODY, NOBODY), "{rel}");
    }
    assert_eq!(
        std::fs::metadata(new.join("db")).unwrap().mode() & 0o777,
        0o640
    );
    assert_eq!(
        std::fs::metadata(new.join("snap.new")).unwrap().mode() & 0o777,
        0o600,
        "a new file keeps its own mode"
    );
    // Nothing left to change the second time.
    assert_eq!(match_tree(&old, &new).unwrap(), Fixed::default());
}

#[test]
fn files_root_left_in_a_store_get_the_store_folders_owner() {
    if !is_root() {
        eprintln!("skipped: needs root to chown");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    std::fs::create_dir_all(store.join("roll")).unwrap();
    std::fs::write(store.join("roll/2.rec"), b"x").unwrap();
    chown(&store, Some(NOBODY), Some(NOBODY)).unwrap();
    let fixed = keep_store_owner(&store).unwrap();
    assert_eq!(fixed.owners, 2);
    let m = std::fs::metadata(store.join("roll/2.rec")).unwrap();
    assert_eq!((m.uid(), m.gid()), (NOBODY, NOBODY));
}

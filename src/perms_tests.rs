//! Unit tests of the ownership and mode checks (as root, also ownership).

use std::os::unix::fs::PermissionsExt;

use super::*;

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn secret(dir: &Path, mode: u32) -> PathBuf {
    let p = dir.join("master.key");
    std::fs::write(&p, [7u8; 32]).unwrap();
    chmod(&p, mode);
    p
}

#[test]
fn a_secret_file_must_be_private_and_in_a_folder_only_its_owner_changes() {
    let dir = tempfile::tempdir().unwrap();
    let key = secret(dir.path(), 0o400);
    check_secret_file("the master key", &key, false).unwrap();
    chmod(&key, 0o600);
    check_secret_file("the master key", &key, false).unwrap();
    chmod(&key, 0o640);
    let e = check_secret_file("the master key", &key, false).unwrap_err();
    assert!(matches!(e, PermError::Mode { mode: 0o640, .. }), "{e}");
    assert!(e.to_string().contains("chmod 0400"), "{e}");
    chmod(&key, 0o400);
    // The folder: writable by others is refused, unless sticky.
    chmod(dir.path(), 0o777);
    let e = check_secret_file("the master key", &key, false).unwrap_err();
    assert!(matches!(e, PermError::Folder { .. }), "{e}");
    assert!(e.to_string().contains("chmod go-w"), "{e}");
    chmod(dir.path(), 0o1777);
    check_secret_file("the master key", &key, false).unwrap();
    chmod(dir.path(), 0o700);
    // A missing file: a clear error naming it.
    let e = check_secret_file("the master key", &dir.path().join("none"), false).unwrap_err();
    assert!(e.to_string().contains("none"), "{e}");
}

#[test]
fn a_secret_owned_by_another_user_is_refused_unless_systemd_gave_it() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("SKIPPED: needs root to chown");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = secret(dir.path(), 0o400);
    std::os::unix::fs::chown(&key, Some(65534), None).unwrap();
    let e = check_secret_file("the master key", &key, false).unwrap_err();
    assert!(matches!(e, PermError::Owner { .. }), "{e}");
    assert!(e.to_string().contains("chown"), "{e}");
    check_secret_file("the master key", &key, true).unwrap();
    // A folder of another user: that user could swap the key.
    std::os::unix::fs::chown(&key, Some(0), None).unwrap();
    std::os::unix::fs::chown(dir.path(), Some(65534), None).unwrap();
    let e = check_secret_file("the master key", &key, false).unwrap_err();
    assert!(matches!(e, PermError::Folder { .. }), "{e}");
}

#[test]
fn a_socket_folder_others_can_write_is_refused_even_sticky() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // Not there yet: nothing can have been planted.
    check_socket_folder(&run, &[0, running_uid()]).unwrap();
    std::fs::create_dir(&run).unwrap();
    chmod(&run, 0o750);
    check_socket_folder(&run, &[0, running_uid()]).unwrap();
    for mode in [0o1777, 0o777, 0o770] {
        chmod(&run, mode);
        let e = check_socket_folder(&run, &[0, running_uid()]).unwrap_err();
        assert!(matches!(e, PermError::SocketFolder { .. }), "{mode:o}: {e}");
        assert!(e.to_string().contains("chmod 0750"), "{e}");
    }
    chmod(&run, 0o750);
    // A parent others can write (without sticky): they could swap the folder.
    chmod(dir.path(), 0o777);
    assert!(check_socket_folder(&run, &[0, running_uid()]).is_err());
    chmod(dir.path(), 0o700);
}

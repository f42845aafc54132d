//! Tests of `fsmode.rs`, kept in their own file.

use super::*;

#[test]
fn files_0600_and_folders_0700_under_a_permissive_umask() {
    // Tested in a child process: the umask is process-wide.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("a/b");
    create_dir_all(&d).unwrap();
    let f = d.join("f");
    append_private(&f).unwrap();
    let g = d.join("g");
    create_new_private(&g).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d) & 0o077, 0);
    assert_eq!(mode(&dir.path().join("a")) & 0o077, 0);
    assert_eq!(mode(&f) & 0o077, 0);
    assert_eq!(mode(&g) & 0o077, 0);
    let loose = dir.path().join("loose");
    std::fs::write(&loose, b"x").unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    tighten_files(dir.path()).unwrap();
    assert_eq!(mode(&loose), 0o600);
    own_dir(dir.path()).unwrap();
    assert_eq!(mode(dir.path()), 0o700);
}

//! Tests of `audit/checkpoint.rs`, kept in their own file.

use super::*;

fn signer(dir: &Path, name: &str) -> Signer {
    write_new_signing_key(&dir.join(name)).unwrap();
    Signer::load(&dir.join(name)).unwrap()
}

#[test]
fn a_checkpoint_verifies_only_unaltered_and_with_its_own_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), "audit.key");
    let other = signer(dir.path(), "other.key");
    let head = Head {
        seq: 42,
        hash: "ab".repeat(32),
    };
    let cp = s.sign(&head, jiff::Timestamp::from_second(1_800_000_000).unwrap());
    cp.verify_signature(s.public_key()).unwrap();
    let public = read_public_key(&public_key_path(&dir.path().join("audit.key"))).unwrap();
    cp.verify_signature(&public).unwrap();
    assert!(cp.verify_signature(other.public_key()).is_err());
    let mut altered = cp.clone();
    altered.seq = 41;
    assert!(altered.verify_signature(s.public_key()).is_err());
    let mut altered = cp.clone();
    altered.hash = "cd".repeat(32);
    assert!(altered.verify_signature(s.public_key()).is_err());
    // Signed by another key but claiming this key's id: the signature fails.
    let mut forged = other.sign(&head, cp.time);
    forged.key_id = cp.key_id.clone();
    assert!(forged.verify_signature(s.public_key()).is_err());
}

#[test]
fn keys_are_never_overwritten_and_private_keys_are_0400() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("audit.key");
    write_new_signing_key(&k).unwrap();
    let mode = std::fs::metadata(&k).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o400);
    assert!(matches!(
        write_new_signing_key(&k),
        Err(SigningKeyError::Exists(_))
    ));
    assert!(
        Signer::load(&public_key_path(&k)).is_err(),
        "a public key is no signing key"
    );
}

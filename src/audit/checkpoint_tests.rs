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

#[test]
fn a_key_change_verifies_only_when_linked_and_both_keys_are_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (signer(dir.path(), "a.key"), signer(dir.path(), "b.key"));
    let t = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let head = |seq: u64| Head {
        seq,
        hash: format!("{seq:064x}"),
    };
    let old = a.sign(&head(10), t);
    let linked = b.sign_linked(&head(20), t, Some(Link::to(&old)));
    let mut both = Trusted::one(a.public_key());
    both.add(b.public_key());
    both.verify(&old).unwrap();
    both.verify(&linked).unwrap();
    Trusted::check_link(Some(&old), &linked).unwrap();
    // Only the new key: the old checkpoint is not believed.
    let err = Trusted::one(b.public_key()).verify(&old).unwrap_err();
    assert!(err.contains("not trusted"), "{err}");
    // A new key's checkpoint without a link, or linking elsewhere, fails.
    let unlinked = b.sign(&head(20), t);
    let err = Trusted::check_link(Some(&old), &unlinked).unwrap_err();
    assert!(err.contains("no link"), "{err}");
    let mut elsewhere = Link::to(&old);
    elsewhere.seq = 9;
    let wrong = b.sign_linked(&head(20), t, Some(elsewhere));
    assert!(Trusted::check_link(Some(&old), &wrong).is_err());
    // The link is signed: changing it breaks the signature.
    let mut forged = linked.clone();
    forged.previous.as_mut().unwrap().hash = "00".repeat(32);
    assert!(both.verify(&forged).is_err());
    // Same key: no link needed.
    Trusted::check_link(Some(&old), &a.sign(&head(20), t)).unwrap();
}

//! Tests of `store/crypto.rs`, kept in their own file.

use super::*;

fn ring() -> Keyring {
    Keyring::new(&MasterKey::from_bytes([7; 32]))
}

#[test]
fn seal_open_round_trip_and_fresh_nonces() {
    let k = ring();
    let a = k
        .seal_key()
        .seal("notifications", b"r1", b"Amelia")
        .unwrap();
    let b = k
        .seal_key()
        .seal("notifications", b"r1", b"Amelia")
        .unwrap();
    assert_ne!(a, b, "each seal uses a fresh nonce");
    assert!(!a.windows(6).any(|w| w == b"Amelia"));
    let opened = k.seal_key().open("notifications", b"r1", &a).unwrap();
    assert_eq!(opened.as_slice(), b"Amelia");
}

#[test]
fn a_value_moved_to_another_record_or_tree_does_not_open() {
    let k = ring();
    let a = k.seal_key().seal("notifications", b"r1", b"x").unwrap();
    assert!(matches!(
        k.seal_key().open("notifications", b"r2", &a),
        Err(CryptoError::Open)
    ));
    assert!(matches!(
        k.seal_key().open("roll", b"r1", &a),
        Err(CryptoError::Open)
    ));
}

#[test]
fn flipped_bit_and_other_key_are_detected() {
    let k = ring();
    let mut a = k.seal_key().seal("t", b"r", b"payload").unwrap();
    let last = a.len() - 1;
    a[last] ^= 1;
    assert!(matches!(
        k.seal_key().open("t", b"r", &a),
        Err(CryptoError::Open)
    ));
    let other = Keyring::new(&MasterKey::from_bytes([8; 32]));
    let b = other.seal_key().seal("t", b"r", b"payload").unwrap();
    assert!(matches!(
        k.seal_key().open("t", b"r", &b),
        Err(CryptoError::UnknownKey(_))
    ));
    assert!(matches!(
        k.seal_key().open("t", b"r", &[1, 2, 3]),
        Err(CryptoError::Malformed)
    ));
}

#[test]
fn subkeys_differ_and_blind_index_is_keyed_and_framed() {
    let k = ring();
    let i1 = k.blind_index("fam", &[b"ab", b"c"]);
    let i2 = k.blind_index("fam", &[b"a", b"bc"]);
    assert_ne!(i1, i2);
    assert_eq!(i1, k.blind_index("fam", &[b"ab", b"c"]));
    let other = Keyring::new(&MasterKey::from_bytes([8; 32]));
    assert_ne!(i1, other.blind_index("fam", &[b"ab", b"c"]));
}

#[test]
fn data_keys_are_random_and_debug_hides_keys() {
    let a = DataKey::generate().unwrap();
    let b = DataKey::generate().unwrap();
    assert_ne!(a.bytes(), b.bytes());
    assert_eq!(format!("{a:?}"), "DataKey(***)");
    assert!(format!("{:?}", ring()).contains("***"));
}

#[test]
fn key_file_is_0400_refuses_overwrite_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("master.key");
    write_new_key(&p).unwrap();
    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o400);
    assert!(matches!(write_new_key(&p), Err(CryptoError::KeyExists(_))));
    MasterKey::load(&p).unwrap();
    let short = dir.path().join("short.key");
    std::fs::write(&short, [1u8; 16]).unwrap();
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        MasterKey::load(&short),
        Err(CryptoError::KeyLength { len: 16, .. })
    ));
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        MasterKey::load(&short),
        Err(CryptoError::KeyMode { .. })
    ));
}

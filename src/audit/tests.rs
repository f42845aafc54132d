//! Tests of `audit/mod.rs`, kept in their own file.

use super::*;

fn chain(n: u64) -> Vec<AuditEvent> {
    let mut head = Head::default();
    (0..n)
        .map(|i| {
            let ev = AuditEvent::next(
                &head,
                jiff::Timestamp::from_second(1_700_000_000 + i as i64).unwrap(),
                EventKind::Received,
                "force:kent".into(),
                Refs {
                    receipt: Some(format!("R{i}")),
                    ..Refs::default()
                },
                serde_json::Map::new(),
            );
            head = ev.head();
            ev
        })
        .collect()
}

#[test]
fn an_intact_chain_verifies() {
    let c = chain(5);
    assert_eq!(verify_chain(&Head::default(), &c).unwrap().seq, 5);
}

#[test]
fn altered_deleted_and_swapped_events_are_named() {
    let mut c = chain(5);
    c[2].actor = "force:met".into();
    assert_eq!(verify_chain(&Head::default(), &c).unwrap_err().seq, 3);

    let mut c = chain(5);
    c.remove(3);
    assert_eq!(verify_chain(&Head::default(), &c).unwrap_err().seq, 4);

    let mut c = chain(5);
    c.swap(1, 2);
    assert_eq!(verify_chain(&Head::default(), &c).unwrap_err().seq, 2);
}

#[test]
fn digests_are_written_as_lowercase_hex() {
    // SHA-256("abc"), FIPS 180-2's example.
    let d = ring::digest::digest(&ring::digest::SHA256, b"abc");
    let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let bytes: &[u8; 32] = d.as_ref().try_into().unwrap();
    assert_eq!(&hex32(bytes), want.as_bytes());
    assert_eq!(hex(bytes), want);
    assert_eq!(hex(&[0x00, 0x0f, 0xf0, 0xff]), "000ff0ff");
}

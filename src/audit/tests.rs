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

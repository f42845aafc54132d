use super::*;
use crate::audit::{EventKind, Refs};

fn event(head: &Head, actor: &str) -> AuditEvent {
    let mut detail = serde_json::Map::new();
    detail.insert("children".into(), 2.into());
    AuditEvent::next(
        head,
        "2026-11-03T10:00:00.5Z".parse().unwrap(),
        EventKind::Received,
        actor.into(),
        Refs {
            receipt: Some("R1".into()),
            ..Refs::default()
        },
        detail,
    )
}

#[test]
fn the_stored_bytes_check_as_the_parsed_event_does() {
    let a = event(&Head::default(), "force:kent");
    let b = event(&a.head(), "force:met");
    let (ba, bb) = (
        serde_json::to_vec(&a).unwrap(),
        serde_json::to_vec(&b).unwrap(),
    );
    let genesis = Link::of(&Head::default()).unwrap();
    assert_eq!(
        fast(&genesis, &ba).map(|l| l.head()),
        Some(a.head()),
        "the fast path"
    );
    let la = next_link(&genesis, &ba).unwrap();
    assert_eq!(next_link(&la, &bb).unwrap().head(), b.head());
    let h = check_link(&Head::default(), &ba).unwrap();
    assert_eq!(check_link(&h, &bb).unwrap(), b.head());

    // Altered content, a broken link, a gap: each named as verify_chain does.
    let altered = String::from_utf8(bb.clone())
        .unwrap()
        .replace("force:met", "force:mex");
    let e = check_link(&h, altered.as_bytes()).unwrap_err();
    assert_eq!(
        e,
        verify_chain(&h, [&serde_json::from_str(&altered).unwrap()]).unwrap_err()
    );
    assert_eq!((e.seq, e.why.contains("altered")), (2, true), "{e}");
    assert_eq!(
        next_link(&Link::of(&h).unwrap(), altered.as_bytes()).unwrap_err(),
        e,
        "the streaming check names the same fault"
    );
    let e = check_link(&Head::default(), &bb).unwrap_err();
    assert_eq!(e.seq, 1, "{e}");
    let wrong_prev = Head {
        seq: 1,
        hash: "0".repeat(64),
    };
    let e = check_link(&wrong_prev, &bb).unwrap_err();
    assert!(e.why.contains("prev_hash"), "{e}");
    // Not the stored layout (pretty-printed): checked the slow way, same verdict.
    let pretty = serde_json::to_vec_pretty(&a).unwrap();
    let genesis = Link::of(&Head::default()).unwrap();
    assert_eq!(fast(&genesis, &pretty), None);
    assert_eq!(
        next_link(&genesis, &pretty).unwrap().head(),
        a.head(),
        "the slow path, as a link"
    );
    assert_eq!(check_link(&Head::default(), &pretty).unwrap(), a.head());
    let e = check_link(&Head::default(), b"{\"seq\":1,").unwrap_err();
    assert!(e.why.contains("not an audit event"), "{e}");
}

#[test]
fn a_head_whose_hash_is_not_64_bytes_is_no_link() {
    let short = Head {
        seq: 3,
        hash: "abc".into(),
    };
    assert_eq!(
        Link::of(&short),
        None,
        "the report refuses to start from it"
    );
    let head = Head {
        seq: 3,
        hash: "f".repeat(64),
    };
    assert_eq!(Link::of(&head).unwrap().head(), head, "a link and back");
}

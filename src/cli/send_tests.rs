use super::*;

#[test]
fn urls_parse_with_and_without_port_prefix_and_ipv6() {
    let t = target("https://127.0.0.1:8443").unwrap();
    assert_eq!(
        (t.host.as_str(), t.addr.port(), t.base.as_str()),
        ("127.0.0.1", 8443, "")
    );
    let t = target("https://127.0.0.1/kim/").unwrap();
    assert_eq!((t.addr.port(), t.base.as_str()), (443, "/kim"));
    let t = target("https://[::1]:9000").unwrap();
    assert_eq!((t.host.as_str(), t.addr.port()), ("::1", 9000));
    for bad in [
        "http://127.0.0.1:1",
        "https://:80",
        "https://127.0.0.1:port",
        "https://[::1",
    ] {
        let e = target(bad)
            .err()
            .unwrap_or_else(|| panic!("{bad} accepted"));
        assert_eq!(e.code, exit::USAGE, "{bad}");
    }
}

#[test]
fn json_lines_files_give_one_notification_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("batch.jsonl");
    std::fs::write(&f, "{\"a\":1}\n\n{\"a\":2}\n").unwrap();
    let b = bodies(&f).unwrap();
    assert_eq!(b.len(), 2);
    assert!(b[1].0.ends_with("batch.jsonl:3"), "{}", b[1].0);
    let one = dir.path().join("one.json");
    std::fs::write(&one, "{\n\"a\": 1\n}\n").unwrap();
    assert_eq!(bodies(&one).unwrap().len(), 1);
    assert_eq!(
        bodies(&dir.path().join("absent.json")).err().unwrap().code,
        exit::USAGE
    );
}

#[test]
fn rates_parse() {
    assert_eq!(parse_rate("4/s").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_rate("2").unwrap(), Duration::from_millis(500));
    for bad in ["0/s", "-1/s", "fast", "inf/s"] {
        assert!(parse_rate(bad).is_err(), "{bad}");
    }
}

#[test]
fn settled_means_every_child_has_an_end_state_for_now() {
    let s = |states: &[&str]| json!({"children": states.iter().map(|s| json!({"state": s})).collect::<Vec<_>>()});
    assert!(settled(&s(&[
        "delivered",
        "needs_review",
        "failed",
        "withdrawn"
    ])));
    assert!(!settled(&s(&["delivered", "queued"])));
    assert!(!settled(&s(&["matched"])));
    assert!(!settled(&json!({})));
}

//! Unit tests of the certificate identity → force comparison.

use super::*;
use crate::config::ForceConfig;

fn force(id: &str, names: &[&str]) -> ForceConfig {
    ForceConfig {
        id: id.into(),
        name: format!("{id} police"),
        client_names: names.iter().map(|n| (*n).to_owned()).collect(),
        test: false,
        test_client_names: Vec::new(),
    }
}

fn dns(s: &str) -> Identity {
    Identity::Dns(s.into())
}

fn uri(s: &str) -> Identity {
    Identity::Uri(s.into())
}

#[test]
fn dns_names_compare_case_insensitively() {
    assert!(dns("RELAY.Kent-Police.example").matches("relay.kent-police.example"));
    assert!(!dns("relay.kent-police.example.evil").matches("relay.kent-police.example"));
    assert!(!dns("relay.kent-police.exampl").matches("relay.kent-police.example"));
}

#[test]
fn uri_scheme_and_host_ignore_case_the_path_does_not() {
    let name = "spiffe://police.example/durham";
    assert!(uri("spiffe://police.example/durham").matches(name));
    assert!(uri("SPIFFE://POLICE.EXAMPLE/durham").matches(name));
    assert!(uri("Spiffe://Police.Example/durham").matches(name));
    assert!(!uri("SPIFFE://POLICE.EXAMPLE/DURHAM").matches(name));
    assert!(!uri("spiffe://police.example/Durham").matches(name));
    assert!(!uri("spiffe://police.example/durham/").matches(name));
    assert!(!uri("spiffe://police.example/durham?x").matches(name));
    assert!(!uri("spiffe://police.example.evil/durham").matches(name));
    // User info and port are not host: user info compares exactly.
    assert!(uri("https://ops@RELAY.example:8443/a").matches("https://ops@relay.example:8443/a"));
    assert!(!uri("https://OPS@relay.example:8443/a").matches("https://ops@relay.example:8443/a"));
    assert!(!uri("https://relay.example:8444/a").matches("https://relay.example:8443/a"));
}

#[test]
fn a_dns_name_never_matches_a_uri_name_or_the_reverse() {
    assert!(!dns("spiffe://police.example/durham").matches("spiffe://police.example/durham"));
    assert!(!uri("relay.kent-police.example").matches("relay.kent-police.example"));
}

#[test]
fn a_certificate_naming_two_forces_matches_none() {
    let forces = [
        force("kent", &["relay.kent-police.example"]),
        force("met", &["relay.met-police.example"]),
        force("durham", &["spiffe://police.example/durham"]),
    ];
    let one = match_force(&forces, &[dns("relay.met-police.example")]);
    assert!(matches!(one, ForceMatch::One(f) if f.id == "met"));
    let two = match_force(
        &forces,
        &[
            dns("relay.kent-police.example"),
            dns("relay.met-police.example"),
        ],
    );
    match two {
        ForceMatch::Ambiguous(fs) => {
            let ids: Vec<_> = fs.iter().map(|f| f.id.as_str()).collect();
            assert_eq!(ids, ["kent", "met"]);
        }
        other => panic!("expected ambiguous, got {other:?}"),
    }
    let dns_and_uri = match_force(
        &forces,
        &[
            dns("relay.kent-police.example"),
            uri("spiffe://police.example/durham"),
        ],
    );
    assert!(matches!(dns_and_uri, ForceMatch::Ambiguous(_)));
    // Two names of the same force are still that one force.
    let same = [force("kent", &["a.example", "b.example"])];
    assert!(matches!(
        match_force(&same, &[dns("a.example"), dns("B.example")]),
        ForceMatch::One(_)
    ));
    assert!(matches!(
        match_force(&forces, &[uri("spiffe://police.example/DURHAM")]),
        ForceMatch::None
    ));
}

#[test]
fn a_test_name_acts_for_its_force_in_test_mode() {
    use crate::config::forces::is_test;
    let mut met = force("met", &["relay.met-police.example"]);
    met.test_client_names = vec!["test.met-police.example".into()];
    let forces = vec![met, force("kent", &["relay.kent-police.example"])];
    let live = [dns("relay.met-police.example")];
    let test = [dns("TEST.met-police.example")];
    match match_force(&forces, &test) {
        ForceMatch::One(f) => {
            assert_eq!(f.id, "met");
            assert!(is_test(f, &test));
            assert!(!is_test(f, &live));
        }
        other => panic!("{other:?}"),
    }
    let both = [live[0].clone(), test[0].clone()];
    assert!(
        is_test(&forces[0], &both),
        "a live and a test name: test mode"
    );
    let mut kent = forces[1].clone();
    assert!(!is_test(&kent, &[dns("relay.kent-police.example")]));
    kent.test = true;
    assert!(is_test(&kent, &[dns("relay.kent-police.example")]));
}

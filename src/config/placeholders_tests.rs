use super::*;

#[test]
fn every_key_holding_the_marker_is_named_once() {
    let text = r#"
[server]
listen = "0.0.0.0:8443"
cert = "/etc/kim/tls/CHANGE-ME.crt"
[[forces]]
id = "CHANGE-ME"
name = "Kent Police"
client_names = ["CHANGE-ME.police.example", "CHANGE-ME-too"]
[mail]
admin_email = "CHANGE-ME@council.example"
[mail.smtp]
host = "CHANGE-ME.council.example"
port = 587
"#;
    let doc: toml::Table = text.parse().unwrap();
    let mut got = find(&doc);
    got.sort();
    assert_eq!(
        got,
        [
            "[[forces]] client_names",
            "[[forces]] id",
            "[mail.smtp] host",
            "[mail] admin_email",
            "[server] cert",
        ]
    );
    let e = check(text, Path::new("/etc/kim/kim.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/etc/kim/kim.toml: "), "{e}");
    assert!(
        e.contains("[mail] admin_email") && e.contains("CHANGE-ME"),
        "{e}"
    );
}

#[test]
fn a_filled_in_file_and_a_broken_one_pass_to_the_typed_parse() {
    assert!(check("[server]\nlisten = \"0.0.0.0:8443\"\n", Path::new("k.toml")).is_ok());
    assert!(check("[server\n", Path::new("k.toml")).is_ok());
}

#[test]
fn loading_the_example_with_a_placeholder_names_it_before_any_other_problem() {
    let text = include_str!("../../config/kim.example.toml").replace(
        "safeguarding@council.example",
        "safeguarding@CHANGE-ME.council.example",
    );
    let e = crate::config::Config::from_toml(&text, Path::new("/etc/kim/kim.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[mail] admin_email") && e.contains("[review] notify"),
        "{e}"
    );
}

//! Tests of `config`, kept in their own file.

use super::*;

/// `config/dev.toml`: the `dev` template with its defaults.
pub const MINIMAL: &str = include_str!("../config/dev.toml");

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("/etc/kim/kim.toml"))
}

#[test]
fn minimal_config_loads_and_resolves_paths() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.server.cert, PathBuf::from("/etc/kim/certs/server.crt"));
    assert_eq!(c.store.path, PathBuf::from("/etc/kim/store"));
    assert_eq!(c.limits.max_connections, 512);
    assert_eq!(
        c.force_for(&["RELAY.kent-police.example".into()])
            .map(|f| f.id.as_str()),
        Some("kent")
    );
    assert!(c.force_for(&["relay.other.example".into()]).is_none());
}

#[test]
fn unknown_key_is_an_error_naming_it() {
    let text = MINIMAL.replace("[store]", "[store]\nmaster_kye = 1");
    let err = load(&text).unwrap_err().to_string();
    assert!(err.contains("master_kye"), "{err}");
    assert!(err.contains("/etc/kim/kim.toml"), "{err}");
}

#[test]
fn delivery_and_alert_settings_are_checked() {
    let c = load(&format!(
        "{MINIMAL}\n[delivery]\nescalate_after = \"10m\"\nschool_day_start = \"08:45\"\nclosures = [\"2026-12-25\"]\n[alert]\nvoice_of_child = false\n"
    ))
    .unwrap();
    assert_eq!(c.delivery.escalate_after.0, Duration::from_secs(600));
    assert_eq!(c.delivery.school_day_start, jiff::civil::time(8, 45, 0, 0));
    assert_eq!(c.delivery.closures.len(), 1);
    assert!(!c.alert.voice_of_child && c.alert.summary_for_school);
    for (bad, key) in [
        (
            "[delivery]\nretry_initial = \"10m\"\nretry_max = \"1m\"",
            "delivery.retry_max",
        ),
        ("[delivery]\nconcurrency = 0", "delivery.concurrency"),
        (
            "[delivery]\ngive_up_after = \"0s\"",
            "delivery.give_up_after",
        ),
        ("[delivery]\nclosures = [\"2026-02-30\"]", "closures"),
        (
            "[delivery]\nschool_day_start = \"8 o'clock\"",
            "school_day_start",
        ),
        ("[alert]\nvoice_of_the_child = false", "voice_of_the_child"),
    ] {
        let err = load(&format!("{MINIMAL}\n{bad}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{bad}: {err}");
    }
}

#[test]
fn handshake_limits_have_defaults_and_are_checked() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.limits.max_handshakes, 512);
    assert_eq!(c.limits.max_handshakes_per_source, 128);
    assert_eq!(c.limits.handshake_timeout.0, Duration::from_secs(3));
    let c = load(&format!(
        "{MINIMAL}\n[limits]\nmax_handshakes = 64\nmax_handshakes_per_source = 4\n"
    ))
    .unwrap();
    assert_eq!(
        (c.limits.max_handshakes, c.limits.max_handshakes_per_source),
        (64, 4)
    );
    for key in ["max_handshakes", "max_handshakes_per_source"] {
        let err = load(&format!("{MINIMAL}\n[limits]\n{key} = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("limits.{key}")), "{err}");
    }
}

#[test]
fn unknown_section_is_an_error() {
    let text = format!("{MINIMAL}\n[sever]\nlisten = 1\n");
    assert!(load(&text).unwrap_err().to_string().contains("sever"));
}

#[test]
fn missing_master_key_is_named() {
    let text = MINIMAL.replace("master_key_file = \"master.key\"", "");
    let err = load(&text).unwrap_err().to_string();
    assert!(err.contains("store.master_key_file"), "{err}");
}

#[test]
fn duplicate_client_name_across_forces_is_rejected() {
    let text = format!(
        "{MINIMAL}\n[[forces]]\nid = \"met\"\nname = \"Met\"\nclient_names = [\"relay.kent-police.example\"]\n"
    );
    let err = load(&text).unwrap_err().to_string();
    assert!(err.contains("forces[1].client_names"), "{err}");
}

#[test]
fn bad_force_id_and_durations_are_rejected() {
    let text = MINIMAL.replace("id = \"kent\"", "id = \"Kent Police\"");
    assert!(load(&text)
        .unwrap_err()
        .to_string()
        .contains("forces[0].id"));
    let text = format!("{MINIMAL}\n[limits]\nheader_timeout = \"ten seconds\"\n");
    assert!(load(&text)
        .unwrap_err()
        .to_string()
        .contains("header_timeout"));
    let text = format!("{MINIMAL}\n[matching]\nname_threshold = 0.5\n");
    assert!(load(&text)
        .unwrap_err()
        .to_string()
        .contains("matching.name_threshold"));
    let text = format!("{MINIMAL}\n[limits]\nheader_timeout = \"0s\"\n");
    assert!(load(&text)
        .unwrap_err()
        .to_string()
        .contains("limits.header_timeout"));
}

#[test]
fn smtp_transport_needs_smtp_section_and_has_no_plaintext() {
    let text = MINIMAL.replace("transport = \"file\"", "transport = \"smtp\"");
    assert!(load(&text).unwrap_err().to_string().contains("mail.smtp"));
    let text = format!(
        "{}\n[mail.smtp]\nhost = \"smtp.example\"\ntls = \"none\"\n",
        MINIMAL.replace("transport = \"file\"", "transport = \"smtp\"")
    );
    assert!(load(&text).unwrap_err().to_string().contains("tls"));
    let text = format!(
        "{}\n[mail.smtp]\nhost = \"smtp.example\"\ntls = \"starttls\"\nca_file = \"\"\n",
        MINIMAL.replace("transport = \"file\"", "transport = \"smtp\"")
    );
    let c = load(&text).unwrap();
    assert!(c.mail.smtp.unwrap().ca_file.is_none());
}

#[test]
fn the_shipped_example_and_dev_configs_are_valid() {
    let example = load(include_str!("../config/kim.example.toml")).unwrap();
    assert_eq!(example.forces[0].id, "kent");
    assert_eq!(example.limits.header_timeout.0, Duration::from_secs(10));
    assert_eq!(example.review.notify, ["safeguarding@council.example"]);
    assert_eq!(example.review.digest_every.0, Duration::from_secs(120));
    assert_eq!(example.review.remind_at, jiff::civil::time(6, 30, 0, 0));
    let dev = Config::from_toml(
        include_str!("../config/dev.toml"),
        Path::new("config/dev.toml"),
    )
    .unwrap();
    assert_eq!(dev.mail.transport, Transport::File);
}

#[test]
fn durations_parse() {
    assert_eq!(
        HumanDuration::parse("90s").unwrap().0,
        Duration::from_secs(90)
    );
    assert_eq!(
        HumanDuration::parse("30m").unwrap().0,
        Duration::from_secs(1800)
    );
    assert_eq!(
        HumanDuration::parse("24h").unwrap().0,
        Duration::from_secs(86400)
    );
    assert_eq!(
        HumanDuration::parse("250ms").unwrap().0,
        Duration::from_millis(250)
    );
    assert!(HumanDuration::parse("5").is_err());
    assert!(HumanDuration::parse("5y").is_err());
}

#[test]
fn review_defaults_to_the_admin_mailbox_every_two_minutes() {
    let c = load(MINIMAL).unwrap();
    assert!(c.review.notify.is_empty(), "empty: [mail] admin_email");
    assert_eq!(c.review.digest_every.0, Duration::from_secs(120));
    let c = load(&format!("{MINIMAL}\n[review]\ndigest_every = \"0s\"\n")).unwrap();
    assert!(c.review.digest_every.0.is_zero());
    assert!(load(&format!("{MINIMAL}\n[review]\nnotfy = []\n")).is_err());
}

#[test]
fn review_remind_at_defaults_to_half_past_six_and_must_come_before_the_deadline() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.review.remind_at, jiff::civil::time(6, 30, 0, 0));
    let c = load(&format!("{MINIMAL}\n[review]\nremind_at = \"07:15\"\n")).unwrap();
    assert_eq!(c.review.remind_at, jiff::civil::time(7, 15, 0, 0));
    for bad in ["\"08:00\"", "\"09:30\"", "\"half six\""] {
        let err = load(&format!("{MINIMAL}\n[review]\nremind_at = {bad}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("remind_at"), "{bad}: {err}");
    }
}

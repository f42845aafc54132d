//! Unit tests of which config changes a reload may apply.

use super::*;
use crate::config::tests::MINIMAL;

fn cfg(text: &str) -> Config {
    Config::from_toml(text, Path::new("/etc/kim/kim.toml")).unwrap()
}

#[test]
fn live_keys_change_and_fixed_ones_are_each_named() {
    let old = cfg(MINIMAL);
    // Live: a closure date, the name threshold, a timeout, another force.
    let live = format!(
        "{MINIMAL}\n[delivery]\nclosures = [\"2026-12-24\"]\n[matching]\nname_threshold = 0.95\n\
         [limits]\nidle_timeout = \"30s\"\n[[forces]]\nid = \"extra\"\nname = \"Extra\"\nclient_names = [\"relay.extra.example\"]\n"
    );
    assert_eq!(fixed_changes(&old, &cfg(&live)), vec![]);
    // Fixed: listen, a retry setting, a connection cap: all three named.
    let listen = old.server.listen.to_string();
    let fixed = format!(
        "{}\n[delivery]\nretry_max = \"1h\"\n[limits]\nmax_connections = 7\n",
        MINIMAL.replace(&listen, "127.0.0.1:1")
    );
    let keys: Vec<&str> = fixed_changes(&old, &cfg(&fixed))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec!["server.listen", "delivery", "limits"]);
}

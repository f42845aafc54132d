//! The configuration file (`kim.toml`). Accepted: every certificate name
//! it lists, presented by a client, acts for exactly the force that lists
//! it (validation must refuse names two forces share), and in test mode
//! when it is a test name.
#![no_main]

use std::path::Path;

use kim::config::forces::{is_test, match_force, ForceMatch, Identity};
use kim::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = Config::from_toml(text, Path::new("/etc/kim/kim.toml")) else {
        return;
    };
    for f in &cfg.forces {
        for (name, test) in f
            .client_names
            .iter()
            .map(|n| (n, false))
            .chain(f.test_client_names.iter().map(|n| (n, true)))
        {
            let ids = [Identity::from(name.as_str())];
            match match_force(&cfg.forces, &ids) {
                ForceMatch::One(g) => {
                    assert_eq!(g.id, f.id, "a name of one force acts for another");
                    assert!(!test || is_test(g, &ids), "a test name acts live");
                }
                ForceMatch::None => panic!("a configured name acts for no force"),
                ForceMatch::Ambiguous(_) => panic!("a configured name acts for two forces"),
            }
        }
    }
});

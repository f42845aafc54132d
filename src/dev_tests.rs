//! Tests of `dev`, kept in their own file.

use super::*;
use crate::config::Config;

const DEV_TOML: &str = include_str!("../config/dev.toml");

#[test]
fn config_dev_toml_is_the_template_with_its_defaults() {
    assert_eq!(config(&Options::default()), DEV_TOML);
    let c = Config::from_toml(DEV_TOML, Path::new("/etc/kim/kim.toml")).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8443");
    assert_eq!(c.store.path, PathBuf::from("/etc/kim/store"));
}

#[test]
fn every_variant_loads() {
    let variants = [
        Options::loopback(),
        Options {
            crls: vec!["certs/a.crl".into(), "certs/b.crl".into()],
            forces: "[[forces]]\nid = \"met\"\nname = \"Met\"\nclient_names = [\"relay.met-police.example\"]".into(),
            mail: Mail::Smtp {
                ca_file: "certs/ca.crt".into(),
            },
            admin_socket: None,
            extra: "[limits]\nmax_connections = 1024".into(),
            ..Options::loopback()
        },
        Options {
            mail: Mail::Section(
                "[mail]\ntransport = \"file\"\nfrom = \"kim@council.example\"\nadmin_email = \"a@council.example\"\nfile_dir = \"x\"".into(),
            ),
            ..Options::default()
        },
    ];
    for opts in variants {
        let text = config(&opts);
        if let Err(e) = Config::from_toml(&text, Path::new("/etc/kim/kim.toml")) {
            panic!("{e}\n{text}");
        }
    }
}

#[test]
fn install_writes_certs_key_and_config_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("dev");
    let i = install(&at, &Options::loopback()).unwrap();
    assert!(i.certs.server_cert.exists() && i.master_key.exists());
    assert_eq!(
        std::fs::read_to_string(&i.config).unwrap(),
        config(&Options::loopback())
    );
    assert!(install(&at, &Options::loopback()).is_err());
}

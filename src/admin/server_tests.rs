//! Tests of `admin/server.rs`, kept in their own file.

use super::*;

#[test]
fn a_stale_socket_is_replaced_and_a_regular_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run").join("admin.sock");
    let cfg = AdminConfig {
        socket: path.clone(),
        ..AdminConfig::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = AdminServer::bind(&cfg).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(s); // the file stays behind, as after a crash
        assert!(path.exists());
        let _again = AdminServer::bind(&cfg).expect("a stale socket is replaced");
    });
    let file = dir.path().join("kim.toml");
    std::fs::write(&file, "precious").unwrap();
    let cfg = AdminConfig {
        socket: file.clone(),
        ..AdminConfig::default()
    };
    rt.block_on(async {
        assert!(AdminServer::bind(&cfg).is_err());
    });
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
}

#[test]
fn root_the_daemon_user_and_listed_users_are_admitted_others_not() {
    let cfg = AdminConfig {
        users: vec!["alice".into()],
        ..AdminConfig::default()
    };
    let c = |uid, name: Option<&str>| Caller {
        uid,
        gid: 60000,
        name: name.map(str::to_owned),
    };
    assert!(admitted(&c(0, Some("root")), &cfg, 999));
    assert!(admitted(&c(999, Some("kim")), &cfg, 999));
    assert!(admitted(&c(1001, Some("alice")), &cfg, 999));
    assert!(!admitted(&c(1002, Some("mallory")), &cfg, 999));
    assert!(!admitted(&c(1003, None), &cfg, 999));
    let by_group = AdminConfig {
        groups: vec!["root".into()],
        ..AdminConfig::default()
    };
    // gid 0 is the root group on every Linux.
    assert!(admitted(
        &Caller {
            uid: 1004,
            gid: 0,
            name: None
        },
        &by_group,
        999
    ));
}

#[test]
fn the_daemon_names_an_unnamed_uid_as_the_cli_does() {
    // A uid no user database on a test machine names.
    let uid = 4_000_000_123;
    assert_eq!(
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten(),
        None
    );
    let daemon = Caller::of(uid, 4_000_000_123).actor();
    // The CLI names its own user with `Actor::os_user(getuid())`.
    let cli = Actor::os_user(uid);
    assert_eq!(daemon, cli);
    assert_eq!(daemon.as_str(), "admin:uid4000000123");
    // A named user the same way too.
    assert_eq!(Caller::of(0, 0).actor(), Actor::os_user(0));
    assert_eq!(Actor::os_user(0).as_str(), "admin:root");
}

//! `[admin] group` under the unit's `RuntimeDirectoryMode=0750` (issue 13
//! item 6): the socket's folder belongs to the daemon's user and group, so
//! a member of the admin group alone could not even reach the 0660 socket.
//! kim makes the folder traversable (o+x, never listable or writable) when
//! `[admin] group` is set, and the group member's CLI gets its answer.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use crate::support::{Env, KIM};

/// A uid with no name, whose only group is 65534 (nogroup).
const UID: u32 = 4_000_000_321;

#[test]
fn an_admin_group_member_reaches_the_socket_in_a_0750_runtime_folder() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED: needs root to run the CLI as another user");
        return;
    }
    let nogroup = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(65534))
        .unwrap()
        .expect("group 65534")
        .name;
    let env = Env::new();
    // As systemd makes RuntimeDirectory=kim with RuntimeDirectoryMode=0750:
    // the daemon's user and group only.
    let run = env.path("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o750)).unwrap();
    let text = std::fs::read_to_string(&env.config).unwrap().replace(
        "[admin]\nsocket = \"admin.sock\"",
        &format!(
            "[admin]\nsocket = \"run/admin.sock\"\ngroup = \"{nogroup}\"\ngroups = [\"{nogroup}\"]"
        ),
    );
    assert!(
        text.contains("run/admin.sock"),
        "no [admin] socket line to edit"
    );
    std::fs::write(&env.config, text).unwrap();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let kim = env.start();

    // setpriv: no supplementary groups (root's would open the folder).
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={UID}"),
            "--regid=65534",
            "--clear-groups",
            KIM,
            "--config",
            env.config.to_str().unwrap(),
            "schools",
            "list",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "group member refused: {err}");
    let mode = std::fs::metadata(&run).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o751, "the folder: traversable by others, no more");
    assert!(kim.terminate(Duration::from_secs(30)).success());
}

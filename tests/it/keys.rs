//! Keys over the years (issue 14 item 5) and the store's versions (item 6)
//! on the real binary: `kim keys rotate` run as root keeps the daemon
//! user's ownership and modes; a store of a newer format is refused (exit 2)
//! by `serve`, `status` and `check-config --store`; the kim version that last wrote
//! the store is recorded and shown.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use hyper::Method;

use crate::support::{rt, simple, Env};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Every entry under `dir` (itself included): (path, uid, gid, mode).
fn tree(dir: &Path) -> Vec<(std::path::PathBuf, u32, u32, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        out.push((p.clone(), m.uid(), m.gid(), m.mode() & 0o7777));
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out
}

fn chown_tree(dir: &Path, uid: u32) {
    for (p, ..) in tree(dir) {
        std::os::unix::fs::lchown(&p, Some(uid), Some(uid)).unwrap();
    }
}

/// A populated store (one notification), the daemon stopped: its receipt.
fn populated(env: &Env) -> String {
    env.import(
        "urn,name,dsl_name,dsl_email,deputy_email,phone\n118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,,\n",
        "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\nKCC-1,Amelia,Khan,,2014-03-09,ME14 1XX,118765\n",
    );
    let k = env.start();
    let receipt = crate::support::post_accepted(env, k.addr, &simple("KNT/KEYS/1"));
    assert!(k.terminate(Duration::from_secs(20)).success());
    receipt
}

#[test]
fn keys_rotate_as_root_keeps_the_daemon_users_ownership_and_modes() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let receipt = populated(&env);
    // The installation belongs to the daemon's user (nobody here).
    chown_tree(env.dir.path(), NOBODY);
    let store = env.path("store");
    let before: std::collections::HashMap<_, _> = tree(&store)
        .into_iter()
        .map(|(p, _, _, mode)| (p.strip_prefix(&store).unwrap().to_owned(), mode))
        .collect();
    let key_mode = std::fs::metadata(env.path("master.key")).unwrap().mode() & 0o7777;

    let (code, out, err) = env.kim(&["keys", "rotate"]);
    assert_eq!(code, 0, "{out}{err}");

    let after = tree(&store);
    assert!(after.len() > 3, "{after:?}");
    for (p, uid, gid, mode) in &after {
        assert_eq!(
            (*uid, *gid),
            (NOBODY, NOBODY),
            "{} is not nobody's",
            p.display()
        );
        if let Some(was) = before.get(p.strip_prefix(&store).unwrap()) {
            assert_eq!(mode, was, "{} changed mode", p.display());
        }
    }
    let key = std::fs::metadata(env.path("master.key")).unwrap();
    assert_eq!(
        (key.uid(), key.gid()),
        (NOBODY, NOBODY),
        "the new master key"
    );
    assert_eq!(key.mode() & 0o7777, key_mode);

    // kim started as that user opens the rotated store and serves it.
    let uid = format!("--reuid={NOBODY}");
    let gid = format!("--regid={NOBODY}");
    let k = env.start_under(&["setpriv", &uid, &gid, "--clear-groups"]);
    let a = rt()
        .block_on(env.kent().once(
            k.addr,
            Method::GET,
            &format!("/v1/notifications/{receipt}"),
            None,
        ))
        .unwrap();
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(k.terminate(Duration::from_secs(20)).success());
}

#[test]
fn an_offline_admin_command_as_root_leaves_the_store_its_owners() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    populated(&env);
    chown_tree(env.dir.path(), NOBODY);
    // A roll import as root writes new roll files (the daemon is stopped).
    std::fs::write(
        env.path("roll2.csv"),
        "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\nKCC-2,Noor,Ali,,2015-01-02,ME15 2YY,118765\n",
    )
    .unwrap();
    let (code, out, err) = env.kim(&["roll", "import", env.path("roll2.csv").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    for (p, uid, gid, _) in tree(&env.path("store")) {
        assert_eq!(
            (uid, gid),
            (NOBODY, NOBODY),
            "{} is not nobody's",
            p.display()
        );
    }
}

/// Sets a `meta` key of the (stopped) store directly.
fn set_meta(env: &Env, key: &str, value: &str) {
    let db = sled::open(env.path("store")).unwrap();
    db.open_tree("meta").unwrap().insert(key, value).unwrap();
    db.flush().unwrap();
}

#[test]
fn a_store_of_a_newer_format_is_refused_with_exit_2_by_serve_status_and_check_config() {
    let env = Env::new();
    let receipt = populated(&env);
    set_meta(&env, "format_version", "9");
    let version = env!("CARGO_PKG_VERSION");
    for args in [
        vec!["serve"],
        vec!["status", receipt.as_str()],
        vec!["check-config", "--store"],
    ] {
        let (code, out, err) = env.kim(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(
            err.contains("format version 9")
                && err.contains(&format!(
                    "this kim ({version}) reads format version {} at most",
                    kim::store::format::FORMAT_VERSION
                )),
            "{args:?}: {err}"
        );
    }
    // Nothing was changed: still format 9.
    let db = sled::open(env.path("store")).unwrap();
    let v = db.open_tree("meta").unwrap().get("format_version").unwrap();
    assert_eq!(v.as_deref(), Some(&b"9"[..]));
}

#[test]
fn the_kim_version_that_last_wrote_the_store_is_recorded_and_shown() {
    let env = Env::new();
    let receipt = populated(&env);
    let version = env!("CARGO_PKG_VERSION");
    let (code, out, err) = env.kim(&["check-config", "--store"]);
    assert_eq!(code, 0, "{err}");
    let format = kim::store::format::FORMAT_VERSION;
    assert!(
        out.contains(&format!(
            "store: format {format} (this kim {version} reads up to {format}), last written by kim {version}"
        )),
        "{out}"
    );
    // A store last written by an older kim says so until this one writes it.
    set_meta(&env, "written_by", "0.0.9");
    let (_, out, _) = env.kim(&["check-config", "--store"]);
    assert!(out.contains("last written by kim 0.0.9"), "{out}");
    let (code, _, err) = env.kim(&["status", &receipt]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = env.kim(&["check-config", "--store"]);
    assert!(
        out.contains(&format!("last written by kim {version}")),
        "{out}"
    );
}

/// Makes an audit signing key `name` in the installation: its key id.
fn signing_key(env: &Env, name: &str) -> String {
    let (code, _, err) = env.kim(&[
        "keys",
        "signing-init",
        "--out",
        env.path(name).to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let public =
        kim::audit::checkpoint::read_public_key(&env.path(&format!("{name}.pub"))).unwrap();
    kim::audit::checkpoint::key_id(&public)
}

fn audit_config(env: &Env, key: &str, trusted: &[&str]) {
    let trusted: Vec<String> = trusted
        .iter()
        .map(|t| format!("\"{}\"", env.path(t).display()))
        .collect();
    env.write_config(&crate::support::Options {
        extra: Some(format!(
            "[audit]\nsigning_key_file = \"{}\"\ncheckpoint_file = \"{}\"\ntrusted_keys = [{}]\n",
            env.path(key).display(),
            env.path("checkpoints.jsonl").display(),
            trusted.join(", ")
        )),
        ..crate::support::Options::default()
    });
}

#[test]
fn audit_verify_passes_across_a_signing_key_rotation_only_with_both_keys_trusted() {
    let env = Env::new();
    let old_id = signing_key(&env, "audit-2025.key");
    let new_id = signing_key(&env, "audit-2026.key");
    audit_config(&env, "audit-2025.key", &[]);
    populated(&env); // a checkpoint signed by the 2025 key at the stop

    // A new year, a new signing key; the old one's public half trusted.
    audit_config(&env, "audit-2026.key", &["audit-2025.key.pub"]);
    let k = env.start();
    assert!(
        k.wait_for_log("the audit signing key changed"),
        "{}",
        k.log_text()
    );
    crate::support::post_accepted(&env, k.addr, &simple("KNT/KEYS/2"));
    assert!(k.terminate(Duration::from_secs(20)).success());

    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 0, "both keys trusted: {out}{err}");
    assert!(out.contains("verifies"), "{out}");

    // key_rotated names the kind of key and both key ids.
    let (code, out, _) = env.kim(&["audit", "list", "--json"]);
    assert_eq!(code, 0);
    let events: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rotated: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "key_rotated")
        .collect();
    assert_eq!(rotated.len(), 1, "{out}");
    assert_eq!(rotated[0]["detail"]["key"], "audit_signing");
    assert_eq!(rotated[0]["detail"]["old_key"], old_id.as_str());
    assert_eq!(rotated[0]["detail"]["new_key"], new_id.as_str());

    // The first checkpoint under the new key links to the old key's last.
    let file = std::fs::read_to_string(env.path("checkpoints.jsonl")).unwrap();
    let cps: Vec<serde_json::Value> = file
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first_new = cps
        .iter()
        .position(|c| c["key_id"] == new_id.as_str())
        .unwrap();
    assert!(first_new > 0, "{file}");
    let last_old = &cps[first_new - 1];
    assert_eq!(last_old["key_id"], old_id.as_str());
    assert_eq!(cps[first_new]["previous"]["seq"], last_old["seq"], "{file}");
    assert_eq!(cps[first_new]["previous"]["hash"], last_old["hash"]);
    assert_eq!(cps[first_new]["previous"]["key_id"], old_id.as_str());

    // Only the new key trusted: refused, naming the untrusted old key.
    audit_config(&env, "audit-2026.key", &[]);
    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 1, "only the new key: {out}{err}");
    assert!(
        err.contains(&format!("signed by key {old_id}, which is not trusted"))
            && err.contains("trusted_keys"),
        "{err}"
    );
    // --public-key, given more than once, trusts the old key again.
    let old_pub = env.path("audit-2025.key.pub");
    let new_pub = env.path("audit-2026.key.pub");
    let (code, out, err) = env.kim(&[
        "audit",
        "verify",
        "--public-key",
        old_pub.to_str().unwrap(),
        "--public-key",
        new_pub.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");

    // An export: both keys verify it, the new one alone does not.
    let export = env.path("audit.jsonl");
    let (code, _, err) = env.kim(&["audit", "export", "--out", export.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let verify_file = |keys: &[&Path]| {
        let mut args = vec!["audit", "verify", "--file", export.to_str().unwrap()];
        for k in keys {
            args.extend(["--public-key", k.to_str().unwrap()]);
        }
        env.kim(&args)
    };
    let (code, out, err) = verify_file(&[&old_pub, &new_pub]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = verify_file(&[&new_pub]);
    assert_eq!(code, 1);
    assert!(err.contains("which is not trusted"), "{err}");
}

//! The audit archive (store format 3) with the real binary: events sent
//! through the daemon, then archived into files as the daemon does with
//! older events (`Store::audit_compact`, here with nothing kept loose): the
//! report's figures, `audit list` and `audit verify` are the same; the
//! daemon serves and appends on it; a backup holds it and a restore checks
//! it; the files hold no personal data; and an event altered inside a file
//! is named by `audit verify` and `report`.

use std::time::Duration;

use serde_json::Value;

use crate::report::{report, wait_state, ROLL, SCHOOLS};
use crate::support::{post_accepted, simple, Env};

/// The figures of `kim report --json`, without the `audit` block.
fn figures(env: &Env) -> Value {
    let (code, out, err) = report(env, "--json");
    assert_eq!(code, 0, "{err}");
    let mut j: Value = serde_json::from_str(&out).unwrap();
    j.as_object_mut().unwrap().remove("audit");
    j
}

fn listed(env: &Env) -> Value {
    let (code, out, err) = env.kim(&["audit", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn verify(env: &Env) -> (i32, String) {
    let (code, out, err) = env.kim(&["audit", "verify"]);
    (code, format!("{out}{err}"))
}

#[test]
fn archived_audit_events_give_the_same_figures_back_up_restore_and_name_an_alteration() {
    let env = Env::new();
    env.import(SCHOOLS, ROLL);
    let k = env.start();
    // About 330 events: more than one chunk of 256.
    let receipts: Vec<String> = (0..64)
        .map(|i| post_accepted(&env, k.addr, &simple(&format!("KNT/ARC/{i}"))))
        .collect();
    for r in &receipts {
        wait_state(&env, k.addr, r, "delivered");
    }
    assert!(k.terminate(Duration::from_secs(30)).success());
    let before = figures(&env);
    assert_eq!(before["received"]["notifications"], 64, "{before:#}");
    assert_eq!(before["outcomes"]["delivered"], 64, "{before:#}");
    let list = listed(&env);
    let events = list.as_array().unwrap().len();
    assert!(events > 300, "{events} events");

    let chunks = {
        let master = kim::store::crypto::MasterKey::load(&env.path("master.key")).unwrap();
        let store = kim::store::Store::open(&env.path("store"), &master).unwrap();
        store.audit_compact(0, usize::MAX).unwrap()
    };
    assert!(chunks >= 1, "{chunks} chunks");
    let file = kim::store::audit_archive::file_path(&env.path("store"), 1);
    assert!(file.exists());
    let bytes = std::fs::read(&file).unwrap();
    for secret in ["Amelia", "Khan", "2014-03-09", "ME14 1XX"] {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "{secret} in the archive"
        );
    }

    assert_eq!(figures(&env), before, "the same figures from the archive");
    assert_eq!(listed(&env), list, "the same listing");
    let (code, out) = verify(&env);
    assert_eq!(code, 0, "{out}");

    // The daemon reads and appends on an archived store.
    let k = env.start();
    assert_eq!(figures(&env), before, "the same figures through the daemon");
    let last = post_accepted(&env, k.addr, &simple("KNT/ARC/LAST"));
    wait_state(&env, k.addr, &last, "delivered");
    assert!(k.terminate(Duration::from_secs(30)).success());
    let (code, out) = verify(&env);
    assert_eq!(code, 0, "{out}");
    let with_last = figures(&env);
    assert_eq!(with_last["received"]["notifications"], 65, "{with_last:#}");

    // A backup holds the archive; a restore checks the chain through it.
    let out = env.path("backup");
    let (code, stdout, err) = env.kim(&["backup", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(out
        .join("store/audit")
        .join(file.file_name().unwrap())
        .exists());
    let store = env.path("store");
    std::fs::rename(&store, env.path("store.before")).unwrap();
    let (code, stdout, err) = env.kim(&[
        "restore",
        out.to_str().unwrap(),
        "--to",
        store.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    let (code, out) = verify(&env);
    assert_eq!(code, 0, "{out}");
    assert_eq!(figures(&env), with_last, "the same figures after a restore");

    // Event 5 altered inside the file: named, and no report.
    let file = kim::store::audit_archive::file_path(&store, 1);
    let mut bytes = std::fs::read(&file).unwrap();
    let ranges = kim::store::audit_archive::decode(&bytes).unwrap();
    let fifth = ranges[4].clone();
    let text = String::from_utf8(bytes[fifth.clone()].to_vec()).unwrap();
    let at = fifth.start + text.find("\"actor\":\"").unwrap() + 9;
    bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
    std::fs::write(&file, &bytes).unwrap();
    let (code, out) = verify(&env);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("audit event 5:") && out.contains("altered"),
        "{out}"
    );
    let (code, out, err) = report(&env, "--json");
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("audit event 5:"), "{err}");
}

//! The store fixtures, one per format kim has written (issue 14 item 6):
//! `tests/fixtures/store-vN/` holds a small store written by the real
//! binary at format N, its (test-only) master key and audit signing key, the
//! checkpoint file and `expected.json`. The tests open a copy of each with
//! today's code (migrating it) and assert what must survive any migration:
//! receipts, states, payload content, an audit chain that verifies. The
//! ignored generator makes the fixture of today's format
//! (`cargo test --test it generate_store_fixture -- --ignored`): run it
//! before a change of format, so the old format stays tested.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{json, Value};

use crate::support::{rt, Env, Kim, Options};

const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Fernhollow Primary,Ms Quill,dsl@fernhollow.example,,\n\
118766,Brackenmoor Academy,Mr Tallow,dsl@brackenmoor.example,,\n";

/// Fictional pupils: Wren Ashdown (one match), two Orrin Vell born the same
/// day at two schools (a police Orrin Vell goes to review), Juniper Lark.
const ROLL: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
FX-1,Wren,Ashdown,,2014-02-11,ZZ1 1AA,118765\n\
FX-2,Orrin,Vell,,2015-06-21,ZZ2 2BB,118765\n\
FX-3,Orrin,Vell,,2015-06-21,ZZ3 3CC,118766\n\
FX-4,Juniper,Lark,,2016-09-30,ZZ4 4DD,118766\n";

pub fn fixture_dir(format: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/store-v{format}"))
}

/// A notification about one fictional child.
fn body(reference: &str, given: &str, family: &str, dob: &str, postcode: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "police_reference": reference,
        "incident": {
            "occurred_at": "2026-11-30T21:15:00Z",
            "category": "domestic_abuse",
            "summary_for_school": format!("Fixture incident {reference}: officers attended.")
        },
        "children": [{
            "given_name": given, "family_name": family, "date_of_birth": dob,
            "postcode": postcode, "involvement": "present"
        }]
    }))
    .unwrap()
}

/// The police view of `receipt`.
fn police_get(env: &Env, addr: std::net::SocketAddr, receipt: &str) -> Value {
    let a = rt()
        .block_on(env.kent().once(
            addr,
            Method::GET,
            &format!("/v1/notifications/{receipt}"),
            None,
        ))
        .unwrap();
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    a.json()
}

/// Waits (bounded) until the child's state is `want`.
fn wait_state(env: &Env, k: &Kim, receipt: &str, want: &str) {
    let start = Instant::now();
    loop {
        let v = police_get(env, k.addr, receipt);
        if v["children"][0]["state"] == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{receipt} never {want}: {v}\n{}",
            k.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `[audit]` section for a signing key and checkpoint file in `dir`.
fn audit_section(dir: &Path) -> String {
    format!(
        "[audit]\nsigning_key_file = \"{}\"\ncheckpoint_file = \"{}\"\n",
        dir.join("audit.key").display(),
        dir.join("checkpoints.jsonl").display()
    )
}

/// Makes `tests/fixtures/store-vN/` (N: today's format) with the real binary: a delivered
/// notification (file transport), one in review (namesakes), one whose
/// alert is queued for retry (SMTP to a closed loopback port), a roll of
/// four fictional pupils, two schools, the audit events of all that and a
/// signed checkpoint at each clean stop.
#[test]
#[ignore = "re-makes the committed fixture; run by hand after a format change"]
fn generate_store_fixture() {
    let env = Env::with(Options::default());
    let (code, _, err) = env.kim(&[
        "keys",
        "signing-init",
        "--out",
        env.path("audit.key").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let audit = audit_section(env.dir.path());
    env.write_config(&Options {
        extra: Some(audit.clone()),
        ..Options::default()
    });
    env.import(SCHOOLS, ROLL);

    let k = env.start();
    let delivered = crate::support::post_accepted(
        &env,
        k.addr,
        &body("FX/DELIVERED/1", "Wren", "Ashdown", "2014-02-11", "ZZ1 1AA"),
    );
    let review = crate::support::post_accepted(
        &env,
        k.addr,
        &body("FX/REVIEW/1", "Orrin", "Vell", "2015-06-21", "ZZ9 9ZZ"),
    );
    wait_state(&env, &k, &delivered, "delivered");
    wait_state(&env, &k, &review, "needs_review");
    assert!(k.terminate(Duration::from_secs(20)).success());

    // A closed loopback port: the alert waits for a retry.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    env.write_config(&Options {
        mail: Some(crate::support::smtp::mail_config(
            port,
            &env.path("certs/ca.crt"),
        )),
        extra: Some(audit),
        ..Options::default()
    });
    let k = env.start();
    let queued = crate::support::post_accepted(
        &env,
        k.addr,
        &body("FX/QUEUED/1", "Juniper", "Lark", "2016-09-30", "ZZ4 4DD"),
    );
    wait_state(&env, &k, &queued, "matched");
    assert!(k.terminate(Duration::from_secs(20)).success());

    let format = kim::store::format::FORMAT_VERSION;
    let out = fixture_dir(format);
    if out.exists() {
        for name in [
            "store",
            "master.key",
            "audit.key",
            "audit.key.pub",
            "checkpoints.jsonl",
            "expected.json",
        ] {
            let p = out.join(name);
            if p.is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else if p.exists() {
                std::fs::remove_file(&p).unwrap();
            }
        }
    }
    std::fs::create_dir_all(&out).unwrap();
    copy_tree(&env.path("store"), &out.join("store"));
    for f in [
        "master.key",
        "audit.key",
        "audit.key.pub",
        "checkpoints.jsonl",
    ] {
        std::fs::copy(env.path(f), out.join(f)).unwrap();
    }
    let expected = json!({
        "format": format,
        "notifications": [
            {"receipt": delivered, "reference": "FX/DELIVERED/1", "state": "delivered",
             "school_urn": "118765", "given_name": "Wren", "family_name": "Ashdown"},
            {"receipt": review, "reference": "FX/REVIEW/1", "state": "needs_review",
             "given_name": "Orrin", "family_name": "Vell"},
            {"receipt": queued, "reference": "FX/QUEUED/1", "state": "matched",
             "school_urn": "118766", "given_name": "Juniper", "family_name": "Lark"}
        ],
        "schools": ["118765", "118766"],
        "roll_pupils": 4
    });
    std::fs::write(
        out.join("expected.json"),
        serde_json::to_string_pretty(&expected).unwrap() + "\n",
    )
    .unwrap();
}

/// Copies a folder tree (files and folders only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Copies the fixture into a fresh installation (its store, keys and
/// checkpoint file in place of the new ones).
fn installed_fixture(format: u32) -> (Env, Value) {
    let fx = fixture_dir(format);
    let env = Env::new();
    copy_tree(&fx.join("store"), &env.path("store"));
    std::fs::remove_file(env.path("master.key")).unwrap();
    for f in [
        "master.key",
        "audit.key",
        "audit.key.pub",
        "checkpoints.jsonl",
    ] {
        std::fs::copy(fx.join(f), env.path(f)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    for (f, mode) in [("master.key", 0o400), ("audit.key", 0o400)] {
        std::fs::set_permissions(env.path(f), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(env.path("store"), std::fs::Permissions::from_mode(0o700)).unwrap();
    env.write_config(&Options {
        extra: Some(audit_section(env.dir.path())),
        ..Options::default()
    });
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fx.join("expected.json")).unwrap()).unwrap();
    (env, expected)
}

#[test]
fn the_store_fixture_of_format_1_opens_with_todays_code() {
    opens_with_todays_code(1);
}

#[test]
fn the_store_fixture_of_format_2_opens_with_todays_code() {
    opens_with_todays_code(2);
}

fn opens_with_todays_code(format: u32) {
    let (env, expected) = installed_fixture(format);
    assert_eq!(expected["format"], format, "{expected}");
    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 0, "audit verify on the fixture: {out}{err}");
    assert!(out.contains("verifies"), "{out}");

    let notifications = expected["notifications"].as_array().unwrap();
    assert_eq!(notifications.len(), 3);
    for n in notifications {
        let receipt = n["receipt"].as_str().unwrap();
        let (code, out, err) = env.kim(&["status", receipt, "--reveal", "--json"]);
        assert_eq!(code, 0, "status {receipt}: {err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["receipt_id"], n["receipt"], "{v}");
        assert_eq!(v["police_reference"], n["reference"], "{v}");
        assert_eq!(v["force"], "kent", "{v}");
        assert_eq!(v["children"][0]["state"], n["state"], "{receipt}: {v}");
        if let Some(urn) = n.get("school_urn") {
            assert_eq!(&v["children"][0]["school_urn"], urn, "{v}");
        }
        // The sealed payload opens and holds what the police sent.
        let text = v["notification"].to_string();
        for field in ["given_name", "family_name", "reference"] {
            let want = n[field].as_str().unwrap();
            assert!(text.contains(want), "{receipt}: {want} not in {text}");
        }
    }
    let (code, out, _) = env.kim(&["schools", "list", "--json"]);
    assert_eq!(code, 0);
    for urn in expected["schools"].as_array().unwrap() {
        assert!(out.contains(urn.as_str().unwrap()), "{out}");
    }
    let (code, out, err) = env.kim(&[
        "roll",
        "find",
        "--family",
        "Vell",
        "--given",
        "Orrin",
        "--dob",
        "2015-06-21",
    ]);
    assert!(
        code == 0 && out.contains("FX-2") && out.contains("FX-3"),
        "roll find: {code} {out}{err}"
    );

    // The daemon serves it: the police see the same states.
    let k = env.start();
    for n in notifications {
        let v = police_get(&env, k.addr, n["receipt"].as_str().unwrap());
        assert_eq!(v["police_reference"], n["reference"], "{v}");
    }
    assert!(k.terminate(Duration::from_secs(20)).success());
    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 0, "audit verify after a run: {out}{err}");
}

//! The admin socket: the CLI answers the same with the daemon running (over
//! the socket) and stopped (on the store); changes through the socket are
//! audited with the caller's OS user; the socket is 0600; a user the socket
//! does not let in gets a clear message (exit 2); a caller the daemon does
//! not admit is refused and the refusal is audited.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::{Env, Options, KIM};

pub(crate) const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,,\n\
118766,Oakwood School,Mr Oak,dsl@oakwood.example,,\n";

pub(crate) const ROLL: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
KCC-1,Zebediah,Quixotic-Marsh,Zeb,2013-05-17,QX9 7ZZ,118765\n\
KCC-2,Jack,Smith,,2015-05-05,ME1 1AA,118765\n\
KCC-3,Jack,Smith,,2015-05-05,ME2 2BB,118766\n";

fn installed(opts: Options) -> Env {
    let env = Env::with(opts);
    env.import(SCHOOLS, ROLL);
    env
}

/// An installation whose admin socket is 0660 for group 65534 (with `more`
/// appended to `[admin]`), running.
fn socket_for_nogroup(more: &str) -> (Env, crate::support::Kim) {
    let nogroup = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(65534))
        .unwrap()
        .expect("group 65534")
        .name;
    let env = installed(Options::default());
    let text = std::fs::read_to_string(&env.config).unwrap().replace(
        "[admin]\nsocket = \"admin.sock\"",
        &format!("[admin]\nsocket = \"admin.sock\"\ngroup = \"{nogroup}\"{more}"),
    );
    std::fs::write(&env.config, text).unwrap();
    let k = env.start();
    (env, k)
}

fn post(
    env: &Env,
    addr: std::net::SocketAddr,
    reference: &str,
    given: &str,
    family: &str,
    dob: &str,
) -> String {
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
    let body = serde_json::to_vec(&json!({
        "police_reference": reference,
        "incident": {"occurred_at": occurred, "category": "domestic_abuse"},
        "children": [{"given_name": given, "family_name": family, "date_of_birth": dob, "involvement": "present"}]
    }))
    .unwrap();
    crate::support::post_accepted(env, addr, &body)
}

#[test]
fn the_cli_answers_the_same_with_the_daemon_running_and_stopped() {
    let env = installed(Options::default());
    let k = env.start();
    let matched = post(
        &env,
        k.addr,
        "KNT/ADM/1",
        "Zebediah",
        "Quixotic-Marsh",
        "2013-05-17",
    );
    let review = post(&env, k.addr, "KNT/ADM/2", "Jack", "Smith", "2015-05-05");
    std::thread::sleep(Duration::from_millis(800));

    // The matched child's alert is delivered (the file transport) before
    // the listings are compared.
    let eml = env.path("outbox").join(format!("{matched}.0.eml"));
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(10) && !eml.exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));

    let socket = env.path("admin.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the admin socket is owner-only");

    let verbs: Vec<Vec<&str>> = vec![
        vec!["schools", "list", "--json"],
        vec!["schools", "list"],
        vec!["roll", "stats", "--json"],
        vec!["review", "list", "--json"],
        vec!["review", "list"],
        vec!["status", &matched, "--json"],
        vec!["status", &review],
        vec!["alerts", "list", "--receipt", &matched, "--json"],
        vec!["alerts", "list", "--receipt", &matched],
        vec![
            "alerts",
            "list",
            "--state",
            "delivered",
            "--since",
            "7d",
            "--school",
            "118765",
        ],
        vec!["alerts", "list", "--late", "--json"],
    ];
    let running: Vec<(i32, String)> = verbs
        .iter()
        .map(|v| {
            let (c, out, err) = env.kim(v);
            assert_eq!(c, 0, "{v:?}: {err}");
            (c, out)
        })
        .collect();
    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("verifies"));
    let (code, _, err) = env.kim(&["status", "0000-0000-0000-0000"]);
    assert_eq!(code, 1);
    assert!(err.contains("no such receipt"), "{err}");
    // Without --reveal the queue holds no names; with it, it does, and the
    // reveal is audited with the OS user.
    assert!(!running[4].1.contains("Jack"));
    let (code, out, err) = env.kim(&["review", "list", "--reveal"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Jack Smith, born 2015-05-05"), "{out}");
    let (code, out, _) = env.kim(&["review", "list", "--json", "--reveal"]);
    assert_eq!(code, 0);
    assert!(out.contains("\"given_name\": \"Jack\""), "{out}");

    // A decision through the socket, while the daemon runs: audited with
    // the OS user, and the daemon's delivery worker sends the alert.
    let (code, out, err) = env.kim(&["review", "assign", &review, "0", "118766"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("assigned"), "{out}");
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(10)
        && !env.path("outbox").join(format!("{review}.0.eml")).exists()
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(env.path("outbox").join(format!("{review}.0.eml")).exists());
    assert!(k.terminate(Duration::from_secs(30)).success());
    assert!(!socket.exists(), "the socket is removed at a clean stop");

    // Stopped: the same commands on the store give the same answers (the
    // review queue and status changed only by the assign, so compare the
    // ones it did not touch, and re-check the queue's new state).
    for (i, v) in verbs.iter().enumerate() {
        if v.contains(&review.as_str()) || v[0] == "review" {
            continue;
        }
        let (c, out, err) = env.kim(v);
        assert_eq!(
            (c, &out),
            (running[i].0, &running[i].1),
            "{v:?} differs: {err}"
        );
    }
    let (_, out, _) = env.kim(&["review", "list"]);
    assert!(out.contains("empty"), "{out}");
    let (code, out, _) = env.kim(&["audit", "list", "--receipt", &review, "--json"]);
    assert_eq!(code, 0);
    let events: serde_json::Value = serde_json::from_str(&out).unwrap();
    let reviewed = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "reviewed")
        .expect("the assign is audited");
    assert_eq!(reviewed["actor"], "admin:root");
    let (_, out, _) = env.kim(&["audit", "list", "--json"]);
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    let reveals = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "admin_access" && e["detail"]["action"] == "reveal_review")
        .count();
    assert_eq!(reveals, 2, "each reveal is audited");
    assert!(!out.contains("Jack"), "the audit holds no names");
}

#[test]
fn a_user_the_socket_does_not_let_in_gets_a_clear_message() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("SKIPPED: needs root to run the CLI as another user");
        return;
    }
    let env = installed(Options::default());
    let k = env.start();
    // The CLI must be able to read the config to find the socket.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(KIM)
        .args(["--config", env.config.to_str().unwrap(), "review", "list"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("permission denied on the admin socket"),
        "{err}"
    );
    assert!(k.terminate(Duration::from_secs(30)).success());
}

#[test]
fn a_caller_the_daemon_does_not_admit_is_refused_and_audited() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("SKIPPED: needs root to run the CLI as another user");
        return;
    }
    // The socket is 0660 for that group, but the group is not admitted.
    let (env, k) = socket_for_nogroup("\nusers = [\"someone-else\"]");
    let socket = env.path("admin.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(KIM)
        .args([
            "--config",
            env.config.to_str().unwrap(),
            "review",
            "list",
            "--json",
        ])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused") && err.contains("not admitted"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing answered");
    // The same caller in a loop: counted, not one event (and flush) each.
    let size = |env: &crate::support::Env| {
        std::fs::read_dir(env.path("store"))
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum::<u64>()
    };
    let before = size(&env);
    for _ in 0..100 {
        let out = Command::new(KIM)
            .args(["--config", env.config.to_str().unwrap(), "status", "R"])
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
    }
    let grew = size(&env).saturating_sub(before);
    assert!(k.terminate(Duration::from_secs(30)).success());
    let (code, out, _) = env.kim(&["audit", "list", "--json"]);
    assert_eq!(code, 0);
    let events: serde_json::Value = serde_json::from_str(&out).unwrap();
    let refusals: Vec<&serde_json::Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "admin_access" && e["detail"]["outcome"] == "refused")
        .collect();
    assert_eq!(
        refusals.len(),
        2,
        "one at once, one for the repeats: {refusals:?}"
    );
    assert_eq!(refusals[1]["detail"]["repeated"], 100, "{refusals:?}");
    assert_eq!(refusals[1]["detail"]["verbs"][0], "status");
    eprintln!(
        "101 refused requests: {} audit events, store grew {grew} bytes meanwhile",
        refusals.len()
    );
    let refused = refusals[0];
    assert_eq!(refused["detail"]["verb"], "review_list");
    assert!(
        refused["actor"] == "admin:nobody" || refused["actor"] == "admin:uid65534",
        "{refused}"
    );
}

/// The daemon audits a caller whose uid has no name as `admin:uidN`, the
/// way the CLI names such a user (`kim::audit::Actor`), not `uid:N`.
#[test]
fn a_caller_without_a_name_is_audited_as_admin_uid() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("SKIPPED: needs root to run the CLI as another user");
        return;
    }
    const UID: u32 = 4_000_000_123;
    assert!(
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(UID))
            .unwrap()
            .is_none(),
        "uid {UID} must have no name here"
    );
    let (env, k) = socket_for_nogroup("");
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(KIM)
        .args(["--config", env.config.to_str().unwrap(), "status", "R"])
        .uid(UID)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin:uid4000000123 is not admitted"), "{err}");
    assert!(k.terminate(Duration::from_secs(30)).success());
    let (code, out, _) = env.kim(&["audit", "list", "--json"]);
    assert_eq!(code, 0);
    let events: serde_json::Value = serde_json::from_str(&out).unwrap();
    let refused: Vec<&serde_json::Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "admin_access" && e["detail"]["outcome"] == "refused")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["actor"], "admin:uid4000000123", "{refused:?}");
}

#[test]
fn keys_rotate_re_seals_the_store_and_keeps_everything_readable() {
    let env = installed(Options::default());
    let k = env.start();
    let receipt = post(
        &env,
        k.addr,
        "KNT/ROT/1",
        "Zebediah",
        "Quixotic-Marsh",
        "2013-05-17",
    );
    std::thread::sleep(Duration::from_millis(500));
    // Not while the daemon runs.
    let (code, _, err) = env.kim(&["keys", "rotate"]);
    assert_eq!(code, 1);
    assert!(err.contains("stop it first"), "{err}");
    assert!(k.terminate(Duration::from_secs(30)).success());
    let (_, before, _) = env.kim(&["status", &receipt, "--json"]);
    let old_key = std::fs::read(env.path("master.key")).unwrap();

    let (code, out, err) = env.kim(&["keys", "rotate"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rotated the master key") && out.contains("1 notifications, 3 pupils"),
        "{out}"
    );
    assert_ne!(std::fs::read(env.path("master.key")).unwrap(), old_key);
    let mode = std::fs::metadata(env.path("master.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o400);

    // Everything answers the same under the new key; the rotation is audited.
    let (code, after, err) = env.kim(&["status", &receipt, "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(after, before);
    let (code, out, _) = env.kim(&["status", &receipt, "--reveal"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Zebediah"),
        "the sealed notification opens under the new key"
    );
    assert_eq!(env.kim(&["audit", "verify"]).0, 0);
    let (_, out, _) = env.kim(&["audit", "list"]);
    assert!(out.contains("key_rotated"), "{out}");
    let (_, out, _) = env.kim(&["roll", "stats", "--json"]);
    assert!(out.contains("\"pupils\": 3"), "{out}");
    // The old store and key are kept beside, and the old store holds no
    // name in the clear either.
    let kept: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.iter().any(|n| n.starts_with("store.pre-rotation-")),
        "{kept:?}"
    );
    assert!(
        kept.iter().any(|n| n.starts_with("master.key.old-")),
        "{kept:?}"
    );
    let hits =
        crate::support::files_containing(env.dir.path(), &["Zebediah", "Quixotic", "QX9 7ZZ"]);
    let hits: Vec<_> = hits
        .into_iter()
        .filter(|(p, _)| !p.ends_with("roll.csv") && !p.to_string_lossy().contains("outbox"))
        .collect();
    assert!(hits.is_empty(), "{hits:?}");

    // The daemon starts on the rotated store with the new key. (A re-send
    // after rotation is still recognised: store::rotate's unit test.)
    let k = env.start();
    let (code, out, _) = env.kim(&["status", &receipt, "--json"]);
    assert_eq!((code, out), (0, before));
    assert!(k.terminate(Duration::from_secs(30)).success());
}

#[test]
fn idle_admin_connections_time_out_and_too_many_are_answered_busy() {
    use std::io::Read;
    let env = installed(Options::default());
    let kim = env.start();
    let socket = env.path("admin.sock");
    // Sixteen connections that never send a request hold every slot.
    let idle: Vec<_> = (0..16)
        .map(|_| std::os::unix::net::UnixStream::connect(&socket).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (code, _, err) = env.kim(&["roll", "stats"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("busy"), "{err}");
    // The daemon closes idle connections after its request timeout (5 s).
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut rest = Vec::new();
        let n = c.read_to_end(&mut rest).unwrap();
        assert_eq!(n, 0, "closed without an answer");
    }
    assert!(kim.wait_for_log("no request within the timeout"));
    let (code, out, err) = env.kim(&["roll", "stats"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 pupils"), "{out}");
}

#[test]
fn imports_and_exports_through_the_daemon_use_the_file_the_cli_opened() {
    use std::io::{BufRead, Write};
    let env = installed(Options::default());
    let _kim = env.start();
    // The CLI opens the file with its user's rights and passes it.
    let roll = env.path("roll-again.csv");
    std::fs::write(&roll, ROLL).unwrap();
    let (code, out, err) = env.kim(&["roll", "import", roll.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 3 pupils"), "{out}");
    // A path alone is not enough: the daemon never opens an admin's path.
    let mut c = std::os::unix::net::UnixStream::connect(env.path("admin.sock")).unwrap();
    writeln!(
        c,
        "{}",
        json!({"verb": "roll_import", "file": roll.to_str().unwrap()})
    )
    .unwrap();
    let mut answer = String::new();
    std::io::BufReader::new(&c).read_line(&mut answer).unwrap();
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["code"], 2, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("open file passed"),
        "{answer}"
    );
    // A folder is not an import file: the daemon refuses what was passed.
    let (code, _, err) = env.kim(&["roll", "import", env.path("").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    // A file the CLI cannot open: said before the daemon is asked.
    let (code, _, err) = env.kim(&["roll", "import", "/nonexistent/roll.csv"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot open /nonexistent/roll.csv"), "{err}");
    // An export through the daemon lands in the file the CLI created.
    let export = env.path("through-the-daemon.jsonl");
    let (code, out, err) = env.kim(&["audit", "export", "--out", export.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("wrote"), "{out}");
    let text = std::fs::read_to_string(&export).unwrap();
    assert!(text.starts_with("{\"event\""), "{text}");
    assert!(text.contains("roll_import"));
    let (code, _, err) = env.kim(&["audit", "export", "--out", export.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("never overwrites"), "{err}");
    assert_eq!(std::fs::read_to_string(&export).unwrap(), text);
}

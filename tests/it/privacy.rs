//! No personal data in the clear: after a run with known names, nothing in
//! the store folder, the log or the metrics contains them.

use hyper::Method;
use serde_json::json;

use crate::support::{files_containing, notification, rt, Env};

const GIVEN: &str = "Zebediah";
const FAMILY: &str = "Quixotic-Marsh";
const OTHER: &str = "Zed";
const DOB: &str = "2013-05-17";
const POSTCODE: &str = "QX9 7ZZ";

#[test]
fn names_dates_of_birth_and_postcodes_never_reach_disk_logs_or_metrics() {
    let env = Env::new();
    let kim = env.start();
    let metrics_addr = kim.metrics.expect("metrics listener");
    let rt = rt();
    rt.block_on(async {
        let mut c = env.kent().connect(kim.addr).await.unwrap();
        for i in 0..20 {
            let body = notification(&format!("KNT/PRIV/{i}"), GIVEN, FAMILY, DOB, POSTCODE);
            let a = c
                .send(Method::POST, "/v1/notifications", Some(&body))
                .await
                .unwrap();
            assert_eq!(a.status, 202);
        }
        // Rejected ones too: an invalid body full of the same data.
        let mut bad: serde_json::Value =
            serde_json::from_slice(&notification("KNT/PRIV/BAD", GIVEN, FAMILY, DOB, POSTCODE))
                .unwrap();
        bad["children"][0]["involvement"] = json!(format!("{GIVEN} {FAMILY}"));
        bad["children"][0]["date_of_birth"] = json!(format!("{DOB}x"));
        bad["children"][0]["postcode"] = json!(format!("{POSTCODE}!!"));
        let a = c
            .send(
                Method::POST,
                "/v1/notifications",
                Some(&serde_json::to_vec(&bad).unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(a.status, 422);
        for needle in [GIVEN, FAMILY, DOB, POSTCODE] {
            assert!(!a.text().contains(needle), "error body contains {needle}");
        }
    });
    // Metrics over plain HTTP on loopback.
    let metrics = std::process::Command::new("curl")
        .arg("--silent")
        .arg(format!("http://{metrics_addr}/metrics"))
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout).into_owned();
    assert!(
        metrics.contains("kim_notifications_accepted_total 20"),
        "{metrics}"
    );
    let needles = [GIVEN, FAMILY, DOB, POSTCODE, "Quixotic"];
    for n in needles {
        assert!(!metrics.contains(n), "metrics contain {n}");
    }
    let status = kim.terminate(std::time::Duration::from_secs(30));
    assert!(status.success());

    // The store folder, byte for byte, and the log.
    let store_hits = files_containing(&env.path("store"), &needles);
    assert!(
        store_hits.is_empty(),
        "personal data in the clear on disk: {store_hits:?}"
    );
    let log = std::fs::read_to_string(env.path("kim.log")).unwrap();
    assert!(log.lines().count() > 20, "the log has the requests: {log}");
    for n in needles {
        assert!(!log.contains(n), "the log contains {n}");
    }
    // Sanity: the grep itself finds the name where it is in the clear.
    let plain = env.path("plain.txt");
    std::fs::write(&plain, format!("{GIVEN} {FAMILY}")).unwrap();
    assert!(!files_containing(env.dir.path(), &[GIVEN]).is_empty());
    let _ = OTHER;
}

const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,,01622 111111\n";
const ROLL: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
KCC-1,Zebediah,Quixotic-Marsh,,2013-05-17,QX9 7ZZ,118765\n";

/// Every file and folder under `dir` whose mode lets group or others in.
fn loose_modes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            out.push((d.clone(), mode));
        }
        if d.is_dir() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                stack.push(e.path());
            }
        }
    }
    out
}

#[test]
fn every_file_kim_writes_is_0600_and_every_folder_0700_whatever_the_umask() {
    let env = Env::with(crate::support::Options {
        extra: Some(
            "[audit]\nsigning_key_file = \"audit.key\"\ncheckpoint_every = 2\ncheckpoint_file = \"checkpoints.jsonl\"\n"
                .into(),
        ),
        ..Default::default()
    });
    let key = env.path("audit.key");
    assert_eq!(
        env.kim(&["keys", "signing-init", "--out", key.to_str().unwrap()])
            .0,
        0
    );
    std::fs::write(env.path("schools.csv"), SCHOOLS).unwrap();
    std::fs::write(env.path("roll.csv"), ROLL).unwrap();
    // The CLI with the daemon stopped creates the store and the roll files.
    for (what, file) in [("schools", "schools.csv"), ("roll", "roll.csv")] {
        let f = env.path(file);
        let (code, _, err) = env.kim_with_umask("000", &[what, "import", f.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }
    let kim = crate::support::Kim::start_with_umask(&env.config, &env.path("kim.log"), "000");
    rt().block_on(async {
        let mut c = env.kent().connect(kim.addr).await.unwrap();
        for i in 0..3 {
            let body = notification(&format!("KNT/MODE/{i}"), GIVEN, FAMILY, DOB, POSTCODE);
            let a = c
                .send(Method::POST, "/v1/notifications", Some(&body))
                .await
                .unwrap();
            assert_eq!(a.status, 202);
        }
    });
    let start = std::time::Instant::now();
    while std::fs::read_dir(env.path("outbox")).map_or(0, |d| d.count()) < 3
        && start.elapsed() < std::time::Duration::from_secs(20)
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let export = env.path("export.jsonl");
    let (code, _, err) = env.kim_with_umask(
        "000",
        &["audit", "export", "--out", export.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(kim.terminate(std::time::Duration::from_secs(30)).success());
    let mut loose = Vec::new();
    for p in ["store", "outbox", "checkpoints.jsonl", "export.jsonl"] {
        let p = env.path(p);
        assert!(p.exists(), "{} was not written", p.display());
        loose.extend(loose_modes(&p));
    }
    assert!(loose.is_empty(), "readable by group or others: {loose:?}");
}

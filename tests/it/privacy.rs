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

//! The police API contract: validation answers, idempotency, conflicts,
//! per-force references and status scoping.

use hyper::Method;
use serde_json::{json, Value};

use crate::support::{rt, simple, Env};

fn post_json(env: &Env, addr: std::net::SocketAddr, body: &Value) -> (u16, Value, String) {
    let a = rt()
        .block_on(env.kent().once(
            addr,
            Method::POST,
            "/v1/notifications",
            Some(&serde_json::to_vec(body).unwrap()),
        ))
        .unwrap();
    let ct = a
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (a.status, a.json(), ct)
}

/// The JSON pointers a problem+json body names.
fn pointers(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect()
}

fn valid() -> Value {
    serde_json::from_slice(&crate::support::notification(
        "KNT/26/7",
        "Zebediah",
        "Quixotic-Marsh",
        "2013-05-17",
        "QX9 7ZZ",
    ))
    .unwrap()
}

/// Every rule of DESIGN §3 broken once, with the pointer it must name.
fn broken_bodies() -> Vec<(&'static str, Value, &'static str)> {
    let mut cases = Vec::new();
    let mut set = |name: &'static str, ptr: &'static str, f: &dyn Fn(&mut Value)| {
        let mut v = valid();
        f(&mut v);
        cases.push((name, v, ptr));
    };
    set("reference missing", "/police_reference", &|v| {
        v.as_object_mut().unwrap().remove("police_reference");
    });
    set("reference bad chars", "/police_reference", &|v| {
        v["police_reference"] = json!("KNT 26 7")
    });
    set("reference too long", "/police_reference", &|v| {
        v["police_reference"] = json!("K".repeat(65))
    });
    set("occurred_at no offset", "/incident/occurred_at", &|v| {
        v["incident"]["occurred_at"] = json!("2026-11-22T21:40:00")
    });
    set("occurred_at future", "/incident/occurred_at", &|v| {
        v["incident"]["occurred_at"] =
            json!((jiff::Timestamp::now() + jiff::SignedDuration::from_mins(30)).to_string())
    });
    set("category unknown", "/incident/category", &|v| {
        v["incident"]["category"] = json!("burglary")
    });
    set("summary too long", "/incident/summary_for_school", &|v| {
        v["incident"]["summary_for_school"] = json!("x".repeat(501))
    });
    set(
        "summary control char",
        "/incident/summary_for_school",
        &|v| v["incident"]["summary_for_school"] = json!("bell\u{7}"),
    );
    set("no children", "/children", &|v| v["children"] = json!([]));
    set("21 children", "/children", &|v| {
        let c = v["children"][0].clone();
        v["children"] = Value::Array(vec![c; 21]);
    });
    set("given name missing", "/children/0/given_name", &|v| {
        v["children"][0]
            .as_object_mut()
            .unwrap()
            .remove("given_name");
    });
    set("family name too long", "/children/0/family_name", &|v| {
        v["children"][0]["family_name"] = json!("Q".repeat(101))
    });
    set("name control char", "/children/0/given_name", &|v| {
        v["children"][0]["given_name"] = json!("Zeb\u{0}")
    });
    set("11 other names", "/children/0/other_names", &|v| {
        v["children"][0]["other_names"] = json!(vec!["Zed"; 11])
    });
    set("dob impossible", "/children/0/date_of_birth", &|v| {
        v["children"][0]["date_of_birth"] = json!("2013-02-30")
    });
    set("dob 18 or over", "/children/0/date_of_birth", &|v| {
        v["children"][0]["date_of_birth"] = json!("2001-01-01")
    });
    set("dob format", "/children/0/date_of_birth", &|v| {
        v["children"][0]["date_of_birth"] = json!("17/05/2013")
    });
    set("urn not digits", "/children/0/school_urn", &|v| {
        v["children"][0]["school_urn"] = json!("ABC123")
    });
    set(
        "involvement unknown value",
        "/children/0/involvement",
        &|v| v["children"][0]["involvement"] = json!("asleep"),
    );
    set("voice too long", "/children/0/voice_of_child", &|v| {
        v["children"][0]["voice_of_child"] = json!("y".repeat(501))
    });
    set("officer email invalid", "/officer/email", &|v| {
        v["officer"]["email"] = json!("not-an-email")
    });
    set("officer email double dot", "/officer/email", &|v| {
        v["officer"]["email"] = json!("a..b@x.y")
    });
    set(
        "name right-to-left override",
        "/children/0/given_name",
        &|v| v["children"][0]["given_name"] = json!("Zebediah\u{202e}"),
    );
    set("officer phone too long", "/officer/phone", &|v| {
        v["officer"]["phone"] = json!("0".repeat(31))
    });
    set("unknown top field", "/address", &|v| {
        v["address"] = json!("1 High St")
    });
    set("unknown child field", "/children/0/upn", &|v| {
        v["children"][0]["upn"] = json!("A123")
    });
    set("wrong type", "/children/0/given_name", &|v| {
        v["children"][0]["given_name"] = json!(42)
    });
    cases
}

#[test]
fn every_rule_is_rejected_with_problem_json_and_no_personal_data() {
    let env = Env::new();
    let kim = env.start();
    for (name, body, pointer) in broken_bodies() {
        let (status, problem, ct) = post_json(&env, kim.addr, &body);
        assert_eq!(status, 422, "{name}: {problem}");
        assert_eq!(ct, "application/problem+json", "{name}");
        assert_eq!(problem["status"], 422);
        assert!(
            problem["type"].is_string()
                && problem["title"].is_string()
                && problem["detail"].is_string()
        );
        let pointers = pointers(&problem);
        assert!(pointers.contains(&pointer), "{name}: {pointers:?}");
        let text = problem.to_string();
        for secret in ["Zebediah", "Quixotic", "2013-05-17", "QX9", "1 High St"] {
            assert!(
                !text.contains(secret),
                "{name}: error body echoes {secret}: {text}"
            );
        }
    }
    // Nothing was stored for any of them.
    let (status, _, _) = post_json(&env, kim.addr, &valid());
    assert_eq!(
        status, 202,
        "a valid body is still accepted after the rejections"
    );
}

/// Issue 11: the police API refuses what the CSV imports refuse. Each class
/// of forbidden character (controls, line separators, bidi controls,
/// invisible characters), in every name field at once: 422, each field's
/// pointer, and neither the name nor the character echoed back.
#[test]
fn forbidden_characters_are_refused_in_every_name_field() {
    let env = Env::new();
    let kim = env.start();
    let samples = [
        ('\u{7}', "control"),
        ('\u{85}', "C1 control"),
        ('\u{2028}', "line separator"),
        ('\u{2029}', "paragraph separator"),
        ('\u{202e}', "right-to-left override"),
        ('\u{2067}', "right-to-left isolate"),
        ('\u{200f}', "right-to-left mark"),
        ('\u{61c}', "Arabic letter mark"),
        ('\u{200b}', "zero width space"),
        ('\u{200d}', "zero width joiner in a Latin name"),
        ('\u{feff}', "zero width no-break space"),
        ('\u{2060}', "word joiner"),
    ];
    let fields = [
        "/children/0/given_name",
        "/children/0/family_name",
        "/children/0/other_names/1",
        "/officer/name",
    ];
    for (c, what) in samples {
        let mut v = valid();
        let child = &mut v["children"][0];
        child["given_name"] = json!(format!("Zebe{c}diah"));
        child["family_name"] = json!(format!("{c}Quixotic-Marsh"));
        child["other_names"] = json!(["Zeb", format!("Quixotic{c}")]);
        v["officer"] = json!({ "name": format!("PC Zebediah{c}Jones") });
        let (status, problem, ct) = post_json(&env, kim.addr, &v);
        assert_eq!(status, 422, "{what}: {problem}");
        assert_eq!(ct, "application/problem+json", "{what}");
        let pointers = pointers(&problem);
        for field in fields {
            assert!(pointers.contains(&field), "{what}: {field} in {pointers:?}");
        }
        assert_eq!(pointers.len(), fields.len(), "{what}: {pointers:?}");
        let text = problem.to_string();
        for secret in ["Zebe", "Quixotic", "Jones", "2013-05-17", "QX9"] {
            assert!(!text.contains(secret), "{what}: echoes {secret}: {text}");
        }
        assert!(!text.contains(c), "{what}: echoes the character");
    }
    // The joiners Persian needs are not refused, and nothing above was stored.
    let mut v = valid();
    v["children"][0]["other_names"] = json!(["\u{645}\u{6cc}\u{200c}\u{62e}"]);
    let (status, problem, _) = post_json(&env, kim.addr, &v);
    assert_eq!(status, 202, "{problem}");
}

#[test]
fn malformed_json_wrong_type_and_oversize_are_refused() {
    let env = Env::new();
    let kim = env.start();
    let rt = rt();
    let kent = env.kent();
    rt.block_on(async {
        let mut c = kent.connect(kim.addr).await.unwrap();
        // Malformed JSON: 400, and the problem names no input.
        let a = c
            .send(
                Method::POST,
                "/v1/notifications",
                Some(b"{\"police_reference\": \"Zebediah"),
            )
            .await
            .unwrap();
        assert_eq!(a.status, 400);
        assert!(!a.text().contains("Zebediah"));
        assert_eq!(a.headers["content-type"], "application/problem+json");
        // Not JSON: 415.
        let a = c
            .send_with_type(
                Method::POST,
                "/v1/notifications",
                Some(&simple("KNT/415")),
                "text/plain",
            )
            .await
            .unwrap();
        assert_eq!(a.status, 415);
        // JSON with a charset parameter is fine.
        let a = c
            .send_with_type(
                Method::POST,
                "/v1/notifications",
                Some(&simple("KNT/CHARSET")),
                "application/json; charset=utf-8",
            )
            .await
            .unwrap();
        assert_eq!(a.status, 202);
        // Over the body limit (512 KiB): 413.
        let mut big = valid();
        big["incident"]["summary_for_school"] = json!("z".repeat(600 * 1024));
        let mut c = kent.connect(kim.addr).await.unwrap();
        let a = c
            .send(
                Method::POST,
                "/v1/notifications",
                Some(&serde_json::to_vec(&big).unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(a.status, 413);
        // Unknown route and wrong method.
        let mut c = kent.connect(kim.addr).await.unwrap();
        assert_eq!(
            c.send(Method::GET, "/v2/whatever", None)
                .await
                .unwrap()
                .status,
            404
        );
        let a = c
            .send(Method::DELETE, "/v1/notifications", None)
            .await
            .unwrap();
        assert_eq!(a.status, 405);
        assert_eq!(a.headers["allow"], "POST");
        // Health and readiness.
        assert_eq!(
            c.send(Method::GET, "/healthz", None).await.unwrap().status,
            200
        );
        assert_eq!(
            c.send(Method::GET, "/readyz", None).await.unwrap().status,
            200
        );
    });
}

#[test]
fn resend_is_idempotent_conflict_is_409_and_references_are_per_force() {
    let env = Env::new();
    let kim = env.start();
    let rt = rt();
    rt.block_on(async {
        let body = simple("KNT/26/004512");
        let mut kent = env.kent().connect(kim.addr).await.unwrap();
        let first = kent
            .send(Method::POST, "/v1/notifications", Some(&body))
            .await
            .unwrap();
        assert_eq!(first.status, 202);
        let receipt = first.json()["receipt_id"].as_str().unwrap().to_owned();
        assert_eq!(first.json()["status"], "accepted");
        assert_eq!(first.json()["children"], 1);
        assert_eq!(
            first.headers["location"],
            format!("/v1/notifications/{receipt}").as_str()
        );

        // Same force, same reference, same content: 200 with the original receipt.
        let again = kent
            .send(Method::POST, "/v1/notifications", Some(&body))
            .await
            .unwrap();
        assert_eq!(again.status, 200);
        assert_eq!(again.json()["receipt_id"], receipt.as_str());

        // Same force, same reference, different content: 409.
        let mut changed: Value = serde_json::from_slice(&body).unwrap();
        changed["children"][0]["involvement"] = json!("witnessed");
        let c = kent
            .send(
                Method::POST,
                "/v1/notifications",
                Some(&serde_json::to_vec(&changed).unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(c.status, 409);
        assert_eq!(c.headers["content-type"], "application/problem+json");

        // Another force may use the same reference: a new receipt.
        let mut met = env.met().connect(kim.addr).await.unwrap();
        let m = met
            .send(Method::POST, "/v1/notifications", Some(&body))
            .await
            .unwrap();
        assert_eq!(m.status, 202);
        let met_receipt = m.json()["receipt_id"].as_str().unwrap().to_owned();
        assert_ne!(met_receipt, receipt);

        // Status: the sender sees it, with no personal data; the other force gets 404.
        let s = kent
            .send(Method::GET, &format!("/v1/notifications/{receipt}"), None)
            .await
            .unwrap();
        assert_eq!(s.status, 200);
        let sj = s.json();
        assert_eq!(sj["receipt_id"], receipt.as_str());
        assert_eq!(sj["police_reference"], "KNT/26/004512");
        assert_eq!(sj["children"][0]["index"], 0);
        // No roll is imported here: the matching stage may already have
        // sent the child to review.
        let state = sj["children"][0]["state"].as_str().unwrap();
        assert!(["queued", "needs_review"].contains(&state), "{state}");
        assert!(sj["received_at"].is_string());
        assert!(!s.text().contains("Amelia") && !s.text().contains("2014-03-09"));
        let other = met
            .send(Method::GET, &format!("/v1/notifications/{receipt}"), None)
            .await
            .unwrap();
        assert_eq!(other.status, 404);
        let mine = met
            .send(
                Method::GET,
                &format!("/v1/notifications/{met_receipt}"),
                None,
            )
            .await
            .unwrap();
        assert_eq!(mine.status, 200);
        // A receipt that cannot exist, and one that does not: both 404.
        for path in [
            "/v1/notifications/..%2F..%2Fetc",
            "/v1/notifications/AAAA-BBBB-CCCC-DDDD",
        ] {
            assert_eq!(
                kent.send(Method::GET, path, None).await.unwrap().status,
                404
            );
        }
    });
}

#[test]
fn curl_is_an_independent_police_client() {
    let env = Env::new();
    let kim = env.start();
    let body = env.path("body.json");
    std::fs::write(&body, simple("KNT/CURL/1")).unwrap();
    let out = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--write-out", "\n%{http_code}"])
        .arg("--cert")
        .arg(&env.certs.client_cert)
        .arg("--key")
        .arg(&env.certs.client_key)
        .arg("--cacert")
        .arg(&env.certs.ca_cert)
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", body.display()))
        .arg(format!(
            "https://localhost:{}/v1/notifications",
            kim.addr.port()
        ))
        .output()
        .expect("curl is installed (.ci/run installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (json, code) = stdout.rsplit_once('\n').unwrap();
    assert_eq!(code, "202", "{stdout}");
    let v: Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["status"], "accepted");

    // curl without a client certificate is refused at the handshake.
    let out = std::process::Command::new("curl")
        .args(["--silent", "--cacert"])
        .arg(&env.certs.ca_cert)
        .arg(format!("https://localhost:{}/healthz", kim.addr.port()))
        .output()
        .unwrap();
    assert!(!out.status.success(), "curl without a certificate got in");
}

/// Every character outside ASCII written as `\uXXXX` escapes (a surrogate
/// pair for those beyond the BMP): the longest spelling of the same JSON.
fn escape_all(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 3);
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

#[test]
fn the_largest_valid_notification_is_admitted_not_413() {
    let env = Env::new();
    let kim = env.start();
    let name = |c: char| c.to_string().repeat(100);
    // As found: 20 children with 100-character non-ASCII names (~74 KB).
    let text = |c: char| c.to_string().repeat(500);
    let mut n = valid();
    n["police_reference"] = json!("KNT/BIG/1");
    let child = n["children"][0].clone();
    n["children"] = json!((0..20)
        .map(|_| {
            let mut c = child.clone();
            c["given_name"] = json!(name('Ж'));
            c["family_name"] = json!(name('Ł'));
            c["other_names"] = json!(vec![name('Ω'); 10]);
            c["voice_of_child"] = json!(text('é'));
            c
        })
        .collect::<Vec<_>>());
    let body = serde_json::to_vec(&n).unwrap();
    assert!(body.len() > 64 * 1024, "{}", body.len());
    let a = rt()
        .block_on(
            env.kent()
                .once(kim.addr, Method::POST, "/v1/notifications", Some(&body)),
        )
        .unwrap();
    assert_eq!(a.status, 202, "{} bytes: {}", body.len(), a.text());

    // Every field at its longest, every character an escaped surrogate pair.
    let mut n = valid();
    n["police_reference"] = json!("KNT/BIG/2".to_owned() + &"9".repeat(55));
    n["incident"]["summary_for_school"] = json!(name('😀').repeat(5));
    n["officer"]["name"] = json!(name('😀'));
    n["children"] = json!((0..20)
        .map(|_| {
            let mut c = child.clone();
            c["given_name"] = json!(name('😀'));
            c["family_name"] = json!(name('😀'));
            c["other_names"] = json!(vec![name('😀'); 10]);
            c["voice_of_child"] = json!(name('😀').repeat(5));
            c
        })
        .collect::<Vec<_>>());
    let body = escape_all(&serde_json::to_string(&n).unwrap()).into_bytes();
    assert!(body.len() > 400_000, "{}", body.len());
    assert!(body.len() <= kim::ingest::http::MAX_BODY, "{}", body.len());
    let a = rt()
        .block_on(
            env.kent()
                .once(kim.addr, Method::POST, "/v1/notifications", Some(&body)),
        )
        .unwrap();
    assert_eq!(a.status, 202, "{} bytes: {}", body.len(), a.text());
}

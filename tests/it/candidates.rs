//! Candidates side by side and roll search (issue 12 items 3-4), with the
//! real binary: `kim review show` lists the right pupil for each kind of near
//! miss and for namesakes at two schools (through the daemon's admin socket
//! and with the store opened directly), none of them auto-matched;
//! `review assign --pupil` delivers to that pupil's school; `kim roll find`
//! finds by family name and by family + given name, nothing for an absent
//! name; both are audited and nothing they print reaches the daemon's log.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::Env;

const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,,\n\
118766,Oakwood School,Mr Oak,dsl@oakwood.example,,\n";

const ROLL: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
KCC-SWAP,Priya,Patel,,2014-09-03,ME1 1AA,118765\n\
KCC-DAY,Noah,Williams,,2013-06-15,ME1 1AB,118765\n\
KCC-MONTH,Ella,Brown,,2012-04-20,ME1 1AC,118766\n\
KCC-YEAR,Leo,Taylor,,2011-08-08,ME1 1AD,118766\n\
KCC-DIGIT,Maya,Wilson,,2014-02-13,ME1 1AE,118765\n\
KCC-UNDER,Amelia,Khan,,2014-03-09,ME1 1AF,118765\n\
KCC-OTHER,Yusuf,Khan,,2010-01-02,ME1 1AG,118766\n\
KCC-JS1,Jack,Smith,,2015-05-05,ME2 2BB,118765\n\
KCC-JS2,Jack,Smith,,2015-05-05,ME3 3CC,118766\n";

/// (police given, family, date of birth; the pupil expected; its `dob`).
const CASES: [(&str, &str, &str, &str, &str); 7] = [
    (
        "Priya",
        "Patel",
        "2014-03-09",
        "KCC-SWAP",
        "day_month_swapped",
    ),
    ("Noah", "Williams", "2013-06-16", "KCC-DAY", "one_day"),
    ("Ella", "Brown", "2012-05-20", "KCC-MONTH", "one_month"),
    ("Leo", "Taylor", "2012-08-08", "KCC-YEAR", "one_year"),
    ("Maya", "Wilson", "2014-02-18", "KCC-DIGIT", "one_digit"),
    ("Amelie", "Kham", "2014-03-09", "KCC-UNDER", "same"),
    ("Jack", "Smith", "2015-05-05", "KCC-JS2", "same"),
];

/// Every name, date of birth and postcode of the police's children and the
/// roll: none may reach the daemon's log.
const PERSONAL: [&str; 24] = [
    "Priya",
    "Patel",
    "Noah",
    "Williams",
    "Ella",
    "Brown",
    "Leo",
    "Taylor",
    "Maya",
    "Wilson",
    "Amelie",
    "Kham",
    "Amelia",
    "Khan",
    "Jack",
    "Smith",
    "2014-09-03",
    "2013-06-15",
    "2012-04-20",
    "2011-08-08",
    "2014-02-13",
    "2015-05-05",
    "ME2 2BB",
    "CT9 9ZZ",
];

fn post_children(env: &Env, addr: std::net::SocketAddr) -> String {
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
    let children: Vec<Value> = CASES
        .iter()
        .map(|(g, f, dob, _, _)| {
            json!({"given_name": g, "family_name": f, "date_of_birth": dob,
                   "postcode": "CT9 9ZZ", "involvement": "present"})
        })
        .collect();
    let body = serde_json::to_vec(&json!({
        "police_reference": "KNT/CAND/1",
        "incident": {"occurred_at": occurred, "category": "domestic_abuse"},
        "children": children,
    }))
    .unwrap();
    crate::support::post_accepted(env, addr, &body)
}

fn kim_json(env: &Env, args: &[&str]) -> Value {
    let (code, out, err) = env.kim(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// Asserts `review show` lists the expected pupil for every case.
fn check_show(env: &Env, receipt: &str) {
    for (i, (_, _, _, pupil, dob)) in CASES.iter().enumerate() {
        let v = kim_json(env, &["review", "show", receipt, &i.to_string(), "--json"]);
        let cands = v["candidates"].as_array().unwrap();
        let c = cands
            .iter()
            .find(|c| c["pupil_id"] == *pupil)
            .unwrap_or_else(|| panic!("child {i}: {pupil} not among {v}"));
        assert_eq!(c["dob"], *dob, "child {i}: {c}");
        assert!(c["name_score"].as_f64().unwrap() > 0.7, "{c}");
        assert!(c["school_name"].as_str().unwrap().len() > 3, "{c}");
        assert_eq!(c["postcode_compare"], "differs", "{c}");
        assert_eq!(c["hint"], "none", "{c}");
        assert!(!v["reason"].as_str().unwrap().is_empty(), "{v}");
        assert_eq!(v["child"]["date_of_birth"], CASES[i].2);
    }
    // Namesakes at two schools: both listed, the reason named.
    let v = kim_json(env, &["review", "show", receipt, "6", "--json"]);
    assert_eq!(v["reason"], "ambiguous_schools");
    let ids: Vec<&str> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pupil_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"KCC-JS1") && ids.contains(&"KCC-JS2"),
        "{ids:?}"
    );
    // The table names the fields too.
    let (code, out, err) = env.kim(&["review", "show", receipt, "0"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("KCC-SWAP")
            && out.contains("day_month_swapped")
            && out.contains("Maidstone Primary"),
        "{out}"
    );
}

fn find_ids(env: &Env, args: &[&str]) -> Vec<String> {
    let mut a = vec!["roll", "find"];
    a.extend_from_slice(args);
    a.push("--json");
    let v = kim_json(env, &a);
    v["pupils"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pupil_id"].as_str().unwrap().to_owned())
        .collect()
}

fn check_find(env: &Env) {
    assert_eq!(
        find_ids(env, &["--family", "khan"]),
        ["KCC-UNDER", "KCC-OTHER"]
    );
    assert_eq!(
        find_ids(env, &["--family", "Khan", "--given", "Amelia"]),
        ["KCC-UNDER"]
    );
    assert_eq!(
        find_ids(
            env,
            &[
                "--family",
                "Smith",
                "--given",
                "Jack",
                "--dob",
                "2015-05-05"
            ]
        )
        .len(),
        2
    );
    assert!(find_ids(env, &["--family", "Nobody-Here"]).is_empty());
    assert!(find_ids(env, &["--family", "Khan", "--given", "Zara"]).is_empty());
    let (code, out, _) = env.kim(&["roll", "find", "--family", "Nobody"]);
    assert_eq!(code, 0);
    assert!(out.contains("no pupil on the roll matches"), "{out}");
    let (code, _, err) = env.kim(&["roll", "find", "--family", "Khan", "--dob", "2014-13-01"]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("2014-13-01"), "not echoed: {err}");
}

fn audited(env: &Env, action: &str) -> usize {
    let (_, out, _) = env.kim(&["audit", "list", "--json"]);
    out.matches(&format!("\"{action}\"")).count()
}

#[test]
fn review_show_lists_each_near_miss_and_assign_pupil_delivers_there() {
    let env = Env::new();
    env.import(SCHOOLS, ROLL);
    let k = env.start();
    let receipt = post_children(&env, k.addr);
    let start = Instant::now();
    let waiting = |env: &Env| {
        kim_json(env, &["review", "list", "--json"])
            .as_array()
            .map_or(0, Vec::len)
    };
    while start.elapsed() < Duration::from_secs(10) && waiting(&env) < CASES.len() {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every child in review: no near miss was auto-matched.
    assert_eq!(waiting(&env), CASES.len(), "{}", k.log_text());
    let status = kim_json(&env, &["status", &receipt, "--json"]);
    assert!(!status.to_string().contains("\"matched\""), "{status}");

    // Through the daemon's admin socket.
    check_show(&env, &receipt);
    check_find(&env);
    assert_eq!(audited(&env, "review_show"), CASES.len() + 2);
    assert_eq!(audited(&env, "roll_find"), 6);

    // Assigning through a pupil not among the candidates is refused.
    let (code, _, err) = env.kim(&["review", "assign", &receipt, "6", "--pupil", "KCC-DAY"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not among the candidates"), "{err}");
    // Through the right namesake: delivered to Oakwood, the pupil recorded.
    let (code, out, err) = env.kim(&["review", "assign", &receipt, "6", "--pupil", "KCC-JS2"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("118766"), "{out}");
    let eml = env.path("outbox").join(format!("{receipt}.6.eml"));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) && !eml.exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&eml).expect("the alert was delivered");
    assert!(text.contains("<dsl@oakwood.example>"), "{text}");
    assert!(!text.contains("maidstone.example"), "{text}");
    let events = kim_json(&env, &["audit", "list", "--receipt", &receipt, "--json"]).to_string();
    assert!(
        events.contains("KCC-JS2"),
        "the pupil is recorded: {events}"
    );
    // The child left the queue; its candidates too.
    let (code, _, _) = env.kim(&["review", "show", &receipt, "6"]);
    assert_eq!(code, 1);

    let log_file = k.log.clone();
    assert!(k.terminate(Duration::from_secs(20)).success());
    let log = std::fs::read_to_string(log_file).unwrap_or_default();
    assert!(log.contains("needs review"), "the log was read: {log}");
    for p in PERSONAL {
        assert!(!log.contains(p), "{p} reached the daemon's log");
    }

    // With the daemon stopped: the same verbs open the store directly.
    check_show_direct(&env, &receipt);
    check_find(&env);
}

fn check_show_direct(env: &Env, receipt: &str) {
    for (i, (_, _, _, pupil, _)) in CASES.iter().enumerate().take(6) {
        let v = kim_json(env, &["review", "show", receipt, &i.to_string(), "--json"]);
        assert!(v.to_string().contains(pupil), "{v}");
    }
}

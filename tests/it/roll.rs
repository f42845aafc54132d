//! `kim schools` and `kim roll`: atomic imports with line-numbered errors,
//! listings, audit, and the store holding no roll data in the clear.

use crate::support::{files_containing, Env};

const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee Ess-Ell,dsl@maidstone.example,deputy@maidstone.example,01622 111111\n\
118766,\"Oakwood School, Ashford\",Mr Oak,dsl@oakwood.example,,\n";

const ROLL: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
KCC-0001,Zebediah,Quixotic-Marsh,Zeb,2013-05-17,QX9 7ZZ,118765\n\
KCC-0002,Oliwia,Nowak,,2012-07-21,,118766\n\
KCC-0003,Tomasz,Nowak,Tom;Tommy,2017-01-30,ME14 1XX,118766\n";

#[test]
fn schools_and_roll_import_list_stats_and_stay_sealed() {
    let env = Env::new();
    std::fs::write(env.path("schools.csv"), SCHOOLS).unwrap();
    std::fs::write(env.path("roll.csv"), ROLL).unwrap();

    // The roll needs the directory first.
    let (code, _, err) = env.kim(&["roll", "import", env.path("roll.csv").to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("schools import"), "{err}");

    let (code, out, err) = env.kim(&[
        "schools",
        "import",
        env.path("schools.csv").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 2 schools"), "{out}");
    let (code, out, _) = env.kim(&["schools", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("118765") && out.contains("Oakwood School, Ashford"),
        "{out}"
    );
    let (_, out, _) = env.kim(&["schools", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);

    let (code, out, err) = env.kim(&["roll", "import", env.path("roll.csv").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 3 pupils"), "{out}");
    let (_, out, _) = env.kim(&["roll", "stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pupils"], 3);
    assert_eq!(
        v["per_school"],
        serde_json::json!([["118765", 1], ["118766", 2]])
    );
    let (_, out, _) = env.kim(&["roll", "stats"]);
    assert!(out.contains("3 pupils at 2 schools"), "{out}");
    for needle in ["Zebediah", "Quixotic", "Nowak", "Oliwia"] {
        assert!(!out.contains(needle), "roll stats shows {needle}");
    }

    // Nothing from the roll in the clear in the store.
    let hits = files_containing(
        &env.path("store"),
        &[
            "Zebediah",
            "Quixotic",
            "Nowak",
            "Oliwia",
            "2013-05-17",
            "2012-07-21",
            "QX9 7ZZ",
            "KCC-000",
            "Ess-Ell",
        ],
    );
    assert!(hits.is_empty(), "{hits:?}");

    // While the daemon holds the store, the same command answers through
    // its admin socket, with the same output.
    let (code, offline, _) = env.kim(&["roll", "stats"]);
    assert_eq!(code, 0);
    let k = env.start();
    let (code, online, err) = env.kim(&["roll", "stats"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(online, offline);
    drop(k);

    // Both imports are in the audit chain with the OS user who ran them.
    let master = kim::store::crypto::MasterKey::load(&env.path("master.key")).unwrap();
    let store = kim::store::Store::open(&env.path("store"), &master).unwrap();
    let events: Vec<_> = store.audit_events().collect::<Result<_, _>>().unwrap();
    kim::audit::verify_chain(&kim::audit::Head::default(), &events).unwrap();
    let imports: Vec<_> = events
        .iter()
        .filter(|e| e.kind == kim::audit::EventKind::AdminAccess)
        .collect();
    assert_eq!(imports.len(), 2);
    assert!(
        imports.iter().all(|e| e.actor.starts_with("admin:")),
        "{imports:?}"
    );
    assert_eq!(imports[1].detail["action"], "roll_import");
    assert_eq!(imports[1].detail["records"], 3);
}

#[test]
fn a_bad_roll_is_rejected_whole_with_every_bad_line_and_no_personal_data() {
    let env = Env::new();
    std::fs::write(env.path("schools.csv"), SCHOOLS).unwrap();
    assert_eq!(
        env.kim(&[
            "schools",
            "import",
            env.path("schools.csv").to_str().unwrap()
        ])
        .0,
        0
    );
    std::fs::write(env.path("roll.csv"), ROLL).unwrap();
    assert_eq!(
        env.kim(&["roll", "import", env.path("roll.csv").to_str().unwrap()])
            .0,
        0
    );

    let bad = "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
KCC-0101,Zebulon,Quimby,,2013-02-30,,118765\n\
KCC-0102,Yusuf,Quartz,,2014-04-04,,999999\n\
KCC-0103,Xanthe,Quill,,2015-05-05,,118766\n\
KCC-0103,Xavier,Quill,,2015-05-05,,118766\n\
KCC-0105,Wanda\n";
    std::fs::write(env.path("bad.csv"), bad).unwrap();
    let (code, out, err) = env.kim(&["roll", "import", env.path("bad.csv").to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    for expected in [
        "line 2: date_of_birth:",
        "line 3: school_urn:",
        "line 5: pupil_id:",
        "line 6: row:",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
    for secret in [
        "Zebulon",
        "Quimby",
        "2013-02-30",
        "999999",
        "KCC-0103",
        "Wanda",
    ] {
        assert!(!err.contains(secret), "the error echoes {secret}:\n{err}");
    }
    // Nothing changed: the old roll is still the roll.
    let (_, out, _) = env.kim(&["roll", "stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pupils"], 3);

    // A bad school directory is rejected too, and dropping a school in use is refused.
    std::fs::write(
        env.path("s2.csv"),
        "urn,name,dsl_name,dsl_email,deputy_email,phone\n118765,A,B,not-an-email,,\n",
    )
    .unwrap();
    let (code, _, err) = env.kim(&["schools", "import", env.path("s2.csv").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("line 2: dsl_email:"), "{err}");
    std::fs::write(
        env.path("s3.csv"),
        "urn,name,dsl_name,dsl_email,deputy_email,phone\n118765,A,B,a@b.example,,\n",
    )
    .unwrap();
    let (code, _, err) = env.kim(&["schools", "import", env.path("s3.csv").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("118766"), "{err}");
    // A wrong header.
    std::fs::write(env.path("s4.csv"), "urn;name\n1;2\n").unwrap();
    let (code, _, err) = env.kim(&["schools", "import", env.path("s4.csv").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("line 1: header:"), "{err}");
}

#[test]
fn a_large_roll_rejected_at_its_last_row_leaves_the_old_roll_in_force() {
    let env = Env::new();
    std::fs::write(env.path("schools.csv"), SCHOOLS).unwrap();
    std::fs::write(env.path("roll.csv"), ROLL).unwrap();
    for args in [
        ["schools", "import", "schools.csv"],
        ["roll", "import", "roll.csv"],
    ] {
        let file = env.path(args[2]);
        let (code, _, err) = env.kim(&[args[0], args[1], file.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }

    // 3,000 valid rows, all written to the store while they are read, then
    // a repeat of the first pupil_id: only known at the end.
    let mut big = String::from(
        "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n",
    );
    for i in 0..3000 {
        big.push_str(&format!(
            "BIG-{i:05},Yolanda,Vexillum-{i},,2014-02-03,,{}\n",
            if i % 2 == 0 { 118765 } else { 118766 }
        ));
    }
    let valid = big.clone();
    big.push_str("BIG-00000,Yolanda,Vexillum,,2014-02-03,,118765\n");
    std::fs::write(env.path("big.csv"), &big).unwrap();
    let (code, out, err) = env.kim(&["roll", "import", env.path("big.csv").to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("line 3002: pupil_id: duplicate (first on line 2)"),
        "{err}"
    );
    assert!(!err.contains("BIG-0") && !err.contains("Vexillum"), "{err}");

    let (_, out, _) = env.kim(&["roll", "stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pupils"], 3);
    assert_eq!(v["generation"], 1);
    {
        let master = kim::store::crypto::MasterKey::load(&env.path("master.key")).unwrap();
        let store = kim::store::Store::open(&env.path("store"), &master).unwrap();
        let dob = "2013-05-17".parse().unwrap();
        let old = store
            .roll_candidates(&["Zebediah".into()], "Quixotic-Marsh", dob)
            .unwrap();
        assert_eq!(old.len(), 1);
        let dob = "2014-02-03".parse().unwrap();
        assert!(store
            .roll_candidates(&["Yolanda".into()], "Vexillum-7", dob)
            .unwrap()
            .is_empty());
    }

    // The same rows without the repeat replace the roll.
    std::fs::write(env.path("valid.csv"), &valid).unwrap();
    let (code, out, err) = env.kim(&["roll", "import", env.path("valid.csv").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 3000 pupils"), "{out}");
    let (_, out, _) = env.kim(&["roll", "stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pupils"], 3000);
    assert_eq!(
        v["per_school"],
        serde_json::json!([["118765", 1500], ["118766", 1500]])
    );
    let master = kim::store::crypto::MasterKey::load(&env.path("master.key")).unwrap();
    let store = kim::store::Store::open(&env.path("store"), &master).unwrap();
    let dob = "2014-02-03".parse().unwrap();
    let found = store
        .roll_candidates(&["Yolanda".into()], "Vexillum-7", dob)
        .unwrap();
    assert_eq!(found.len(), 3000, "every Yolanda born that day");
    assert!(found.iter().any(|p| p.pupil_id == "BIG-00007"));
}

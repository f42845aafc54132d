//! `kim report` after retention (issue 15): a known mix sent through the
//! real daemon, the report taken, then every settled notification purged
//! (`kim retention run --older-than 0s`): the report is the same, figure
//! for figure, through the daemon, on the store with it stopped, and after
//! a restart — its figures come from the audit, which a purge keeps.

use std::time::Duration;

use hyper::Method;
use serde_json::Value;

use crate::report::{namesake, no_personal_data, report, wait_state, ROLL, SCHOOLS};
use crate::support::{post_accepted, rt, simple, Env};

/// The figures of `kim report --json` for yesterday..tomorrow, without
/// the `audit` block (the purge and the restart add events to the chain).
fn figures(env: &Env) -> Value {
    let (code, out, err) = report(env, "--json");
    assert_eq!(code, 0, "{err}");
    no_personal_data("JSON", &out);
    let mut j: Value = serde_json::from_str(&out).unwrap();
    j.as_object_mut().unwrap().remove("audit");
    j
}

#[test]
fn report_figures_are_the_same_after_a_purge_and_after_a_restart() {
    let env = Env::new();
    env.import(SCHOOLS, ROLL);
    let k = env.start();
    let post = |body: &[u8]| {
        rt().block_on(
            env.kent()
                .once(k.addr, Method::POST, "/v1/notifications", Some(body)),
        )
        .unwrap()
    };
    // Matched and delivered; re-sent once; a conflicting re-send.
    let first = simple("KNT/PRG/1");
    let matched = post_accepted(&env, k.addr, &first);
    assert_eq!(post(&first).status, 200);
    assert_eq!(post(&simple("KNT/PRG/1")).status, 409);
    // Reviewed then assigned; dismissed; withdrawn in review; waiting.
    let assigned = post_accepted(&env, k.addr, &namesake("KNT/PRG/2"));
    let dismissed = post_accepted(&env, k.addr, &namesake("KNT/PRG/3"));
    let withdrawn = post_accepted(&env, k.addr, &namesake("KNT/PRG/4"));
    let waiting = post_accepted(&env, k.addr, &namesake("KNT/PRG/5"));
    wait_state(&env, k.addr, &matched, "delivered");
    for r in [&assigned, &dismissed, &withdrawn, &waiting] {
        wait_state(&env, k.addr, r, "needs_review");
    }
    let (code, _, err) = env.kim(&["review", "assign", &assigned, "0", "118766"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = env.kim(&["review", "dismiss", &dismissed, "0", "--reason", "not ours"]);
    assert_eq!(code, 0, "{err}");
    crate::support::withdraw_ok(&env, k.addr, &withdrawn, "sent in error");
    wait_state(&env, k.addr, &assigned, "delivered");

    let before = figures(&env);
    // The known truth, so "the same" is not the same nothing.
    assert_eq!(before["received"]["notifications"], 5, "{before:#}");
    assert_eq!(before["received"]["resends"], 1);
    assert_eq!(before["received"]["conflicts"], 1);
    assert_eq!(
        before["outcomes"],
        serde_json::json!({"delivered": 2, "dismissed": 1, "withdrawn": 1, "failed": 0, "waiting": 1}),
        "{before:#}"
    );
    assert_eq!(before["matching"]["matched_after_review"], 1);
    assert_eq!(before["schools"].as_array().unwrap().len(), 2);

    // Purge every settled notification now.
    let (code, out, err) = env.kim(&["retention", "run", "--older-than", "0s", "--json"]);
    assert_eq!(code, 0, "{err}");
    let purged: Value = serde_json::from_str(&out).unwrap();
    let mut got: Vec<&str> = purged["purged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    got.sort_unstable();
    let mut want = vec![
        matched.as_str(),
        assigned.as_str(),
        dismissed.as_str(),
        withdrawn.as_str(),
    ];
    want.sort_unstable();
    assert_eq!(
        got, want,
        "the four settled ones purged, the waiting one kept"
    );
    let (_, status, _) = env.kim(&["status", &matched, "--json"]);
    assert!(status.contains("purged_at"), "{status}");

    assert_eq!(figures(&env), before, "the same figures after the purge");

    // With the daemon stopped (on the store), and after a restart.
    assert!(k.terminate(Duration::from_secs(30)).success());
    assert_eq!(
        figures(&env),
        before,
        "the same figures on the stopped store"
    );
    let k = env.start();
    assert_eq!(figures(&env), before, "the same figures after a restart");
    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(k.terminate(Duration::from_secs(30)).success());
}

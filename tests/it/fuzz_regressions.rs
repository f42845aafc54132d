//! What the fuzz targets in `fuzz/` found, each kept as a test against the
//! real binary or the real reader (docs/guarantees.md, "Fuzzing").

use hyper::Method;

use crate::support::{rt, Env};

/// fuzz target `withdrawal`: an unknown key in a withdrawal body came back
/// whole in the 422's pointer (and in the log line that names it): a key
/// of any length, control characters included. It is now capped at 64
/// characters with controls replaced, as in a notification's pointers.
#[test]
fn a_withdrawals_unknown_key_is_capped_and_log_safe_in_the_pointer() {
    let env = Env::new();
    let k = env.start();
    let key = format!(
        "Amelia Khan 2014-03-09 ME14 1XX \u{1b}[2J{}",
        "Quixotic-Marsh ".repeat(20)
    );
    let body = serde_json::to_vec(&serde_json::json!({ "reason": "x", key.as_str(): 1 })).unwrap();
    let r = rt()
        .block_on(env.kent().once(
            k.addr,
            Method::POST,
            "/v1/notifications/0000-0000-0000-0000/withdraw",
            Some(&body),
        ))
        .unwrap();
    assert_eq!(r.status, 422, "{}", r.text());
    let pointer = r.json()["errors"][0]["pointer"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(pointer.chars().count() <= 65, "{pointer:?}");
    assert!(!pointer.chars().any(char::is_control), "{pointer:?}");
    assert!(!r
        .text()
        .contains("Quixotic-Marsh Quixotic-Marsh Quixotic-Marsh Quixotic-Marsh Quixotic-Marsh"));
}

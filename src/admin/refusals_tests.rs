//! Tests of `admin/refusals.rs`, kept in their own file.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_caller_in_a_loop_makes_one_event_at_once_and_one_a_minute() {
    let r = Refusals::default();
    let t0 = Instant::now();
    assert!(r.note("admin:nobody", "review_list", t0));
    for i in 0..2999 {
        let verb = if i % 2 == 0 {
            "roll_import"
        } else {
            "review_list"
        };
        assert!(!r.note("admin:nobody", verb, t0 + Duration::from_millis(i)));
    }
    // Another caller has its own window.
    assert!(r.note("admin:eve", "status", t0));
    assert!(r.close(t0 + Duration::from_secs(59), false).is_empty());
    let closed = r.close(t0 + WINDOW, false);
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0].actor, "admin:nobody");
    assert_eq!(closed[0].count, 2999);
    assert_eq!(closed[0].verbs, ["review_list", "roll_import"]);
    // The next refusal opens a new window, audited at once.
    assert!(r.note("admin:nobody", "status", t0 + WINDOW));
    assert!(r.close(t0 + WINDOW, true).is_empty(), "nothing repeated");
}

//! Tests of `lograte.rs`, kept in their own file.

use super::*;

#[test]
fn one_line_per_kind_per_window_with_the_count_held_back() {
    let l = Limiter::new(Duration::from_secs(10));
    let t0 = Instant::now();
    assert_eq!(l.allow_at("flush", t0), Some(0));
    // A tight loop for 9.9 s: all held back.
    for ms in 1..=9_900u64 {
        assert_eq!(l.allow_at("flush", t0 + Duration::from_millis(ms)), None);
    }
    // Another kind has its own window.
    assert_eq!(l.allow_at("apply", t0 + Duration::from_secs(1)), Some(0));
    // After the window: one line, saying how many were held back.
    assert_eq!(
        l.allow_at("flush", t0 + Duration::from_secs(10)),
        Some(9_900)
    );
    assert_eq!(l.allow_at("flush", t0 + Duration::from_secs(11)), None);
    assert_eq!(l.allow_at("flush", t0 + Duration::from_secs(25)), Some(1));
}

#[test]
fn the_macros_log_through_the_global_limiter() {
    // Only that it compiles with fields and a message, and holds back
    // a repeat within the window.
    for _ in 0..3 {
        error!("lograte.test", error = %"boom", n = 1, "a test line");
        warning!("lograte.test.warn", "a test warning");
    }
    assert_eq!(allow("lograte.test"), None);
}

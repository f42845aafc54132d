//! Tests of `ingest/idle.rs`, kept in their own file.

use super::*;

#[tokio::test(start_paused = true)]
async fn idle_only_after_the_limit_without_bytes_or_requests() {
    let a = Activity::new();
    let limit = Duration::from_secs(120);
    // A request in flight for longer than the limit is not idleness.
    let guard = a.request();
    let waited = tokio::time::timeout(Duration::from_secs(300), a.idle_for(limit)).await;
    assert!(waited.is_err(), "idle while a request was in flight");
    drop(guard);
    let started = Instant::now();
    a.idle_for(limit).await;
    assert_eq!(started.elapsed(), limit);
    // Activity moves the deadline.
    tokio::time::advance(Duration::from_secs(60)).await;
    a.touch();
    let started = Instant::now();
    a.idle_for(limit).await;
    assert_eq!(started.elapsed(), limit);
}

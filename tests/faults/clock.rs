//! Part 4, clock steps: kim runs under libfaketime (its wall clock only;
//! this machine's clock is never touched, and the monotonic clock that
//! tokio's timers use is left alone), and its clock steps back an hour and
//! then forward a day while the police post and alerts are delivered, one
//! of them waiting to retry across the step back. Checked: every receipt
//! unique and answering, each received_at what kim's clock said, receipts
//! ordered as their received_at (not as their arrival), every deadline
//! after its receipt and met, the retry not held back by the step,
//! `audit verify`. Skipped with a note when libfaketime is not installed
//! (`apt-get install faketime`; .ci/run installs it).

use std::path::Path;
use std::time::{Duration, Instant};

use hyper::Method;
use jiff::{SignedDuration, Timestamp};

use crate::check;
use crate::load;
use crate::world::{Setup, World};
use crate::{promise, Knobs, Outcome};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// (receipt, received_at as kim answers it, deadline, deadline_met, state).
type Seen = (String, Timestamp, Option<Timestamp>, Option<bool>, String);

/// Posts `n` notifications on one connection; their receipts in order.
fn post(w: &World, n: usize) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = w.client.connect(w.addr()).await.unwrap();
        let mut out = Vec::new();
        for _ in 0..n {
            let seq = w
                .shared
                .seq
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Ok(Some(r)) = load::post(&w.shared, &mut c, seq).await {
                out.push(r);
            }
        }
        out
    })
}

/// What kim answers about `receipt` now.
fn seen(w: &World, receipt: &str) -> Seen {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = rt
        .block_on(w.client.once(
            w.addr(),
            Method::GET,
            &format!("/v1/notifications/{receipt}"),
            None,
        ))
        .unwrap();
    let s = a.json();
    if std::env::var_os("KIM_FAULTS_DEBUG").is_some() {
        eprintln!("{s}");
    }
    let ts = |v: &serde_json::Value| v.as_str().and_then(|t| t.parse::<Timestamp>().ok());
    (
        receipt.to_owned(),
        ts(&s["received_at"]).expect("received_at"),
        ts(&s["children"][0]["deadline"]),
        s["children"][0]["deadline_met"].as_bool(),
        s["children"][0]["state"].as_str().unwrap_or("?").to_owned(),
    )
}

pub fn run(_knobs: &Knobs) -> Outcome {
    if !Path::new(LIBFAKETIME).exists() {
        eprintln!("SKIPPED: {LIBFAKETIME} missing (apt-get install faketime)");
        return Ok(());
    }
    let clock = tempfile::NamedTempFile::new().unwrap();
    let step = |offset: &str| std::fs::write(clock.path(), format!("{offset}\n")).unwrap();
    step("+0");
    let mut w = World::new(Setup {
        extra: "[delivery]\nretry_initial = \"2s\"\nretry_max = \"2s\"\n".into(),
        wrapper: vec![
            "env".into(),
            format!("LD_PRELOAD={LIBFAKETIME}"),
            format!("FAKETIME_TIMESTAMP_FILE={}", clock.path().display()),
            "FAKETIME_NO_CACHE=1".into(),
            "FAKETIME_DONT_FAKE_MONOTONIC=1".into(),
        ],
        ..Setup::default()
    });
    w.start()?;
    let before = post(&w, 6);
    check::settle(&w, Duration::from_secs(30))?;

    // An alert refused once (451) waits to retry in 2 s of kim's clock…
    w.smtp
        .shared
        .lock()
        .unwrap()
        .script
        .push_back((451, "4.3.0 Try again later".into()));
    let retried = post(&w, 1);
    let until = Instant::now() + Duration::from_secs(10);
    while !w.smtp.shared.lock().unwrap().script.is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    // …when that clock steps back an hour.
    let stepped_back = Instant::now();
    step("-3600");
    let back = post(&w, 6);
    let r = check::settle(&w, Duration::from_secs(30));
    let retry_took = stepped_back.elapsed();
    if let Err(b) = r {
        return Err(crate::Broken {
            promise: "a step back of the clock holds no retry back",
            detail: format!(
                "{}: {} (the alert refused once: {retried:?})",
                b.promise, b.detail
            ),
        });
    }
    // Then forward a day.
    step("+82800");
    let ahead = post(&w, 6);
    check::settle(&w, Duration::from_secs(30))?;
    w.kill();
    step("+0");
    w.start()?;

    let all: Vec<&String> = before
        .iter()
        .chain(&retried)
        .chain(&back)
        .chain(&ahead)
        .collect();
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    promise(unique.len() == all.len(), "receipts are unique", || {
        format!("{} receipts, {} distinct", all.len(), unique.len())
    })?;
    let checked = check::receipts_answer(&w)?;
    let now = Timestamp::now();
    let near = |t: Timestamp, offset: i64| {
        now.duration_until(t - SignedDuration::from_secs(offset))
            .abs()
            < SignedDuration::from_mins(10)
    };
    let views: Vec<(&str, i64, Vec<Seen>)> = vec![
        (
            "before",
            0,
            before.iter().chain(&retried).map(|r| seen(&w, r)).collect(),
        ),
        (
            "an hour back",
            -3600,
            back.iter().map(|r| seen(&w, r)).collect(),
        ),
        (
            "a day ahead",
            82800,
            ahead.iter().map(|r| seen(&w, r)).collect(),
        ),
    ];
    for (name, offset, group) in &views {
        for (r, received, deadline, met, state) in group {
            promise(
                near(*received, *offset),
                "received_at is kim's clock",
                || format!("{r} ({name}) received_at {received}"),
            )?;
            let d = deadline.ok_or_else(|| crate::Broken {
                promise: "every alert has its deadline",
                detail: format!("{r} ({name}): no deadline"),
            })?;
            // A child waiting for review has a deadline, not met yet — or
            // missed, once kim's clock (now the real one again) has passed
            // it: a receipt made an hour back, before 08:00, when this
            // runs between 08:00 and 09:00 on a school day (CI did).
            let waiting = state == "needs_review"
                && (met.is_none() || (*met == Some(false) && d <= Timestamp::now()));
            promise(
                d > *received && (*met == Some(true) || waiting),
                "no deadline break",
                || format!("{r} ({name}, {state}): received {received}, deadline {d}, met {met:?}"),
            )?;
        }
    }
    // Receipts order as their received_at second, whatever the order of
    // arrival: those made an hour back sort before those made earlier.
    let mut by_receipt: Vec<&Seen> = views.iter().flat_map(|v| &v.2).collect();
    by_receipt.sort_by(|a, b| a.0.cmp(&b.0));
    let ordered = by_receipt
        .windows(2)
        .all(|p| p[0].1.as_second() <= p[1].1.as_second());
    promise(ordered, "receipts order as their received_at", || {
        let v: Vec<String> = by_receipt
            .iter()
            .map(|s| format!("{} {}", s.0, s.1))
            .collect();
        v.join(", ")
    })?;
    let back_first = views[1]
        .2
        .iter()
        .all(|b| views[0].2.iter().all(|a| b.0 < a.0));
    check::audit_verifies(&w)?;
    check::no_doubles(&w)?;
    eprintln!(
        "clock: {checked} receipts unique and answering across a step back of an hour and forward of a day; receipts made after the step back sort before the earlier ones: {back_first}; the retry waiting across the step back delivered {:.1} s after it; every deadline after its receipt and met",
        retry_took.as_secs_f64()
    );
    Ok(())
}

//! The audit chain: append cost per event through the real store path
//! (`Store::audit_append`: writer lock, one sled transaction, head moved),
//! and verification speed in events/s over a chain of 1,000,000 events —
//! in memory (`verify_chain`), from an export file (`verify_export`: parse
//! each line, check the chain and every signed checkpoint), and from a
//! real store (`kim audit verify`'s path: sled iteration + parse + chain).
//!
//! Knobs: KIM_BENCH_EVENTS (1,000,000), KIM_BENCH_APPENDS (100,000 through
//! the store; the store verification runs over those).

mod common;

use std::time::Instant;

use kim::audit::checkpoint::{write_new_signing_key, Signer};
use kim::audit::export::{verify_export, write_export};
use kim::audit::{verify_chain, AuditEvent, EventKind, Head, Refs};

fn event(head: &Head, i: u64) -> AuditEvent {
    let mut detail = serde_json::Map::new();
    detail.insert("code".into(), 250.into());
    detail.insert("attempt".into(), 1.into());
    AuditEvent::next(
        head,
        jiff::Timestamp::from_second(1_800_000_000 + i as i64).unwrap(),
        EventKind::DeliveryAttempt,
        "system".into(),
        Refs {
            receipt: Some(format!("7K3M-{:04}-0000-Q2ZT", i % 10_000)),
            child: Some(0),
            school_urn: Some("118765".into()),
            alert_id: Some(format!("7K3M-{:04}-0000-Q2ZT.0", i % 10_000)),
        },
        detail,
    )
}

fn main() {
    let n: u64 = common::env_num("KIM_BENCH_EVENTS", 1_000_000);
    let appends: u64 = common::env_num("KIM_BENCH_APPENDS", 100_000);
    let dir = tempfile::tempdir().unwrap();
    write_new_signing_key(&dir.path().join("audit.key")).unwrap();
    let signer = Signer::load(&dir.path().join("audit.key")).unwrap();

    println!(
        "kim audit benchmark — machine: {}; revision {}",
        common::machine(),
        common::git_revision()
    );

    // Build the chain in memory (hashing is part of building).
    let t = Instant::now();
    let mut head = Head::default();
    let mut events = Vec::with_capacity(n as usize);
    let mut cps = Vec::new();
    for i in 0..n {
        let ev = event(&head, i);
        head = ev.head();
        if head.seq % 1000 == 0 {
            cps.push(signer.sign(&head, ev.time));
        }
        events.push(ev);
    }
    let build = t.elapsed();
    println!(
        "build {n} events (hash each, sign every 1000th): {:.2} s, {:.2} µs/event",
        build.as_secs_f64(),
        build.as_secs_f64() * 1e6 / n as f64
    );

    let t = Instant::now();
    let h = verify_chain(&Head::default(), &events).unwrap();
    let mem = t.elapsed();
    assert_eq!(h.seq, n);
    println!(
        "verify_chain in memory: {:.2} s → {:.0} events/s",
        mem.as_secs_f64(),
        n as f64 / mem.as_secs_f64()
    );

    let path = dir.path().join("export.jsonl");
    let f = std::fs::File::create(&path).unwrap();
    write_export(
        std::io::BufWriter::with_capacity(1 << 20, f),
        events
            .iter()
            .cloned()
            .map(Ok::<_, std::convert::Infallible>),
        &cps,
    )
    .unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    drop(events);
    let t = Instant::now();
    let f = std::fs::File::open(&path).unwrap();
    let r = verify_export(
        std::io::BufReader::with_capacity(1 << 20, f),
        &kim::audit::checkpoint::Trusted::one(signer.public_key()),
    )
    .unwrap();
    let file = t.elapsed();
    assert_eq!(r.head.seq, n);
    println!(
        "verify an export ({:.0} MiB, {} checkpoints, signatures checked): {:.2} s → {:.0} events/s   (goal ≥ 200,000/s)",
        size as f64 / 1048576.0,
        r.checkpoints,
        file.as_secs_f64(),
        n as f64 / file.as_secs_f64()
    );

    // The real append path, then `kim audit verify`'s read path.
    let store = kim::store::Store::open(
        &dir.path().join("store"),
        &kim::store::crypto::MasterKey::from_bytes([9; 32]),
    )
    .unwrap();
    let t = Instant::now();
    for i in 0..appends {
        let mut detail = serde_json::Map::new();
        detail.insert("code".into(), 250.into());
        let _ = store
            .audit_append(
                EventKind::DeliveryAttempt,
                "system",
                Refs {
                    receipt: Some(format!("7K3M-{:04}-0000-Q2ZT", i % 10_000)),
                    ..Refs::default()
                },
                detail,
            )
            .unwrap();
    }
    let app = t.elapsed();
    let t = Instant::now();
    store.flush_now().unwrap();
    let flush = t.elapsed();
    println!(
        "Store::audit_append × {appends}: {:.2} µs/event (one transaction each, not flushed), then one flush {:.0} ms",
        app.as_secs_f64() * 1e6 / appends as f64,
        flush.as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let evs: Vec<AuditEvent> = store.audit_events().collect::<Result<_, _>>().unwrap();
    let h = verify_chain(&Head::default(), &evs).unwrap();
    let sv = t.elapsed();
    assert_eq!(h.seq, appends);
    println!(
        "verify from the store (read + parse + chain): {:.2} s → {:.0} events/s",
        sv.as_secs_f64(),
        appends as f64 / sv.as_secs_f64()
    );
}

//! Audit export lines (`kim audit export`, `kim audit verify-export`).
//! Any input: verification never panics. Each line that parses reads back
//! the same when written again. The events found, chained properly and
//! exported with the checkpoints found (signed again with a real key made
//! for this run), verify exactly when every checkpoint vouches for the
//! chain; the export with one byte changed either fails to verify or reads
//! back as the very same lines (tamper evidence).
#![no_main]

use std::sync::OnceLock;

use kim::audit::checkpoint::{write_new_signing_key, Checkpoint, Signer, Trusted};
use kim::audit::export::{verify_export, write_export, Line};
use kim::audit::{AuditEvent, Head, GENESIS};
use libfuzzer_sys::fuzz_target;

fn signer() -> &'static Signer {
    static S: OnceLock<Signer> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-signing.key");
        write_new_signing_key(&path).unwrap();
        Signer::load(&path).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let signer = signer();
    let public = &Trusted::one(signer.public_key());
    let _ = verify_export(data, public);
    let mut events: Vec<AuditEvent> = Vec::new();
    let mut found: Vec<Checkpoint> = Vec::new();
    for line in data.split(|&b| b == b'\n').take(16) {
        let Ok(parsed) = serde_json::from_slice::<Line>(line) else {
            continue;
        };
        let again: Line = serde_json::from_slice(&serde_json::to_vec(&parsed).unwrap())
            .expect("a written line reads back");
        assert_eq!(again, parsed, "an export line changed when written again");
        match parsed {
            Line::Event(e) => events.push(e),
            Line::Checkpoint(c) => found.push(c),
        }
    }
    if events.is_empty() {
        return;
    }
    let mut head = Head {
        seq: 0,
        hash: GENESIS.to_owned(),
    };
    let mut heads = Vec::new();
    for e in &mut events {
        e.seq = head.seq + 1;
        e.prev_hash = head.hash.clone();
        e.hash = e.compute_hash();
        head = e.head();
        heads.push(head.clone());
    }
    // Checkpoints as found (their seq and hash), signed by the real key: a
    // true one where they name an event's own hash, a false one otherwise.
    let mut cps: Vec<Checkpoint> = found
        .iter()
        .filter(|c| (1..=head.seq).contains(&c.seq))
        .map(|c| {
            signer.sign(
                &Head {
                    seq: c.seq,
                    hash: c.hash.clone(),
                },
                c.time,
            )
        })
        .collect();
    cps.sort_by_key(|c| c.seq);
    let all_true = cps.iter().all(|c| heads[c.seq as usize - 1].hash == c.hash);
    let mut export = Vec::new();
    write_export(&mut export, events.iter().cloned().map(Ok::<_, ()>), &cps).unwrap();
    let verified = verify_export(&export[..], public);
    assert_eq!(
        verified.is_ok(),
        all_true,
        "a checkpoint's truth not what verification says"
    );
    let Ok(report) = verified else { return };
    assert_eq!(report.head, head);
    let at = (data.len() * 31 + usize::from(data[0])) % export.len();
    let mut altered = export.clone();
    altered[at] ^= 1 << (data.len() % 8);
    if verify_export(&altered[..], public).is_ok() {
        let lines = |b: &[u8]| -> Vec<Line> {
            b.split(|&c| c == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).expect("a verified line parses"))
                .collect()
        };
        assert_eq!(
            lines(&altered),
            lines(&export),
            "an altered export verifies"
        );
    }
});

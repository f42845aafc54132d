//! The accept journal under damage: one flipped bit in an acknowledged
//! frame stops the start (exit 2, naming segment and offset) instead of
//! silently dropping every notification after it; `kim journal salvage`
//! applies every frame that opens, keeps the segment, audits the loss and
//! tells the admin mailbox what to ask the police to re-send.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper::Method;

use crate::support::{rt, simple, Env};

/// Byte offsets of every frame of a journal segment (its start frame
/// first): `"KIMj" | index u32 | head_len u16 | body_len u32 | head | body`.
fn frame_offsets(bytes: &[u8]) -> Vec<(usize, usize, usize)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at + 14 <= bytes.len() {
        assert_eq!(&bytes[at..at + 4], b"KIMj", "frame magic at {at}");
        let h = u16::from_be_bytes(bytes[at + 8..at + 10].try_into().unwrap()) as usize;
        let b = u32::from_be_bytes(bytes[at + 10..at + 14].try_into().unwrap()) as usize;
        out.push((at, h, b));
        at += 14 + h + b;
    }
    out
}

fn the_segment(store: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(store.join("journal"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "journal"))
        .collect();
    assert_eq!(segs.len(), 1, "{segs:?}");
    segs.pop().unwrap()
}

/// A store that holds only `segment` in its journal: as if kim had been
/// killed after every 202 and before applying any of them.
fn store_with_only(store: &Path, name: &std::ffi::OsStr, segment: &[u8]) {
    let _ = std::fs::remove_dir_all(store);
    std::fs::create_dir_all(store.join("journal")).unwrap();
    std::fs::write(store.join("journal").join(name), segment).unwrap();
}

/// GET every receipt: how many answer 404.
fn missing(env: &Env, addr: std::net::SocketAddr, receipts: &[String]) -> Vec<usize> {
    let client = env.kent();
    rt().block_on(async {
        let mut c = client.connect(addr).await.unwrap();
        let mut gone = Vec::new();
        for (i, r) in receipts.iter().enumerate() {
            let a = c
                .send(Method::GET, &format!("/v1/notifications/{r}"), None)
                .await
                .unwrap();
            match a.status {
                200 => {}
                404 => gone.push(i),
                s => panic!("GET {r}: {s}"),
            }
        }
        gone
    })
}

#[test]
fn one_flipped_bit_in_frame_200_stops_the_start_and_salvage_loses_only_that_notification() {
    let env = Env::new();
    let store = env.path("store");
    let kim = env.start();
    let client = env.kent();
    let receipts: Vec<String> = rt().block_on(async {
        let mut c = client.connect(kim.addr).await.unwrap();
        let mut out = Vec::new();
        for i in 0..400 {
            let a = c
                .send(
                    Method::POST,
                    "/v1/notifications",
                    Some(&simple(&format!("KNT/J/{i}"))),
                )
                .await
                .unwrap();
            assert_eq!(a.status, 202, "{}", a.text());
            out.push(a.json()["receipt_id"].as_str().unwrap().to_owned());
        }
        out
    });
    // Every frame was synced before its 202: the segment as a kill finds it.
    let seg_path = the_segment(&store);
    let name = seg_path.file_name().unwrap().to_owned();
    let whole = std::fs::read(&seg_path).unwrap();
    kim.kill();
    let frames = frame_offsets(&whole);
    assert_eq!(frames.len(), 401, "a start frame and 400 notifications");

    // Untouched: nothing missing.
    store_with_only(&store, &name, &whole);
    let kim = env.start();
    assert_eq!(missing(&env, kim.addr, &receipts), Vec::<usize>::new());
    kim.terminate(Duration::from_secs(30));

    // One bit flipped in frame 200's body (notification 199).
    let (at, h, b) = frames[200];
    let mut damaged = whole.clone();
    damaged[at + 14 + h + b / 2] ^= 0x04;
    store_with_only(&store, &name, &damaged);
    let (code, _, err) = env.kim(&["serve"]);
    assert_eq!(code, 2, "kim must not start on a damaged journal: {err}");
    assert!(err.contains("journal is damaged"), "{err}");
    assert!(
        err.contains(&*name.to_string_lossy()),
        "names the segment: {err}"
    );
    assert!(
        err.contains(&format!("byte {at}")),
        "names the offset: {err}"
    );
    assert!(err.contains("kim journal salvage"), "{err}");
    // Nothing applied, nothing deleted.
    assert_eq!(
        std::fs::read(store.join("journal").join(&name)).unwrap(),
        damaged
    );
    // An admin command with the daemon stopped refuses the same way.
    let (code, _, err) = env.kim(&["status", &receipts[0]]);
    assert_eq!(code, 2, "{err}");

    let (code, out, err) = env.kim(&["journal", "salvage"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied 399 notification(s)"), "{out}");
    assert!(
        out.contains("1 acknowledged notification(s) could not be read"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "force kent reference KNT/J/199 receipt {}",
            receipts[199]
        )),
        "{out}"
    );
    // The damaged segment is kept, never deleted; the journal is empty.
    let kept = store.join("journal").join("damaged").join(&name);
    assert_eq!(std::fs::read(&kept).unwrap(), damaged);
    assert!(!store.join("journal").join(&name).exists());

    let kim = env.start();
    assert_eq!(missing(&env, kim.addr, &receipts), vec![199]);
    // The admin mailbox is told which force must re-send which reference.
    let notice = env.path("outbox").join("journal.1.damaged.eml");
    let start = Instant::now();
    while !notice.exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&notice).expect("the admin notice");
    assert!(text.contains("safeguarding@council.example"), "{text}");
    assert!(text.contains("KNT/J/199"), "{text}");
    assert!(text.contains(&receipts[199]), "{text}");
    for personal in ["Amelia", "Khan", "ME14", "2014-03-09"] {
        assert!(!text.contains(personal), "notice leaks {personal}");
    }
    // Audited, and the chain verifies.
    let (code, out, err) = env.kim(&["audit", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let events: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ev = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "journal_damaged")
        .unwrap_or_else(|| panic!("no journal_damaged event: {out}"));
    assert_eq!(ev["detail"]["lost"], 1);
    assert_eq!(
        ev["detail"]["lost_notifications"][0]["police_reference"],
        "KNT/J/199"
    );
    kim.terminate(Duration::from_secs(30));
    let (code, out, err) = env.kim(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
}

//! The roll files (`<store>/roll/NNNNNNNN.rec|.idx`), written by the real
//! writers and then damaged as the input says. Whole: every record and
//! every lookup comes back exactly. Damaged: the reader refuses or reads,
//! without a panic and without allocating more than a record's bound.
#![no_main]

use kim::fuzz_api::rollfile::{read, write, ENTRY_BYTES};
use libfuzzer_sys::fuzz_target;

const GENERATION: u32 = 3;

fuzz_target!(|data: &[u8]| {
    let mut it = data.iter().copied();
    let mut byte = || it.next().unwrap_or(0);
    let bits = byte() % 9;
    let rows = usize::from(byte() % 16);
    let records: Vec<Vec<u8>> = (0..rows)
        .map(|r| {
            (0..usize::from(byte() % 40))
                .map(|i| (r * 7 + i) as u8)
                .collect()
        })
        .collect();
    let entries: Vec<[u8; ENTRY_BYTES]> = (0..usize::from(byte() % 24))
        .map(|_| {
            let mut e = [0u8; ENTRY_BYTES];
            // A few distinct hashes, so some share a bucket and some repeat.
            e[0] = byte();
            e[1] = byte() % 4;
            e[16..].copy_from_slice(&u32::from(byte() % 16).to_be_bytes());
            e
        })
        .collect();
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    write(dir.path(), GENERATION, &records, &entries, bits).expect("written");
    let mut probes: Vec<[u8; 16]> = entries
        .iter()
        .map(|e| e[..16].try_into().unwrap())
        .collect();
    probes.push([0xff; 16]);

    let mut damaged = false;
    for _ in 0..byte() % 4 {
        let ext = if byte() & 1 == 0 { "rec" } else { "idx" };
        let path = dir.path().join(format!("{GENERATION:08}.{ext}"));
        let mut bytes = std::fs::read(&path).unwrap();
        let from_end = usize::from(byte()) % bytes.len().max(1);
        let at = bytes.len().saturating_sub(from_end + 1);
        match byte() % 3 {
            0 if !bytes.is_empty() => bytes[at] ^= byte() | 1,
            1 => bytes.truncate(at),
            _ if !bytes.is_empty() => bytes[at] = byte(),
            _ => continue,
        }
        damaged = true;
        std::fs::write(&path, &bytes).unwrap();
    }

    let got = read(dir.path(), GENERATION, &probes, 64);
    if damaged {
        return;
    }
    let got = got.expect("whole roll files open");
    assert_eq!(got.rows as usize, records.len());
    for (r, rec) in got.records.iter().enumerate() {
        assert_eq!(rec.as_ref().expect("a whole record reads"), &records[r]);
    }
    assert_eq!(got.walked.as_ref().expect("whole files walk"), &records);
    for (p, hits) in probes.iter().zip(&got.hits) {
        let want: std::collections::BTreeSet<u32> = entries
            .iter()
            .filter(|e| e[..16] == p[..])
            .map(|e| u32::from_be_bytes(e[16..].try_into().unwrap()))
            .collect();
        assert_eq!(hits.as_ref().expect("a whole index looks up"), &want);
    }
});

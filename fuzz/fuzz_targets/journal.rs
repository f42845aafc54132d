//! The accept journal's frame reader and replay scan, on journals written
//! by the real writer (fixed test key) and then damaged as the input says:
//! bytes flipped, a file cut short, a segment removed.
//!
//! Whole: everything written comes back, in order. Only cut short: what
//! comes back is a prefix of what was written. Damaged anyhow: what comes
//! back is in order, each frame exactly as written, never twice, and every
//! frame missing is counted as lost (or a torn tail) — nothing vanishes
//! silently — except after the last segment was cut exactly where a frame
//! starts, which reads as a journal never longer (the tail rests on fsync).
#![no_main]

use kim::fuzz_api::journal::{frame_starts, scan, segment_files, write, Frame};
use libfuzzer_sys::fuzz_target;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
}

fn tmp() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut batches = Vec::new();
    let mut written = Vec::new();
    for b in 0..1 + input.byte() % 4 {
        let mut frames = Vec::new();
        for i in 0..input.byte() % 4 {
            let len = usize::from(input.byte() % 64);
            let frame = Frame {
                receipt: format!("r-{b}-{i}"),
                force: "kent".into(),
                police_reference: format!("REF/{b}/{i}"),
                record: input.bytes(len),
                sealed: input.bytes(len / 2),
            };
            written.push(frame.clone());
            frames.push(frame);
        }
        let rotate = input.byte() & 1 == 1;
        batches.push((frames, rotate));
    }
    let dir = tmp();
    write(dir.path(), &kim_fuzz::KEY, &batches).expect("the journal is written");
    let files = segment_files(dir.path()).unwrap();

    let mut flipped = false;
    let mut cut = false;
    let mut removed = false;
    // The last segment cut where a frame starts: what follows reads as
    // never written (found by this target; see the journal's test
    // `the_last_segment_cut_where_a_frame_starts_reads_as_a_shorter_journal`).
    let mut tail_cut_at_a_frame = false;
    for _ in 0..input.byte() % 3 {
        let op = input.byte();
        let which = usize::from(input.byte()) % files.len();
        let file = &files[which];
        let Ok(mut bytes) = std::fs::read(file) else {
            continue;
        };
        let at = usize::from(input.u16()) % bytes.len().max(1);
        match op % 4 {
            0 | 1 if !bytes.is_empty() => {
                bytes[at] ^= input.byte() | 1;
                flipped = true;
            }
            2 => {
                if at > 0 && which + 1 == files.len() && frame_starts(&bytes).contains(&at) {
                    tail_cut_at_a_frame = true;
                }
                bytes.truncate(at);
                cut = true;
            }
            3 if files.len() > 1 => {
                let _ = std::fs::remove_file(file);
                removed = true;
                continue;
            }
            _ => continue,
        }
        std::fs::write(file, &bytes).unwrap();
    }

    let Ok(got) = scan(dir.path(), &kim_fuzz::KEY) else {
        // Only a filesystem error may stop the scan: a damaged journal is read.
        panic!("the scan failed on a damaged journal");
    };
    if !flipped && !cut && !removed {
        assert_eq!(
            got.entries, written,
            "a whole journal does not replay whole"
        );
        assert_eq!((got.damaged, got.torn), (0, 0));
        return;
    }
    // In order, exactly as written, never twice.
    let mut from = 0;
    for e in &got.entries {
        let pos = written[from..]
            .iter()
            .position(|w| w == e)
            .unwrap_or_else(|| panic!("replayed a frame not written, or out of order"));
        from += pos + 1;
    }
    if cut && !flipped && !removed && files.len() == 1 {
        assert_eq!(
            got.entries[..],
            written[..got.entries.len()],
            "a journal cut short does not replay to a prefix"
        );
    }
    let missing = (written.len() - got.entries.len()) as u64;
    // (The oldest segments go once applied: a removed one is not damage.)
    if missing > 0 && got.torn == 0 && !removed && !tail_cut_at_a_frame {
        assert!(
            got.lost > 0 || got.damaged > 0,
            "{missing} frame(s) vanished without being counted as lost"
        );
    }
});

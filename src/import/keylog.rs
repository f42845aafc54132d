//! Finding repeated keys (`pupil_id`, `urn`) in an import without keeping
//! the keys: keyed hashes with their lines, collisions re-read and compared.

use super::*;

/// Every key (pupil_id, urn) logged with the line it is on, for finding
/// repeats once the whole file has been read: 16 bytes per row, whatever
/// the keys' length.
///
/// A `HashMap<String, u64>` probed per row cost half the parse time of a
/// 9 M-row roll (an allocation per key, and a cache miss per probe into a
/// table of hundreds of MB); keeping the keys themselves cost their length
/// again per row. So only a keyed 64-bit hash of each key is kept (random
/// per process, so the file cannot steer it). One sort at the end brings
/// equal hashes together; rows whose hashes collide are read again from
/// the file and their keys compared exactly, so a hash collision can never
/// pass for a repeat, nor hide one.
#[derive(Default)]
pub(super) struct KeyLog<S = RandomState> {
    hasher: S,
    entries: Vec<KeyEntry>,
}

#[derive(Clone, Copy)]
pub(super) struct KeyEntry {
    hash: u64,
    line: u64,
}

impl<S: BuildHasher> KeyLog<S> {
    pub(super) fn push(&mut self, key: &str, line: u64) {
        self.entries.push(KeyEntry {
            hash: self.hasher.hash_one(key),
            line,
        });
    }

    /// `(line, first line)` for every repeat of an earlier key, in line
    /// order. `input` is the file the keys came from, read to its end; it
    /// is read again (keys only) if any two hashes are equal.
    pub(super) fn repeats<const N: usize, R: Read + Seek>(
        self,
        mut input: R,
        header: &[&str; N],
    ) -> Result<Vec<(u64, u64)>, ImportError> {
        let KeyLog {
            hasher,
            mut entries,
        } = self;
        entries.sort_unstable_by_key(|e| (e.hash, e.line));
        // Rows whose hash is shared, as (line, group); each group's hash.
        let mut wanted: Vec<(u64, usize)> = Vec::new();
        let mut group_hash: Vec<u64> = Vec::new();
        for run in entries.chunk_by(|a, b| a.hash == b.hash) {
            if run.len() > 1 {
                wanted.extend(run.iter().map(|e| (e.line, group_hash.len())));
                group_hash.push(run[0].hash);
            }
        }
        drop(entries);
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        wanted.sort_unstable();

        // Second pass: per group, each distinct key with the line it first
        // appears on (usually one key: a real repeat).
        let mut distinct: Vec<Vec<(Box<str>, u64)>> = vec![Vec::new(); group_hash.len()];
        let mut repeats = Vec::new();
        let mut next = wanted.iter().peekable();
        let changed = || {
            ImportError::Io(io::Error::other(
                "the file changed while it was being imported",
            ))
        };
        input.seek(SeekFrom::Start(0))?;
        read_file(input, header, |line, fields, _| {
            let Some(&&(want, group)) = next.peek() else {
                return Ok(());
            };
            if want > line {
                return Ok(());
            }
            next.next();
            let key = match fields[0] {
                Some(key) if want == line && hasher.hash_one(key) == group_hash[group] => key,
                _ => return Err(changed()),
            };
            let seen = &mut distinct[group];
            match seen.iter().find(|(k, _)| **k == *key) {
                Some(&(_, first)) => repeats.push((line, first)),
                None => seen.push((key.into(), line)),
            }
            Ok(())
        })?;
        if next.peek().is_some() {
            return Err(changed());
        }
        repeats.sort_unstable();
        Ok(repeats)
    }
}

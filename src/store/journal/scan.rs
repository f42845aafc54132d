//! Reading the accept journal back (at open): every frame that opens, in
//! order, and an account of what does not. A frame that fails to open is a
//! torn tail — written after the last sync, never acknowledged — only if
//! nothing valid follows it and no later segment vouches for more of its
//! segment; anything else is damage, with the lost frames counted (by their
//! indexes) and named where their heads still open.

use std::path::Path;

use super::{
    body_aad, head_aad, io_error, segment_path, segments, Entry, Head, Identifiers, SegmentEnd,
    DOMAIN, MAGIC, MAX_BODY, MAX_HEAD, PREFIX,
};
use crate::store::crypto::SealKey;
use crate::store::StoreError;

/// Acknowledged frames that no longer open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    pub segment: u64,
    /// Byte offset of the first unreadable byte.
    pub offset: u64,
    /// Notifications lost (at least the named ones).
    pub lost: u32,
    /// The lost notifications whose frame head still opens.
    pub named: Vec<Identifiers>,
}

/// What the journal holds.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Every notification that opens, oldest first.
    pub entries: Vec<Entry>,
    /// Segments read, oldest first.
    pub segments: Vec<u64>,
    /// Damage, in segment order; empty when the journal is whole.
    pub damage: Vec<Damage>,
    /// Torn tails (segment, offset): never acknowledged, discarded.
    pub torn: Vec<(u64, u64)>,
}

impl Scan {
    pub fn damaged_segments(&self) -> Vec<u64> {
        let mut s: Vec<u64> = self.damage.iter().map(|d| d.segment).collect();
        s.dedup();
        s
    }
}

/// One frame whose head opened.
struct Frame {
    offset: usize,
    end: usize,
    index: u32,
    head: Head,
    /// The body, if it opened.
    body: Option<Entry>,
    /// The file ends inside the body.
    truncated: bool,
}

/// Reads the frame at `at`, if its head opens.
fn frame_at(bytes: &[u8], at: usize, segment: u64, key: &SealKey) -> Option<Frame> {
    let prefix = bytes.get(at..at + PREFIX)?;
    if &prefix[..4] != MAGIC {
        return None;
    }
    let index = u32::from_be_bytes(prefix[4..8].try_into().ok()?);
    let head_len = u16::from_be_bytes(prefix[8..10].try_into().ok()?) as usize;
    let body_len = u32::from_be_bytes(prefix[10..14].try_into().ok()?) as usize;
    if head_len > MAX_HEAD || body_len > MAX_BODY {
        return None;
    }
    let head_at = at + PREFIX;
    let sealed_head = bytes.get(head_at..head_at + head_len)?;
    let plain = key
        .open(DOMAIN, &head_aad(segment, prefix), sealed_head)
        .ok()?;
    let head: Head = serde_json::from_slice(&plain).ok()?;
    let body_at = head_at + head_len;
    let end = body_at + body_len;
    let (body, truncated) = match (&head, bytes.get(body_at..end)) {
        (_, None) => (None, true),
        (Head::Start { .. }, Some(_)) => (None, false),
        (Head::Entry(ids), Some(sealed)) => (
            key.open(DOMAIN, &body_aad(segment, index), sealed)
                .ok()
                .and_then(|p| Entry::decode_body(ids.clone(), &p)),
            false,
        ),
    };
    Some(Frame {
        offset: at,
        end: end.min(bytes.len()),
        index,
        head,
        body,
        truncated,
    })
}

/// The next offset after `from` where a frame's magic stands.
/// Where each frame of a whole segment file starts (its start frame first),
/// by the lengths in the frames' prefixes: the layout only, nothing opened.
pub(crate) fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut at = 0;
    let mut out = Vec::new();
    while at + PREFIX <= bytes.len() {
        out.push(at);
        let head = usize::from(u16::from_be_bytes([bytes[at + 8], bytes[at + 9]]));
        let body = u32::from_be_bytes([
            bytes[at + 10],
            bytes[at + 11],
            bytes[at + 12],
            bytes[at + 13],
        ]);
        at += PREFIX + head + body as usize;
    }
    out
}

fn next_magic(bytes: &[u8], from: usize) -> usize {
    bytes
        .get(from..)
        .and_then(|rest| rest.windows(MAGIC.len()).position(|w| w == MAGIC))
        .map_or(bytes.len(), |p| from + p)
}

/// A segment's frames that open (at least their heads), in order.
struct Segment {
    number: u64,
    frames: Vec<Frame>,
    len: usize,
}

fn read(dir: &Path, number: u64, key: &SealKey) -> Result<Segment, StoreError> {
    let bytes = std::fs::read(segment_path(dir, number)).map_err(io_error)?;
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match frame_at(&bytes, at, number, key) {
            Some(f) => {
                at = f.end;
                frames.push(f);
            }
            // Unreadable: look for the next frame by its magic.
            None => at = next_magic(&bytes, at + 1),
        }
    }
    Ok(Segment {
        number,
        frames,
        len: bytes.len(),
    })
}

/// Reads every segment in `dir` and accounts for every byte.
pub(crate) fn scan(dir: &Path, key: &SealKey) -> Result<Scan, StoreError> {
    let numbers = segments(dir)?;
    let read_all = numbers
        .iter()
        .map(|&n| read(dir, n, key))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Scan {
        segments: numbers.clone(),
        ..Scan::default()
    };
    for (i, seg) in read_all.iter().enumerate() {
        // What the next segment's start frame says of this one.
        let vouched: Option<SegmentEnd> = read_all.get(i + 1).and_then(|next| {
            next.frames.first().and_then(|f| match &f.head {
                Head::Start { prev: Some(p) } if f.index == 0 && p.segment == seg.number => {
                    Some(*p)
                }
                _ => None,
            })
        });
        let is_last = i + 1 == read_all.len();
        account(seg, vouched, is_last, &mut out);
    }
    // A segment named as a predecessor but gone while older ones remain.
    for seg in &read_all {
        if let Some(Frame {
            head: Head::Start { prev: Some(p) },
            ..
        }) = seg.frames.first()
        {
            let older_present = numbers.iter().any(|&n| n < p.segment);
            if older_present && !numbers.contains(&p.segment) {
                out.damage.push(Damage {
                    segment: p.segment,
                    offset: 0,
                    lost: p.frames.saturating_sub(1),
                    named: Vec::new(),
                });
            }
        }
    }
    out.damage.sort_by_key(|d| (d.segment, d.offset));
    Ok(out)
}

/// Adds segment `seg`'s entries, damage and torn tail to `out`.
/// `vouched` is what the next segment's start frame says of this one.
fn account(seg: &Segment, vouched: Option<SegmentEnd>, is_last: bool, out: &mut Scan) {
    let damage_before = out.damage.len();
    let mut damage = |offset: usize, lost: u32, named: Vec<Identifiers>| {
        out.damage.push(Damage {
            segment: seg.number,
            offset: offset as u64,
            lost,
            named,
        })
    };
    let whole =
        |f: &Frame| !f.truncated && (matches!(f.head, Head::Start { .. }) || f.body.is_some());
    // Every segment file begins with its start frame, synced before the
    // file got its name (`Journal::new_file`).
    let starts_whole = seg.frames.first().is_some_and(|f| {
        f.offset == 0 && f.index == 0 && whole(f) && matches!(f.head, Head::Start { .. })
    });
    // The tail: everything after the last frame that opens whole.
    let last_whole = seg.frames.iter().rposition(whole);
    let tail_from = last_whole.map_or(0, |i| seg.frames[i].end);
    let (body, tail) = seg.frames.split_at(last_whole.map_or(0, |i| i + 1));
    let mut expected: u32 = 0;
    let mut prev_end = 0;
    for f in body {
        if f.offset != prev_end || f.index != expected {
            // Bytes that open as no frame, and the frames they held.
            damage(prev_end, f.index.saturating_sub(expected), Vec::new());
        }
        match (&f.head, &f.body) {
            (Head::Entry(_), Some(entry)) => out.entries.push(entry.clone()),
            (Head::Entry(ids), None) => damage(f.offset, 1, vec![ids.clone()]),
            (Head::Start { .. }, _) => {}
        }
        expected = f.index.saturating_add(1);
        prev_end = f.end;
    }
    let acknowledged_tail = match vouched {
        // The next segment's start frame says how far this one was synced.
        Some(v) => (tail_from as u64) < v.len,
        // Nothing valid follows in the last segment: written after the last
        // sync. In an earlier segment, nobody vouches for where it ended.
        None => !is_last && tail_from < seg.len,
    };
    if acknowledged_tail {
        let named: Vec<Identifiers> = tail
            .iter()
            .filter(|f| vouched.is_none_or(|v| (f.offset as u64) < v.len))
            .filter_map(|f| match &f.head {
                Head::Entry(ids) => Some(ids.clone()),
                Head::Start { .. } => None,
            })
            .collect();
        let counted = vouched.map_or(0, |v| v.frames.saturating_sub(expected));
        let lost = counted.max(named.len() as u32);
        damage(tail_from, lost, named);
    } else if tail_from < seg.len {
        out.torn.push((seg.number, tail_from as u64));
    }
    if !starts_whole && out.damage.len() == damage_before {
        // Cut or overwritten from its first byte: whatever it held was
        // acknowledged or not, nobody can tell — damage, not a torn tail.
        out.torn.retain(|(s, _)| *s != seg.number);
        out.damage.push(Damage {
            segment: seg.number,
            offset: 0,
            lost: vouched.map_or(0, |v| v.frames.saturating_sub(1)),
            named: seg
                .frames
                .iter()
                .filter_map(|f| match &f.head {
                    Head::Entry(ids) => Some(ids.clone()),
                    Head::Start { .. } => None,
                })
                .collect(),
        });
    }
}

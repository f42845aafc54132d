//! Checking an audit event's link in the chain from its stored bytes, for
//! readers that stream millions of events (`kim report`). An event is
//! stored as the JSON its hash was computed over, with the `hash` field
//! filled in last: so the hash is checked over the stored bytes with that
//! field blanked, without parsing the event or serialising it again. Any
//! event that does not have that layout, or does not check, goes through
//! [`super::verify_chain`] (parse and re-serialise), which names the fault
//! exactly as `kim audit verify` does.

use ring::digest;

use super::{verify_chain, AuditEvent, ChainError, Head};

const HASH_TAIL: &[u8] = b"\",\"hash\":\"";
const PREV_TAIL: &[u8] = b",\"prev_hash\":\"";
const HEX: usize = 64;

/// `(prev_hash, hash)` from the stored layout `…,"prev_hash":"P","hash":"H"}`
/// (64 bytes each, not checked to be hex: [`fast`] compares them with
/// hashes it knows to be).
fn tail(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let body = bytes.strip_suffix(b"\"}")?;
    let hash = body.get(body.len().checked_sub(HEX)?..)?;
    let rest = body[..body.len() - HEX].strip_suffix(HASH_TAIL)?;
    let prev = rest.get(rest.len().checked_sub(HEX)?..)?;
    rest[..rest.len() - HEX].strip_suffix(PREV_TAIL)?;
    Some((prev, hash))
}

/// The stored event before its `,"prev_hash":"P","hash":"H"}` tail (for a
/// reader that needs neither: the rest is a JSON object once `}` is put
/// back), or `None` if it does not have the stored layout.
pub fn without_hashes(bytes: &[u8]) -> Option<&[u8]> {
    tail(bytes)?;
    Some(&bytes[..bytes.len() - 2 - HEX - HASH_TAIL.len() - HEX - PREV_TAIL.len()])
}

/// The `seq` the stored layout `{"seq":N,…` begins with.
fn leading_seq(bytes: &[u8]) -> Option<u64> {
    let rest = bytes.strip_prefix(b"{\"seq\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    if end == 0 || rest[end] != b',' {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// A link of the chain as a streaming reader keeps it: the sequence
/// number and the hash's hex digits, with nothing allocated per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub seq: u64,
    pub hash: [u8; HEX],
}

impl Link {
    /// `head` as a link (`None`: its hash is not 64 bytes long).
    pub fn of(head: &Head) -> Option<Self> {
        Some(Self {
            seq: head.seq,
            hash: head.hash.as_bytes().try_into().ok()?,
        })
    }

    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: String::from_utf8_lossy(&self.hash).into_owned(),
        }
    }
}

fn fast(prev: &Link, bytes: &[u8]) -> Option<Link> {
    let seq = self_hashed(bytes)?;
    linked(prev, seq, bytes)
}

/// The event's `seq` if it has the stored layout and its hash is the hash
/// of its bytes: half of a link check, which needs no earlier event (so
/// it can be done on any thread); [`link_after`] does the rest.
pub fn self_hashed(bytes: &[u8]) -> Option<u64> {
    let seq = leading_seq(bytes)?;
    let (_, hash) = tail(bytes)?;
    // The hashed form: the stored bytes up to `"hash":"`, then `"}`.
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&bytes[..bytes.len() - HEX - 2]);
    ctx.update(b"\"}");
    let digest = ctx.finish();
    let hex = super::hex32(digest.as_ref().try_into().ok()?);
    (hex == hash).then_some(seq)
}

/// The rest of the check once [`self_hashed`] gave `seq`: the event follows `prev`.
fn linked(prev: &Link, seq: u64, bytes: &[u8]) -> Option<Link> {
    if seq != prev.seq + 1 {
        return None;
    }
    let (prev_hash, hash) = tail(bytes)?;
    (prev_hash == prev.hash).then_some(Link {
        seq,
        hash: hash.try_into().ok()?,
    })
}

/// The link check for an event [`self_hashed`] already checked (`hashed`,
/// its answer): the same verdict and fault as [`verify_chain`] over the
/// parsed event.
pub fn link_after(prev: &Link, bytes: &[u8], hashed: Option<u64>) -> Result<Link, ChainError> {
    match hashed.and_then(|seq| linked(prev, seq, bytes)) {
        Some(link) => Ok(link),
        None => next_link(prev, bytes),
    }
}

/// Checks the stored event `bytes` as the next link after `prev`, with
/// nothing allocated unless it fails: the same verdict (and fault) as
/// [`verify_chain`] over the parsed event.
fn next_link(prev: &Link, bytes: &[u8]) -> Result<Link, ChainError> {
    if let Some(link) = fast(prev, bytes) {
        return Ok(link);
    }
    let head = slow(&prev.head(), bytes)?;
    Link::of(&head).ok_or_else(|| ChainError {
        seq: head.seq,
        why: "its hash is not 64 hex digits".to_owned(),
    })
}

/// Checks the stored event `bytes` as the next link after `prev` and
/// returns the new head: the same verdict (and fault) as
/// [`verify_chain`] over the parsed event. (The tests' reference: readers
/// use [`self_hashed`] and [`link_after`].)
#[cfg(test)]
fn check_link(prev: &Head, bytes: &[u8]) -> Result<Head, ChainError> {
    if let Some(link) = Link::of(prev).and_then(|p| fast(&p, bytes)) {
        return Ok(link.head());
    }
    slow(prev, bytes)
}

/// Parses the event and checks it as [`verify_chain`] does.
fn slow(prev: &Head, bytes: &[u8]) -> Result<Head, ChainError> {
    let ev: AuditEvent = serde_json::from_slice(bytes).map_err(|e| ChainError {
        seq: prev.seq + 1,
        why: format!("not an audit event ({e})"),
    })?;
    verify_chain(prev, std::iter::once(&ev))
}

#[cfg(test)]
#[path = "raw_tests.rs"]
mod tests;

//! The audit export (JSON lines: `{"event": …}` in sequence order, each
//! checkpoint as `{"checkpoint": …}` right after the event it vouches for)
//! and its verification on another machine with only the public key; and the
//! check of checkpoints (stored or shipped in the checkpoint file) against a
//! chain.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use super::checkpoint::{Checkpoint, Trusted};
use super::{AuditEvent, ChainError, Head};

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Line {
    Event(AuditEvent),
    Checkpoint(Checkpoint),
}

/// Why an export does not verify: the event (or the event a checkpoint
/// vouches for) and the line it is on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {seq} (line {line}): {why}")]
pub struct ExportError {
    pub seq: u64,
    pub line: usize,
    pub why: String,
}

/// What a verified export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    pub head: Head,
    pub checkpoints: usize,
    /// Events after the last checkpoint: covered by the chain only.
    pub after_last_checkpoint: u64,
}

/// Writes `events` (in order) with `checkpoints` interleaved. Returns the
/// number of lines.
pub fn write_export<W: Write, E>(
    mut out: W,
    events: impl Iterator<Item = Result<AuditEvent, E>>,
    checkpoints: &[Checkpoint],
) -> Result<u64, ExportWriteError<E>> {
    let mut cps = checkpoints.iter().peekable();
    let mut lines = 0;
    let mut line = Vec::with_capacity(512);
    for ev in events {
        let ev = ev.map_err(ExportWriteError::Source)?;
        let seq = ev.seq;
        line.clear();
        serde_json::to_writer(&mut line, &Line::Event(ev)).map_err(ExportWriteError::Json)?;
        line.push(b'\n');
        out.write_all(&line).map_err(ExportWriteError::Io)?;
        lines += 1;
        while let Some(cp) = cps.next_if(|c| c.seq <= seq) {
            serde_json::to_writer(&mut out, &Line::Checkpoint(cp.clone()))
                .map_err(ExportWriteError::Json)?;
            out.write_all(b"\n").map_err(ExportWriteError::Io)?;
            lines += 1;
        }
    }
    out.flush().map_err(ExportWriteError::Io)?;
    Ok(lines)
}

#[derive(Debug, thiserror::Error)]
pub enum ExportWriteError<E> {
    #[error("reading the audit: {0}")]
    Source(E),
    #[error("writing the export: {0}")]
    Io(std::io::Error),
    #[error("serialising an event: {0}")]
    Json(serde_json::Error),
}

/// Verifies an export read from `input`: the chain from the first event,
/// every checkpoint's signature under `public` and that it vouches for the
/// event just before it.
pub fn verify_export(input: impl BufRead, trusted: &Trusted) -> Result<ExportReport, ExportError> {
    let mut head = Head::default();
    let mut checkpoints = 0;
    let mut last_cp = 0;
    let mut before: Option<Checkpoint> = None;
    for (i, line) in input.split(b'\n').enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| ExportError {
            seq: head.seq + 1,
            line: n,
            why: format!("cannot read: {e}"),
        })?;
        if line.is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_slice(&line).map_err(|_| ExportError {
            seq: head.seq + 1,
            line: n,
            why: "not a valid export line (altered?)".into(),
        })?;
        match parsed {
            Line::Event(ev) => {
                head = super::verify_chain(&head, std::iter::once(&ev))
                    .map_err(|ChainError { seq, why }| ExportError { seq, line: n, why })?;
            }
            Line::Checkpoint(cp) => {
                trusted
                    .verify(&cp)
                    .and_then(|()| Trusted::check_link(before.as_ref(), &cp))
                    .map_err(|why| ExportError {
                        seq: cp.seq,
                        line: n,
                        why: format!("checkpoint: {why}"),
                    })?;
                if cp.seq != head.seq || cp.hash != head.hash {
                    return Err(ExportError {
                        seq: cp.seq,
                        line: n,
                        why: format!(
                            "the signed checkpoint does not match the chain here (it vouches for event {} with hash {}…)",
                            cp.seq,
                            cp.hash.chars().take(16).collect::<String>()
                        ),
                    });
                }
                checkpoints += 1;
                last_cp = cp.seq;
                before = Some(cp);
            }
        }
    }
    Ok(ExportReport {
        after_last_checkpoint: head.seq - last_cp,
        head,
        checkpoints,
    })
}

/// Checks `checkpoints` (from the store or the checkpoint file) against a
/// chain whose verified head is `head`, looking up an event's hash with
/// `hash_at`. A checkpoint beyond the head means events were cut off.
pub fn verify_checkpoints<'a>(
    checkpoints: impl IntoIterator<Item = &'a Checkpoint>,
    trusted: &Trusted,
    head: &Head,
    mut hash_at: impl FnMut(u64) -> Option<String>,
    source: &str,
) -> Result<usize, ChainError> {
    let mut n = 0;
    let mut before: Option<&Checkpoint> = None;
    for cp in checkpoints {
        trusted
            .verify(cp)
            .and_then(|()| Trusted::check_link(before, cp))
            .map_err(|why| ChainError {
                seq: cp.seq,
                why: format!("the {source} checkpoint is not valid: {why}"),
            })?;
        before = Some(cp);
        if cp.seq > head.seq {
            return Err(ChainError {
                seq: head.seq + 1,
                why: format!(
                    "missing: the {source} vouches for sequence {} but the chain ends at {}",
                    cp.seq, head.seq
                ),
            });
        }
        if hash_at(cp.seq).as_deref() != Some(cp.hash.as_str()) {
            return Err(ChainError {
                seq: cp.seq,
                why: format!("does not match the signed checkpoint in the {source}"),
            });
        }
        n += 1;
    }
    Ok(n)
}

/// Parses a checkpoint file (one JSON checkpoint per line). A line that
/// does not parse is named.
pub fn read_checkpoint_file(input: impl BufRead) -> Result<Vec<Checkpoint>, String> {
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .map_err(|_| format!("line {}: not a checkpoint (altered?)", i + 1))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;

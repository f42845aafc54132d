//! Applying the accept journal at open (after a crash or a kill): every
//! notification it holds goes into the trees, then the journal is deleted.
//! A torn tail (written after the last sync) is discarded; damage — frames
//! that were acknowledged and no longer open — stops the store from opening
//! ([`StoreError::JournalDamaged`]) until an admin salvages it: then every
//! frame that opens is applied, the segment is kept in `journal/damaged/`,
//! and the audit and the admin mailbox name what the police must re-send.

use serde::{Deserialize, Serialize};

use super::alert_record::{AlertKind, AlertRecord};
use super::batch::Batch;
use super::journal::{self, Identifiers};
use super::notifications::{AcceptOutcome, Prepared};
use super::{Store, StoreError};
use crate::audit::{EventKind, Refs};

/// How to treat damage in the journal when the store opens.
#[derive(Debug, Clone)]
pub enum Replay {
    /// Refuse to open (the daemon, every admin command).
    Strict,
    /// Apply what opens, set the damaged segments aside, audit and tell the
    /// admin mailbox, as this admin (`kim journal salvage`).
    Salvage { actor: String },
}

/// What the journal lost, as told to the admin mailbox (identifiers only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalLoss {
    /// Acknowledged notifications that could not be read.
    pub lost: u32,
    /// Those whose frame head still named them.
    pub named: Vec<Identifiers>,
    /// Where the damaged segments were kept.
    pub kept: Vec<String>,
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct Replayed {
    pub applied: usize,
    /// Set when a salvage found damage.
    pub loss: Option<JournalLoss>,
}

impl Store {
    /// Applies what the accept journal holds and the trees do not, flushes,
    /// and deletes the journal — or, on damage, refuses (`Strict`) or
    /// salvages.
    pub(crate) fn replay_journal(&self, mode: &Replay) -> Result<Replayed, StoreError> {
        let dir = journal::journal_dir(&self.dir);
        let scan = journal::scan(&dir, self.keys.seal_key())?;
        let Some(&last) = scan.segments.last() else {
            return Ok(Replayed::default());
        };
        if let (Some(first), Replay::Strict) = (scan.damage.first(), mode) {
            let lost = scan.damage.iter().map(|d| d.lost).sum();
            return Err(StoreError::JournalDamaged {
                segment: journal::segment_path(&dir, first.segment)
                    .display()
                    .to_string(),
                offset: first.offset,
                lost,
            });
        }
        for (segment, offset) in &scan.torn {
            tracing::warn!(
                segment,
                offset,
                "accept journal: a torn write ends this segment (after the last sync, never acknowledged); discarded"
            );
        }
        let batch = scan
            .entries
            .iter()
            .cloned()
            .map(|e| Prepared::from_journal(self, e))
            .collect::<Result<Vec<_>, _>>()?;
        let mut applied = 0;
        for chunk in batch.chunks(256) {
            applied += self
                .commit_batch(chunk)?
                .iter()
                .filter(|o| matches!(o, AcceptOutcome::Accepted(_)))
                .count();
        }
        self.flush_now()?;
        let mut loss = None;
        if let Replay::Salvage { actor } = mode {
            if !scan.damage.is_empty() {
                let damaged = scan.damaged_segments();
                let mut l = JournalLoss {
                    lost: scan.damage.iter().map(|d| d.lost).sum(),
                    named: scan.damage.iter().flat_map(|d| d.named.clone()).collect(),
                    kept: damaged
                        .iter()
                        .map(|&s| {
                            journal::segment_path(&dir.join(journal::DAMAGED), s)
                                .display()
                                .to_string()
                        })
                        .collect(),
                };
                l.named.dedup();
                // Told first, then set aside: a crash in between makes the
                // next open refuse again, never forget.
                self.record_loss(actor, &scan.damage, &l)?;
                self.flush_now()?;
                for s in damaged {
                    if journal::segment_path(&dir, s).exists() {
                        journal::set_aside(&dir, s)?;
                    }
                }
                loss = Some(l);
            }
        }
        journal::remove_before(&dir, last + 1)?;
        Ok(Replayed { applied, loss })
    }

    /// The `journal_damaged` audit event and the admin mailbox's notice, in
    /// one transaction.
    fn record_loss(
        &self,
        actor: &str,
        damage: &[journal::Damage],
        loss: &JournalLoss,
    ) -> Result<(), StoreError> {
        let _w = self.lock_writer();
        let now = jiff::Timestamp::now();
        let mut batch = Batch::new(self, now)?;
        let mut detail = serde_json::Map::new();
        detail.insert("lost".into(), loss.lost.into());
        detail.insert(
            "damage".into(),
            serde_json::json!(damage
                .iter()
                .map(|d| serde_json::json!({"segment": d.segment, "offset": d.offset, "lost": d.lost}))
                .collect::<Vec<_>>()),
        );
        detail.insert(
            "lost_notifications".into(),
            serde_json::to_value(&loss.named).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        );
        detail.insert("kept".into(), loss.kept.clone().into());
        batch.event(EventKind::JournalDamaged, actor, Refs::default(), detail);
        let first = damage.first().map_or(0, |d| d.segment);
        let mut notice = AlertRecord::new(
            format!("journal.{first}.damaged"),
            AlertKind::AdminJournalDamaged,
            "",
            0,
            "",
            now,
        );
        notice.journal = Some(loss.clone());
        batch.put_alert(notice);
        let _ticket = batch.commit(self)?;
        Ok(())
    }
}

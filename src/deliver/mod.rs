//! The delivery worker (DESIGN §7): picks due alerts from the outbox, marks
//! them `sending` durably, renders and addresses each message, hands it to
//! the transport, and records the outcome: delivered, a retry with
//! exponential backoff and jitter, or failed (5xx, or the retry window ran
//! out) with the admin told. It also escalates late alerts to the deputy DSL
//! and records missed deadlines. Time comes from a [`Clock`], so tests run
//! it under tokio's paused time.

/// The school-day calendar (a leaf module, [`crate::calendar`]), by its older name.
pub use crate::calendar as deadline;
mod clock;
mod live;
pub mod summary;
pub mod transition;
pub mod transport;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use lettre::message::{header, Mailbox, MultiPart};
use lettre::Message;
use tokio::sync::{watch, Semaphore};

use crate::alert::{self, AdminReason, AllowedFacts, Rendered};
use crate::config::{AlertConfig, Config, DeliveryConfig};
use crate::store::outbox::{AlertKind, AlertRecord, AlertState};
use crate::store::{Store, StoreError};
pub use clock::{Clock, SystemClock, TokioClock};
pub use live::LiveSettings;
pub use transition::SendOutcome;
use transition::{transition, Outcome};
use transport::{SendError, Transport};

/// What the worker needs from the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub delivery: DeliveryConfig,
    pub alert: AlertConfig,
    pub from: Mailbox,
    pub admin: Mailbox,
    /// `[review] notify` (default: the admin mailbox).
    pub review_notify: Vec<Mailbox>,
    /// `[mail] test_recipient`: the only address of anything a test-mode
    /// notification causes (the admin mailbox if unset, e.g. after test
    /// mode was switched off with test messages still in the outbox).
    pub test_recipient: Option<Mailbox>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("mail.{key}: `{value}` is not an email address: {why}")]
    Address {
        key: &'static str,
        value: String,
        why: String,
    },
}

impl Policy {
    pub fn from_config(cfg: &Config) -> Result<Self, PolicyError> {
        let parse = |key: &'static str, value: &str| {
            value.parse::<Mailbox>().map_err(|e| PolicyError::Address {
                key,
                value: value.to_owned(),
                why: e.to_string(),
            })
        };
        Ok(Self {
            delivery: cfg.delivery.clone(),
            alert: cfg.alert.clone(),
            from: parse("from", &cfg.mail.from)?,
            admin: parse("admin_email", &cfg.mail.admin_email)?,
            review_notify: if cfg.review.notify.is_empty() {
                vec![parse("admin_email", &cfg.mail.admin_email)?]
            } else {
                cfg.review
                    .notify
                    .iter()
                    .map(|v| parse("notify", v))
                    .collect::<Result<_, _>>()?
            },
            test_recipient: cfg
                .mail
                .test_recipient
                .as_deref()
                .map(|v| parse("test_recipient", v))
                .transpose()?,
        })
    }

    /// The wait before attempt `attempts + 1`: `retry_initial` doubled per
    /// attempt, capped at `retry_max`, then ±20 % jitter so that alerts
    /// queued together do not retry together.
    pub fn backoff(&self, attempts: u32, jitter_unit: f64) -> Duration {
        let initial = self.delivery.retry_initial.0;
        let max = self.delivery.retry_max.0;
        let exp = attempts.saturating_sub(1).min(20);
        let base = initial.saturating_mul(1u32 << exp).min(max);
        base.mul_f64(0.8 + 0.4 * jitter_unit.clamp(0.0, 1.0))
    }
}

fn jitter_unit() -> f64 {
    let mut b = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    f64::from(u32::from_be_bytes(b)) / f64::from(u32::MAX)
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(t)
}

fn until(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

/// The delivery worker. Cheap to clone; every clone shares the in-flight set.
#[derive(Clone)]
pub struct Deliverer {
    store: Arc<Store>,
    live: Arc<LiveSettings>,
    clock: Arc<dyn Clock>,
    in_flight: Arc<Mutex<HashSet<String>>>,
    permits: Arc<Semaphore>,
}

/// Why a message could not even be built (a permanent failure).
#[derive(Debug, thiserror::Error)]
enum BuildError {
    #[error("the notification is no longer readable")]
    NoNotification,
    #[error("school {0} is no longer in the directory")]
    NoSchool(String),
    #[error("the school has no deputy DSL")]
    NoDeputy,
    #[error("the recipient's address is not valid")]
    BadAddress,
    #[error("the message could not be built: {0}")]
    Message(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Deliverer {
    pub fn new(
        store: Arc<Store>,
        transport: Arc<dyn Transport>,
        policy: Policy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(policy.delivery.concurrency));
        Self {
            store,
            live: Arc::new(LiveSettings::new(transport, policy)),
            clock,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            permits,
        }
    }

    /// The settings a reload replaces.
    pub fn settings(&self) -> Arc<LiveSettings> {
        self.live.clone()
    }

    fn policy(&self) -> Arc<Policy> {
        self.live.load().1
    }

    /// Runs until `stop` turns true; then waits for sends in flight (their
    /// outcomes are recorded; anything left `sending` resumes at the next
    /// start with the same Message-ID).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let wanted = self.store.deliver_wanted.clone();
        loop {
            let busy = crate::heartbeat::busy(crate::heartbeat::Stage::Deliverer);
            if crate::heartbeat::stall_requested(crate::heartbeat::Stage::Deliverer) {
                std::future::pending::<()>().await;
            }
            let next = match self.tick().await {
                Ok(n) => n,
                Err(e) => {
                    crate::lograte::error!("deliver.tick", error = %e, "delivery worker could not read the outbox; retrying in 5s");
                    Some(add(self.clock.now(), Duration::from_secs(5)))
                }
            };
            let wait = next
                .map(|t| until(self.clock.now(), t))
                .unwrap_or(Duration::from_secs(3600))
                .min(Duration::from_secs(3600));
            drop(busy);
            tokio::select! {
                _ = wanted.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
        }
        // Let sends in flight finish and record their outcome, briefly: the
        // daemon's stop must fit systemd's TimeoutStopSec. One cut off stays
        // `sending` and is resent at the next start with the same Message-ID.
        let policy = self.policy();
        let all = policy.delivery.concurrency as u32;
        let drain = policy.delivery.send_timeout.0.min(Duration::from_secs(5));
        if tokio::time::timeout(drain, self.permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("stopping with sends in flight; they resume at the next start");
        }
    }

    /// One pass over the active alerts: escalations, missed deadlines, and
    /// due sends (started in the background). Returns when the next thing is
    /// due, if anything is waiting.
    pub async fn tick(&self) -> Result<Option<Timestamp>, StoreError> {
        let policy = self.policy();
        let now = self.clock.now();
        let mut next: Option<Timestamp> = None;
        let mut soonest = |t: Timestamp| {
            next = Some(next.map_or(t, |n: Timestamp| n.min(t)));
        };
        let mut due = Vec::new();
        // A retry time further ahead than the longest backoff means the wall
        // clock stepped back since it was set: due now, not that much later.
        let longest = add(now, policy.backoff(u32::MAX, 1.0));
        let in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for a in self.store.active_alerts()? {
            if a.kind == AlertKind::Dsl && !a.escalated {
                let at = add(a.queued_at, policy.delivery.escalate_after.0);
                if now >= at {
                    let has_deputy = self
                        .store
                        .school(&a.urn)?
                        .is_some_and(|s| s.deputy_email.is_some());
                    if let Some(t) =
                        decide(&self.store, &a.id, &Outcome::Escalate { has_deputy }, now)?
                    {
                        self.store.durable(t).await?;
                        tracing::warn!(alert = %a.id, urn = %a.urn, deputy = has_deputy, "alert escalated: not delivered in time");
                    }
                } else {
                    soonest(at);
                }
            }
            if a.kind == AlertKind::Dsl && a.deadline_met.is_none() {
                if let Some(d) = a.deadline {
                    if now > d {
                        if let Some(t) = decide(&self.store, &a.id, &Outcome::DeadlineMissed, now)?
                        {
                            self.store.durable(t).await?;
                            tracing::warn!(alert = %a.id, urn = %a.urn, "alert missed its school-day deadline");
                        }
                    } else {
                        soonest(add(d, Duration::from_secs(1)));
                    }
                }
            }
            if in_flight.contains(&a.id) {
                continue;
            }
            match a.state {
                // Left `sending` by a crash: resend, same Message-ID.
                AlertState::Sending => due.push(a.id.clone()),
                AlertState::Queued | AlertState::RetryWait
                    if a.next_attempt_at <= now || a.next_attempt_at > longest =>
                {
                    due.push(a.id.clone())
                }
                AlertState::Queued | AlertState::RetryWait => soonest(a.next_attempt_at),
                _ => {}
            }
        }
        if due.is_empty() {
            return Ok(next);
        }
        let (sending, ticket) = self.store.mark_sending(&due, now)?;
        if let Some(t) = ticket {
            // The state is on disk before the side effect.
            self.store.durable(t).await?;
        }
        for a in sending {
            self.in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(a.id.clone());
            let me = self.clone();
            tokio::spawn(async move {
                let id = a.id.clone();
                if let Err(e) = me.send_and_record(a).await {
                    crate::lograte::error!("deliver.record", alert = %id, error = %e, "recording a delivery outcome failed; it will be retried");
                }
                me.in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                me.store.deliver_wanted.notify_one();
            });
        }
        Ok(next)
    }

    async fn send_and_record(&self, a: AlertRecord) -> Result<(), StoreError> {
        let (transport, policy) = self.live.load();
        let _permit = self.permits.acquire().await;
        let started = std::time::Instant::now();
        let mut to_hash = None;
        let result = match self.build(&a) {
            Ok(msg) => {
                if matches!(
                    a.kind,
                    AlertKind::Dsl | AlertKind::Deputy | AlertKind::Withdrawal
                ) {
                    to_hash = msg
                        .envelope()
                        .to()
                        .first()
                        .map(|t| self.store.address_hash(t.as_ref()));
                }
                match tokio::time::timeout(
                    policy.delivery.send_timeout.0,
                    transport.send(&a.id, &msg),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Err(SendError {
                        code: None,
                        permanent: false,
                        why: "timed out".into(),
                    }),
                }
            }
            Err(BuildError::Store(e)) => return Err(e),
            Err(e) => Err(SendError {
                code: None,
                permanent: true,
                why: e.to_string(),
            }),
        };
        let now = self.clock.now();
        let outcome = match result {
            Ok(ok) => {
                tracing::info!(alert = %a.id, urn = %a.urn, kind = ?a.kind, code = ok.code, attempt = a.attempts, ms = started.elapsed().as_millis() as u64, "delivered");
                SendOutcome::Delivered { code: ok.code }
            }
            Err(e) if e.permanent => {
                tracing::error!(alert = %a.id, urn = %a.urn, code = ?e.code, attempt = a.attempts, "refused permanently; the admin mailbox is told");
                SendOutcome::Failed {
                    code: e.code,
                    reply: e.why,
                    why: "refused",
                }
            }
            Err(e) => {
                let next = add(now, policy.backoff(a.attempts, jitter_unit()));
                let give_up = add(
                    a.requeued_at.unwrap_or(a.queued_at),
                    policy.delivery.give_up_after.0,
                );
                if next > give_up {
                    tracing::error!(alert = %a.id, urn = %a.urn, code = ?e.code, attempt = a.attempts, "retry window ran out; the admin mailbox is told");
                    SendOutcome::Failed {
                        code: e.code,
                        reply: e.why,
                        why: "gave_up",
                    }
                } else {
                    tracing::warn!(alert = %a.id, urn = %a.urn, code = ?e.code, attempt = a.attempts, retry_at = %next, "not delivered; will retry");
                    SendOutcome::Retry {
                        code: e.code,
                        reply: e.why,
                        next,
                    }
                }
            }
        };
        let outcome = Outcome::Sent(outcome);
        let recorded = self.store.change_alert(&a.id, now, |a, child| {
            let mut t = transition(a, &outcome, now);
            if let Some(h) = &to_hash {
                transition::note_recipient(a, &mut t, h);
            }
            t.into_change(child)
        })?;
        match recorded {
            Some(t) => self.store.durable(t).await,
            None => Err(StoreError::Corrupt(format!("no outbox record {}", a.id))),
        }
    }

    /// Renders and addresses the message for `a`.
    fn build(&self, a: &AlertRecord) -> Result<Message, BuildError> {
        let policy = self.policy();
        let school = || -> Result<_, BuildError> {
            self.store
                .school(&a.urn)?
                .ok_or_else(|| BuildError::NoSchool(a.urn.clone()))
        };
        let addr = |s: &str| s.parse::<Mailbox>().map_err(|_| BuildError::BadAddress);
        let mut extra_to: Vec<Mailbox> = Vec::new();
        let (mut to, mut rendered): (Mailbox, Rendered) = match a.kind {
            AlertKind::AdminSummary => (
                policy.admin.clone(),
                alert::summary::render_summary(&a.summary.clone().unwrap_or_default()),
            ),
            AlertKind::AdminReview => {
                let mut to = policy.review_notify.iter().cloned();
                let first = to.next().unwrap_or_else(|| policy.admin.clone());
                extra_to = to.collect();
                let entries = a.review.as_deref().unwrap_or_default();
                let rendered = match a.reminder {
                    Some(kind) => alert::render_review_reminder(kind, entries),
                    None => alert::render_review_notice(entries),
                };
                (first, rendered)
            }
            AlertKind::AdminExpiry => (
                policy.admin.clone(),
                alert::render_expiry_notice(a.expiry.as_ref()),
            ),
            AlertKind::AdminJournalDamaged => (
                policy.admin.clone(),
                alert::render_journal_notice(&a.journal.clone().unwrap_or_default()),
            ),
            AlertKind::Dsl | AlertKind::Deputy | AlertKind::Withdrawal => {
                let school = school()?;
                let n = self
                    .store
                    .load_notification(&a.receipt)?
                    .ok_or(BuildError::NoNotification)?;
                let facts = AllowedFacts::select(&n, a.child, &school, &a.receipt, &policy.alert)
                    .ok_or(BuildError::NoNotification)?;
                let deputy = match a.kind {
                    AlertKind::Deputy => true,
                    AlertKind::Withdrawal => match &a.follows {
                        Some(f) => self
                            .store
                            .alert(f)?
                            .is_some_and(|f| f.kind == AlertKind::Deputy),
                        None => false,
                    },
                    _ => false,
                };
                let to = if deputy {
                    addr(school.deputy_email.as_deref().ok_or(BuildError::NoDeputy)?)?
                } else {
                    Mailbox::new(
                        Some(alert::one_line(&school.dsl_name)),
                        addr(&school.dsl_email)?.email,
                    )
                };
                let r = if a.kind == AlertKind::Withdrawal {
                    alert::render_withdrawal(&facts)
                } else {
                    alert::render_alert(&facts)
                };
                (to, r)
            }
            AlertKind::AdminEscalation | AlertKind::AdminFailure => {
                let school = school()?;
                let follows = a.follows.as_deref().unwrap_or(&a.id);
                let last = match self.store.alert(follows)? {
                    Some(f) => f.last_reply.or(f.last_code.map(|c| c.to_string())),
                    None => None,
                };
                let reason = if a.kind == AlertKind::AdminFailure {
                    AdminReason::Failed
                } else {
                    AdminReason::Escalated {
                        deputy: school.deputy_email.is_some(),
                    }
                };
                (
                    policy.admin.clone(),
                    alert::render_admin_notice(
                        reason,
                        follows,
                        &school.name,
                        &school.urn,
                        last.as_deref(),
                    ),
                )
            }
        };
        if a.test {
            // A force testing: nothing reaches a school or the admins; the
            // test recipient sees what would have gone, and to whom.
            let school = if a.urn.is_empty() {
                None
            } else {
                self.store.school(&a.urn)?
            };
            let would_be = alert::WouldBe {
                to: &to,
                extra_to: &extra_to,
                school_urn: &a.urn,
                school_name: school.as_ref().map(|s| s.name.as_str()),
            };
            rendered = alert::mark_test(rendered, &would_be);
            to = policy
                .test_recipient
                .clone()
                .unwrap_or_else(|| policy.admin.clone());
            extra_to.clear();
        }
        let mut b = Message::builder()
            .from(policy.from.clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(message_id(&a.id, &policy.from)))
            .header(header::Date::new(std::time::SystemTime::now()));
        for m in extra_to {
            b = b.to(m);
        }
        if let Some(f) = &a.follows {
            let original = message_id(f, &policy.from);
            b = b.in_reply_to(original.clone()).references(original);
        }
        b.multipart(MultiPart::alternative_plain_html(
            rendered.text,
            rendered.html,
        ))
        .map_err(|e| BuildError::Message(e.to_string()))
    }
}

/// Decides what `outcome` does to alert `id` ([`transition`]) and has the
/// store commit it. `None` if there is no such alert or nothing changes.
pub fn decide(
    store: &Store,
    id: &str,
    outcome: &Outcome,
    now: Timestamp,
) -> Result<Option<crate::store::FlushTicket>, StoreError> {
    store.change_alert(id, now, |a, child| {
        transition(a, outcome, now).into_change(child)
    })
}

/// The police withdraw a notification (`POST …/withdraw`): each message's
/// fate is [`transition`]'s ([`Outcome::Withdraw`]); the store commits them
/// with the children withdrawn. `None` if `force` did not send `receipt`.
pub fn withdraw(
    store: &Store,
    force: &str,
    receipt: &str,
    reason: &str,
    now: Timestamp,
) -> Result<
    Option<(
        crate::store::NotificationRecord,
        Option<crate::store::FlushTicket>,
    )>,
    StoreError,
> {
    let outcome = Outcome::Withdraw {
        force: force.to_owned(),
    };
    store.withdraw_with(force, receipt, reason, now, |a| {
        transition(a, &outcome, now).into_change(None)
    })
}

/// The stable Message-ID of an alert: `<ALERT-ID@DOMAIN-OF-FROM>`, the same
/// for every attempt, so a resend after a crash is recognisable.
pub fn message_id(alert_id: &str, from: &Mailbox) -> String {
    format!(
        "<{}@{}>",
        alert_id.to_ascii_lowercase(),
        from.email.domain()
    )
}

#[cfg(test)]
mod tests;

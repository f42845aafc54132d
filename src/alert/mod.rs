//! What leaves the building (DESIGN §6): the allow-list of fields a school's
//! DSL receives about one child, and the rendering of the alert, the
//! withdrawal notice and the admin notices as subject + plain text + HTML.
//! Nothing here reads the postcode, other children, other names or anything
//! else off the allow-list; the admin notices carry no child's details.

mod test_mode;

pub use test_mode::{mark_test, WouldBe, TEST_PREFIX};

use jiff::Timestamp;

use crate::calendar::school_tz;
use crate::config::AlertConfig;
use crate::fields;
use crate::import::School;
use crate::ingest::notification::{Category, Involvement, Notification};

/// A rendered message, before addressing.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Never holds personal data.
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The only facts about one child that may reach that child's school.
#[derive(Clone)]
pub struct AllowedFacts<'a> {
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub date_of_birth: jiff::civil::Date,
    pub school_name: &'a str,
    pub school_urn: &'a str,
    pub occurred_at: Timestamp,
    pub category: Category,
    pub involvement: Involvement,
    pub police_reference: &'a str,
    pub summary_for_school: Option<&'a str>,
    pub voice_of_child: Option<&'a str>,
    pub officer: Option<(&'a str, Option<&'a str>, Option<&'a str>)>,
    pub receipt_id: &'a str,
    pub local_contact: Option<&'a str>,
}

impl<'a> AllowedFacts<'a> {
    /// Picks child `index` of `n` for `school`, under `policy`. `None` if the
    /// notification has no such child.
    pub fn select(
        n: &'a Notification,
        index: u32,
        school: &'a School,
        receipt_id: &'a str,
        policy: &'a AlertConfig,
    ) -> Option<Self> {
        let child = n.children.get(index as usize)?;
        Some(Self {
            given_name: &child.given_name,
            family_name: &child.family_name,
            date_of_birth: child.date_of_birth,
            school_name: &school.name,
            school_urn: &school.urn,
            occurred_at: n.incident.occurred_at,
            category: n.incident.category,
            involvement: child.involvement,
            police_reference: &n.police_reference,
            summary_for_school: n
                .incident
                .summary_for_school
                .as_deref()
                .filter(|_| policy.summary_for_school),
            voice_of_child: child
                .voice_of_child
                .as_deref()
                .filter(|_| policy.voice_of_child),
            officer: n
                .officer
                .as_ref()
                .filter(|_| policy.officer_contact)
                .map(|o| (o.name.as_str(), o.phone.as_deref(), o.email.as_deref())),
            receipt_id,
            local_contact: policy.local_contact.as_deref(),
        })
    }
}

/// One line, none of the forbidden characters of [`crate::fields`] (a header
/// or a table cell): controls and line separators become spaces, bidi
/// controls and invisible characters are dropped. Records stored before
/// the API refused them still render harmless.
pub fn one_line(s: &str) -> String {
    fields::sanitize(s, false).into_owned()
}

/// HTML-escapes text for element content and attribute values; of the
/// forbidden characters only `\n` is kept (see [`one_line`]).
pub fn escape_html(s: &str) -> String {
    let s = fields::sanitize(s, true);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// "Sunday 22 November 2026 at 21:40 (UK time)".
pub fn uk_time(t: Timestamp) -> String {
    let z = t.to_zoned(school_tz());
    format!("{} (UK time)", z.strftime("%A %-d %B %Y at %H:%M"))
}

fn long_date(d: jiff::civil::Date) -> String {
    d.strftime("%-d %B %Y").to_string()
}

fn involvement_text(i: Involvement) -> &'static str {
    match i {
        Involvement::Present => "present at the incident",
        Involvement::Witnessed => "a witness to the incident",
        Involvement::NotPresent => "not present at the incident (it happened at home)",
        Involvement::Unknown => "of unknown involvement (police could not say)",
    }
}

fn category_text(c: Category) -> &'static str {
    match c {
        Category::DomesticAbuse => "domestic abuse",
    }
}

/// The subject of every message about a school's pupil: no personal data.
pub fn subject_for(school_name: &str) -> String {
    format!(
        "Keep in mind: a notification for a pupil at {}",
        one_line(school_name)
    )
}

const GUIDANCE: [&str; 4] = [
    "Keep this child in mind today: a trusted adult should be ready to notice how they are and offer quiet support.",
    "Record this notification on your school's safeguarding system.",
    "Do not raise it with the child's parents or carers, and do not share it beyond those who need to know.",
    "If you need to know more or are worried about the child, call",
];

fn whom_to_call(f: &AllowedFacts<'_>) -> String {
    let mut who = Vec::new();
    if f.officer.is_some() {
        who.push("the officer named above".to_owned());
    }
    match f.local_contact {
        Some(c) => who.push(one_line(c)),
        None => who.push("your local authority's safeguarding team".to_owned()),
    }
    format!("{} {}.", GUIDANCE[3], who.join(" or "))
}

/// The alert to the DSL (or deputy) about one child.
pub fn render_alert(f: &AllowedFacts<'_>) -> Rendered {
    let mut rows: Vec<(&str, String)> = vec![
        ("Child", format!("{} {}", f.given_name, f.family_name)),
        ("Date of birth", long_date(f.date_of_birth)),
        (
            "School",
            format!("{} (URN {})", f.school_name, f.school_urn),
        ),
        ("Incident", uk_time(f.occurred_at)),
        ("Category", category_text(f.category).to_owned()),
        ("The child was", involvement_text(f.involvement).to_owned()),
        ("Police reference", f.police_reference.to_owned()),
    ];
    if let Some(s) = f.summary_for_school {
        rows.push(("What the police say", s.to_owned()));
    }
    if let Some(v) = f.voice_of_child {
        rows.push(("The child's voice", v.to_owned()));
    }
    if let Some((name, phone, email)) = f.officer {
        let mut o = name.to_owned();
        for extra in [phone, email].into_iter().flatten() {
            o.push_str(", ");
            o.push_str(extra);
        }
        rows.push(("Officer to call", o));
    }
    let guidance: Vec<String> = GUIDANCE[..3]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(std::iter::once(whom_to_call(f)))
        .collect();
    let intro = "The police attended a domestic abuse incident where a pupil of your school lives. \
                 This is an Operation Encompass notification, sent so that the school can keep the child in mind.";
    let footer = format!(
        "Receipt {} (quote it to the safeguarding team). Sent by kim, the keep-in-mind relay.",
        f.receipt_id
    );

    let mut text = String::new();
    text.push_str(intro);
    text.push_str("\n\n");
    for (k, v) in &rows {
        text.push_str(&format!("{k}: {}\n", one_line(v)));
    }
    text.push_str("\nWhat to do\n");
    for g in &guidance {
        text.push_str(&format!("- {g}\n"));
    }
    text.push('\n');
    text.push_str(&footer);
    text.push('\n');

    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Keep in mind</title></head>\n<body>\n",
    );
    html.push_str(&format!("<p>{}</p>\n<table>\n", escape_html(intro)));
    for (k, v) in &rows {
        html.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
            escape_html(k),
            escape_html(&one_line(v))
        ));
    }
    html.push_str("</table>\n<h3>What to do</h3>\n<ul>\n");
    for g in &guidance {
        html.push_str(&format!("<li>{}</li>\n", escape_html(g)));
    }
    html.push_str(&format!(
        "</ul>\n<p><small>{}</small></p>\n</body></html>\n",
        escape_html(&footer)
    ));
    Rendered {
        subject: subject_for(f.school_name),
        text,
        html,
    }
}

/// The short notice to a school that was already told, when the police
/// withdraw the notification.
pub fn render_withdrawal(f: &AllowedFacts<'_>) -> Rendered {
    let body = format!(
        "The police have withdrawn the notification with receipt {} (police reference {}) about {} {}. \
         You do not need to act on it. Please note the withdrawal on your safeguarding system beside the original.",
        f.receipt_id,
        one_line(f.police_reference),
        one_line(f.given_name),
        one_line(f.family_name),
    );
    Rendered {
        subject: format!("{} has been withdrawn", subject_for(f.school_name)),
        text: format!("{body}\n\nSent by kim, the keep-in-mind relay.\n"),
        html: format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Withdrawn</title></head>\n<body>\n<p>{}</p>\n<p><small>Sent by kim, the keep-in-mind relay.</small></p>\n</body></html>\n",
            escape_html(&body)
        ),
    }
}

/// Why the admin mailbox is being told about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminReason {
    /// Not delivered within `escalate_after`: copied to the deputy DSL.
    Escalated { deputy: bool },
    /// Given up (permanent refusal or the retry window ran out).
    Failed,
}

/// A notice to the admin mailbox: identifiers only, never the child's details.
pub fn render_admin_notice(
    reason: AdminReason,
    alert_id: &str,
    school_name: &str,
    school_urn: &str,
    last_reply: Option<&str>,
) -> Rendered {
    let (subject, what) = match reason {
        AdminReason::Escalated { deputy } => (
            "kim: an alert is late and has been escalated",
            format!(
                "Alert {alert_id} for a pupil at {} (URN {school_urn}) has not been delivered yet. {}",
                one_line(school_name),
                if deputy {
                    "It has also been sent to the school's deputy DSL."
                } else {
                    "The school has no deputy DSL on file: please contact the school another way."
                }
            ),
        ),
        AdminReason::Failed => (
            "kim: an alert could not be delivered",
            format!(
                "Alert {alert_id} for a pupil at {} (URN {school_urn}) could not be delivered and kim has stopped trying. \
                 Please contact the school's DSL another way; `kim status` with the receipt shows its state.",
                one_line(school_name)
            ),
        ),
    };
    let reply = last_reply
        .map(|r| format!("\nLast reply from the mail server: {}\n", one_line(r)))
        .unwrap_or_default();
    Rendered {
        subject: subject.to_owned(),
        text: format!("{what}\n{reply}"),
        html: format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>kim</title></head>\n<body>\n<p>{}</p>\n<p>{}</p>\n</body></html>\n",
            escape_html(&what),
            escape_html(reply.trim())
        ),
    }
}

/// The admin mailbox's notice after `kim journal salvage`: which forces
/// must re-send which references (identifiers only, never a child's details).
pub fn render_journal_notice(loss: &crate::store::JournalLoss) -> Rendered {
    let mut by_force: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for ids in &loss.named {
        by_force.entry(&ids.force).or_default().push(format!(
            "{} (receipt {})",
            one_line(&ids.police_reference),
            one_line(&ids.receipt)
        ));
    }
    let unnamed = (loss.lost as usize).saturating_sub(loss.named.len());
    let mut text = format!(
        "kim's accept journal was damaged on disk. {} notification(s) that kim had acknowledged to the police \
         could not be read and were never matched or sent to a school. Every other notification was applied.\n",
        loss.lost
    );
    if !by_force.is_empty() {
        text.push_str("\nPlease ask each force to re-send these references (their status answers 404 until then):\n");
        for (force, refs) in &by_force {
            text.push_str(&format!(
                "- force {}: {}\n",
                one_line(force),
                refs.join(", ")
            ));
        }
    }
    if unnamed > 0 {
        text.push_str(&format!(
            "\n{unnamed} further notification(s) could not be identified: ask the forces to check which of their \
             receipts from around this time answer 404 on GET /v1/notifications/RECEIPT, and re-send those.\n"
        ));
    }
    if !loss.kept.is_empty() {
        text.push_str(&format!(
            "\nThe damaged journal segment is kept (never deleted) at: {}\n",
            loss.kept
                .iter()
                .map(|k| one_line(k))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Rendered {
        subject: "kim: notifications were lost from the accept journal and must be re-sent".to_owned(),
        html: format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>kim</title></head>\n<body>\n<pre>{}</pre>\n</body></html>\n",
            escape_html(&text)
        ),
        text,
    }
}

/// The expiry notice to the admin mailbox: which CRL (file or URL) or
/// certificate (subject) expires when, and what to do. Identifiers only.
pub fn render_expiry_notice(item: Option<&crate::store::expiry_notice::ExpiryItem>) -> Rendered {
    let (what, name, at) = match item {
        Some(i) => (i.what.as_str(), one_line(&i.name), i.expires_at),
        None => ("item", String::new(), jiff::Timestamp::UNIX_EPOCH),
    };
    let past = at <= jiff::Timestamp::now();
    let when = at
        .to_zoned(crate::calendar::school_tz())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string();
    let (label, consequence, fix) = match what {
        "crl" => (
            "CRL",
            "once it expires every police client certificate it covers is refused (fail closed): no force can connect",
            "put a fresh CRL in place (the file, or the distribution point kim fetches); kim picks it up within [server] crl_refresh",
        ),
        "server_certificate" => (
            "server certificate",
            "once it expires police systems refuse to connect to kim",
            "renew it, write it over the file and run `systemctl reload kim`",
        ),
        _ => (
            "police CA certificate",
            "once it expires client certificates issued by it are refused",
            "add the CA's renewed certificate to [server] client_ca and run `systemctl reload kim`",
        ),
    };
    let verb = if past { "expired" } else { "expires" };
    let text = format!(
        "The {label} {name} {verb} at {when}.\n\nWhy it matters: {consequence}.\nWhat to do: {fix}.\n\n\
         kim sends this notice at most once a day for each item while it is within [server] expiry_warning_crl / expiry_warning_cert.\n"
    );
    Rendered {
        subject: format!("kim: the {label} {name} {verb} {when}"),
        html: format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>kim</title></head>\n<body>\n<pre>{}</pre>\n</body></html>\n",
            escape_html(&text)
        ),
        text,
    }
}

/// The `[review] notify` notice: each waiting child by receipt, index,
/// reason code, force, police reference and deadline (UK time), with the
/// commands to open and decide it. Identifiers only, never a child's details.
pub fn render_review_notice(entries: &[crate::store::review_digest::ReviewEntry]) -> Rendered {
    let n = entries.len();
    let subject = if n == 1 {
        "kim: 1 child needs review".to_owned()
    } else {
        format!("kim: {n} children need review")
    };
    let text = format!(
        "{n} child(ren) could not be matched to a school automatically and wait for review. \
         Each must be decided before its deadline.\n\n{}",
        review_lines(entries)
    );
    review_message(subject, text)
}

/// A reminder to the `[review] notify` addresses: the children still
/// waiting on their deadline day (at `[review] remind_at`) or at the
/// deadline itself, listed as in the notice. Identifiers only.
pub fn render_review_reminder(
    kind: crate::store::review_remind::ReviewReminder,
    entries: &[crate::store::review_digest::ReviewEntry],
) -> Rendered {
    use crate::store::review_remind::ReviewReminder;
    let n = entries.len();
    let children = if n == 1 {
        "1 child still needs".to_owned()
    } else {
        format!("{n} children still need")
    };
    let by = entries
        .iter()
        .map(|e| e.deadline)
        .min()
        .map(|d| d.to_zoned(school_tz()).strftime("%H:%M").to_string())
        .unwrap_or_default();
    let (subject, lead) = match kind {
        ReviewReminder::RemindAt => (
            format!("kim: reminder: {children} review before {by}"),
            format!(
                "Reminder: {children} review before the school day starts ({by} UK time). \
                 Their school has not been told yet.\n\n"
            ),
        ),
        ReviewReminder::Deadline => (
            format!("kim: deadline passed: {children} review"),
            format!(
                "The deadline has passed: {children} review and their school was not told \
                 before the school day started. Each is recorded as deadline_missed in the audit. \
                 Please decide them now.\n\n"
            ),
        ),
    };
    review_message(subject, format!("{lead}{}", review_lines(entries)))
}

/// One line per waiting child, and how to open and decide it.
fn review_lines(entries: &[crate::store::review_digest::ReviewEntry]) -> String {
    let mut text = String::new();
    for e in entries {
        let deadline = uk_time(e.deadline);
        text.push_str(&format!(
            "- receipt {} child {}: reason {}, force {}, police reference {}, deadline {}\n  kim review show {} {}\n  kim status {} --reveal\n",
            one_line(&e.receipt),
            e.index,
            one_line(&e.reason),
            one_line(&e.force),
            one_line(&e.police_reference),
            deadline,
            one_line(&e.receipt),
            e.index,
            one_line(&e.receipt),
        ));
    }
    text.push_str(
        "\nThe child beside the candidate pupils: `kim review show RECEIPT CHILD`; \
         the child's details: `kim status RECEIPT --reveal` (or `kim review list --reveal` for every waiting child; \
         both recorded in the audit). Decide with `kim review assign RECEIPT CHILD --pupil PUPIL_ID`, \
         `kim review assign RECEIPT CHILD URN` or \
         `kim review dismiss RECEIPT CHILD --reason TEXT`.\n",
    );
    text
}

fn review_message(subject: String, text: String) -> Rendered {
    Rendered {
        subject,
        html: format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>kim</title></head>\n<body>\n<pre>{}</pre>\n</body></html>\n",
            escape_html(&text)
        ),
        text,
    }
}

pub mod summary;

#[cfg(test)]
mod tests;

//! The renderers of a report's [`Figures`]: text for a person, CSV rows
//! (`figure,key,value`) for a spreadsheet, JSON (serde, in the verb). Each
//! prints the figures as computed, never recomputing one.

use std::fmt::Write as _;

use super::{Count, Figures};

/// One CSV row: the figure (its JSON path), a key (force, day, URN,
/// admin, reason; empty for a single figure) and the value.
pub type Row = (String, String, String);

fn opt(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

/// The figures as `figure,key,value` rows, in the order of the JSON.
pub fn rows(f: &Figures) -> Vec<Row> {
    let mut r: Vec<Row> = Vec::new();
    let mut one = |fig: &str, key: &str, v: String| r.push((fig.into(), key.into(), v));
    one("from", "", f.from.clone());
    one("to", "", f.to.clone());
    one("time_zone", "", f.time_zone.clone());
    one("force", "", f.force.clone().unwrap_or_default());
    one("audit.events", "", f.audit.events.to_string());
    one("audit.head_hash", "", f.audit.head_hash.clone());
    one("audit.from_event", "", f.audit.from_event.to_string());
    one(
        "received.notifications",
        "",
        f.received.notifications.to_string(),
    );
    one("received.children", "", f.received.children.to_string());
    one("received.resends", "", f.received.resends.to_string());
    one("received.conflicts", "", f.received.conflicts.to_string());
    let mut counts = |name: &str, m: &std::collections::BTreeMap<String, Count>| {
        for (k, c) in m {
            one(
                &format!("{name}.notifications"),
                k,
                c.notifications.to_string(),
            );
            one(&format!("{name}.children"), k, c.children.to_string());
            one(&format!("{name}.resends"), k, c.resends.to_string());
            one(&format!("{name}.conflicts"), k, c.conflicts.to_string());
        }
    };
    counts("per_force", &f.per_force);
    counts("per_day", &f.per_day);
    let m = &f.matching;
    one(
        "matching.matched_automatically",
        "",
        m.matched_automatically.to_string(),
    );
    one("matching.sent_to_review", "", m.sent_to_review.to_string());
    one(
        "matching.matched_after_review",
        "",
        m.matched_after_review.to_string(),
    );
    for (k, v) in &m.matched_after_review_by {
        one("matching.matched_after_review_by", k, v.to_string());
    }
    for (k, v) in &m.review_reasons {
        one("matching.review_reasons", k, v.to_string());
    }
    let o = &f.outcomes;
    one("outcomes.delivered", "", o.delivered.to_string());
    one("outcomes.dismissed", "", o.dismissed.to_string());
    one("outcomes.withdrawn", "", o.withdrawn.to_string());
    one("outcomes.failed", "", o.failed.to_string());
    one("outcomes.waiting", "", o.waiting.to_string());
    one("deadline.met", "", f.deadline.met.to_string());
    one("deadline.missed", "", f.deadline.missed.to_string());
    let t = &f.receipt_to_delivery_seconds;
    one("receipt_to_delivery_seconds.count", "", t.count.to_string());
    one("receipt_to_delivery_seconds.p50", "", opt(t.p50));
    one("receipt_to_delivery_seconds.p95", "", opt(t.p95));
    one("receipt_to_delivery_seconds.max", "", opt(t.max));
    for s in &f.schools {
        one("schools.name", &s.urn, s.name.clone().unwrap_or_default());
        one(
            "schools.children_notified",
            &s.urn,
            s.children_notified.to_string(),
        );
        one(
            "schools.alerts_delivered",
            &s.urn,
            s.alerts_delivered.to_string(),
        );
        one(
            "schools.deadline_misses",
            &s.urn,
            s.deadline_misses.to_string(),
        );
    }
    let e = &f.events;
    one("events.escalations", "", e.escalations.to_string());
    one(
        "events.deputy_copies_delivered",
        "",
        e.deputy_copies_delivered.to_string(),
    );
    one("events.withdrawals", "", e.withdrawals.to_string());
    one(
        "events.withdrawal_notices_delivered",
        "",
        e.withdrawal_notices_delivered.to_string(),
    );
    one("events.resends", "", e.resends.to_string());
    one("events.conflicts", "", e.conflicts.to_string());
    more_rows(f, &mut one);
    r
}

/// The rows of the figures added for the page (issue 15).
fn more_rows(f: &Figures, one: &mut impl FnMut(&str, &str, String)) {
    let h = &f.headline;
    one(
        "headline.children_kept_in_mind",
        "",
        h.children_kept_in_mind.to_string(),
    );
    one("headline.schools_told", "", h.schools_told.to_string());
    one(
        "headline.before_school_day_percent",
        "",
        opt(h.before_school_day_percent),
    );
    for (day, o) in &f.outcomes_per_day {
        for (k, v) in [
            ("delivered", o.delivered),
            ("dismissed", o.dismissed),
            ("withdrawn", o.withdrawn),
            ("failed", o.failed),
            ("waiting", o.waiting),
        ] {
            one(&format!("outcomes_per_day.{k}"), day, v.to_string());
        }
    }
    for b in &f.delivery_time_histogram {
        let key = opt(b.up_to_seconds);
        one("delivery_time_histogram.met", &key, b.met.to_string());
        one("delivery_time_histogram.missed", &key, b.missed.to_string());
    }
    for (name, t) in [
        (
            "receipt_to_deadline_seconds",
            &f.receipt_to_deadline_seconds,
        ),
        ("review_to_decision_seconds", &f.review_to_decision_seconds),
    ] {
        one(&format!("{name}.count"), "", t.count.to_string());
        one(&format!("{name}.p50"), "", opt(t.p50));
        one(&format!("{name}.p95"), "", opt(t.p95));
        one(&format!("{name}.max"), "", opt(t.max));
    }
    for (k, v) in misses(f) {
        one(&format!("misses_by_cause.{k}"), "", v.to_string());
    }
    for (day, d) in &f.review_per_day {
        one("review_per_day.entered", day, d.entered.to_string());
        one("review_per_day.decided", day, d.decided.to_string());
    }
}

fn misses(f: &Figures) -> [(&'static str, u64); 5] {
    let m = &f.misses_by_cause;
    [
        ("arrived_too_late", m.arrived_too_late),
        ("kim_down", m.kim_down),
        ("waited_in_review", m.waited_in_review),
        (
            "relay_refused_or_unreachable",
            m.relay_refused_or_unreachable,
        ),
        ("other", m.other),
    ]
}

/// The rows as CSV text with a header (quoted where a school name needs it).
pub fn csv(f: &Figures) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["figure", "key", "value"])?;
    for (a, b, c) in rows(f) {
        w.write_record([a, b, c])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn secs(v: Option<u64>) -> String {
    match v {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s} s"),
        Some(s) if s < 7200 => format!("{} min ({s} s)", s / 60),
        Some(s) => format!("{:.1} h ({s} s)", s as f64 / 3600.0),
    }
}

/// The figures for a person to read.
pub fn text(f: &Figures) -> String {
    let mut s = String::new();
    let mut w = |line: String| {
        let _ = writeln!(s, "{line}");
    };
    let force = f
        .force
        .as_deref()
        .map(|x| format!(", force {x}"))
        .unwrap_or_default();
    w(format!(
        "kim report {} to {} ({} dates{force})",
        f.from, f.to, f.time_zone
    ));
    w(format!(
        "audit chain verified from event {} to the head, event {} ({})",
        f.audit.from_event, f.audit.events, f.audit.head_hash
    ));
    w(f.headline.sentence());
    w(String::new());
    w(format!(
        "received: {} notifications, {} children",
        f.received.notifications, f.received.children
    ));
    for (what, m) in [("force", &f.per_force), ("day  ", &f.per_day)] {
        for (k, c) in m {
            w(format!(
                "  {what} {k:<20} {:>7} notifications {:>7} children {:>5} re-sends {:>5} conflicts",
                c.notifications, c.children, c.resends, c.conflicts
            ));
        }
    }
    let m = &f.matching;
    w(String::new());
    w("matching:".into());
    w(format!(
        "  matched automatically   {:>7}",
        m.matched_automatically
    ));
    w(format!("  sent to review          {:>7}", m.sent_to_review));
    w(format!(
        "  matched after review    {:>7}",
        m.matched_after_review
    ));
    for (k, v) in &m.matched_after_review_by {
        w(format!("    by {k:<20} {v:>7}"));
    }
    for (k, v) in &m.review_reasons {
        w(format!("  review reason {k:<24} {v:>7}"));
    }
    let o = &f.outcomes;
    w(String::new());
    w("children's outcomes:".into());
    w(format!("  delivered (school told) {:>7}", o.delivered));
    w(format!("  dismissed in review     {:>7}", o.dismissed));
    w(format!("  withdrawn by the police {:>7}", o.withdrawn));
    w(format!("  failed                  {:>7}", o.failed));
    w(format!("  still waiting           {:>7}", o.waiting));
    w(format!(
        "deadline met {}, missed {}",
        f.deadline.met, f.deadline.missed
    ));
    let t = &f.receipt_to_delivery_seconds;
    w(format!(
        "receipt to delivery ({} alerts): p50 {}, p95 {}, max {}",
        t.count,
        secs(t.p50),
        secs(t.p95),
        secs(t.max)
    ));
    for (k, v) in misses(f) {
        w(format!("  missed: {:<28} {v:>7}", k.replace('_', " ")));
    }
    let t = &f.review_to_decision_seconds;
    w(format!(
        "review entry to decision ({} children): p50 {}, p95 {}, max {}",
        t.count,
        secs(t.p50),
        secs(t.p95),
        secs(t.max)
    ));
    w(String::new());
    w(format!(
        "{:<8} {:<40} {:>9} {:>9} {:>7}",
        "URN", "SCHOOL", "CHILDREN", "DELIVERED", "MISSED"
    ));
    for r in &f.schools {
        w(format!(
            "{:<8} {:<40} {:>9} {:>9} {:>7}",
            r.urn,
            r.name.as_deref().unwrap_or("(not in the directory)"),
            r.children_notified,
            r.alerts_delivered,
            r.deadline_misses
        ));
    }
    w(format!("{} school(s)", f.schools.len()));
    let e = &f.events;
    w(String::new());
    w(format!("escalations             {:>7}", e.escalations));
    w(format!(
        "deputy copies delivered {:>7}",
        e.deputy_copies_delivered
    ));
    w(format!("withdrawals (police)    {:>7}", e.withdrawals));
    w(format!(
        "withdrawal notices sent {:>7}",
        e.withdrawal_notices_delivered
    ));
    w(format!("re-sends (police)       {:>7}", e.resends));
    w(format!("conflicts (police)      {:>7}", e.conflicts));
    s
}

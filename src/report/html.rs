//! `kim report --html FILE`: the report's [`Figures`] as one self-contained
//! page (issue 15): no script, font, image or link from anywhere (no URL at
//! all), charts as inline SVG ([`super::svg`]), every string HTML-escaped.
//! It prints on A4 and reads on a phone (tables scroll in their own box;
//! the page itself never scrolls sideways). It renders the figures as
//! computed, never recomputing one.

use std::fmt::Write as _;

use super::derived::TimeBucket;
use super::svg::{escape, hbars, legend, Bars, Series};
use super::{Figures, Times};

const STYLE: &str = "\
*{box-sizing:border-box}\
html{-webkit-text-size-adjust:100%}\
body{margin:0;font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1b1b;background:#fff}\
main{max-width:62rem;margin:0 auto;padding:1rem}\
h1{font-size:1.5rem;margin:.2rem 0 .4rem;overflow-wrap:anywhere}\
h2{font-size:1.15rem;margin:1.6rem 0 .4rem;border-bottom:2px solid #1d5b79;padding-bottom:.2rem}\
p,li,td,th{overflow-wrap:anywhere}\
.sub{color:#444;font-size:.9rem;margin:.2rem 0}\
.tiles{display:flex;flex-wrap:wrap;gap:.75rem;margin:1rem 0}\
.tile{flex:1 1 11rem;background:#eef5f8;border-left:6px solid #1d5b79;padding:.6rem .8rem}\
.tile b{display:block;font-size:2rem;line-height:1.1}\
svg{display:block;width:100%;height:auto;max-width:100%}\
.legend{list-style:none;padding:0;margin:.3rem 0;display:flex;flex-wrap:wrap;gap:.3rem 1rem;font-size:.9rem}\
.key{display:inline-block;width:.9rem;height:.9rem;margin-right:.35rem;vertical-align:-.1rem}\
.scroll{overflow-x:auto;max-width:100%}\
table{border-collapse:collapse;width:100%;font-size:.92rem}\
th,td{border-bottom:1px solid #ccc;padding:.3rem .45rem;text-align:left;vertical-align:top}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.figs{columns:2 16rem;column-gap:2rem}\
.figs table{break-inside:avoid;margin-bottom:.8rem}\
footer{margin-top:2rem;color:#555;font-size:.8rem}\
@media print{@page{size:A4;margin:14mm}body{font-size:10pt}main{max-width:none;padding:0}\
section{break-inside:avoid}h2{break-after:avoid}.scroll{overflow:visible}\
.tile{border:1px solid #1d5b79;border-left-width:6px}tr{break-inside:avoid}}";

const DELIVERED: &str = "#2e7d32";
const DISMISSED: &str = "#8d8d8d";
const WITHDRAWN: &str = "#6a4c93";
const FAILED: &str = "#c62828";
const WAITING: &str = "#e0a100";
const MISSED: &str = "#d84315";
const REVIEW_IN: &str = "#1d5b79";
const REVIEW_OUT: &str = "#7fb7d4";

/// A duration for a person: seconds, minutes or hours.
fn dur(v: Option<u64>) -> String {
    match v {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s} s"),
        Some(s) if s < 7200 => format!("{} min", s / 60),
        Some(s) => format!("{:.1} h", s as f64 / 3600.0),
    }
}

fn bucket_label(b: &TimeBucket, prev: Option<u64>) -> String {
    let short = |s: u64| {
        if s < 3600 {
            format!("{} min", s / 60)
        } else {
            format!("{} h", s / 3600)
        }
    };
    match (b.up_to_seconds, prev) {
        (Some(s), _) => format!("≤{}", short(s)),
        (None, Some(p)) => format!(">{}", short(p)),
        (None, None) => "all".into(),
    }
}

/// Where `secs` falls on the histogram's axis (in bars), between bucket
/// bounds by linear interpolation.
fn position(hist: &[TimeBucket], secs: u64) -> f64 {
    let mut lo = 0u64;
    for (i, b) in hist.iter().enumerate() {
        match b.up_to_seconds {
            Some(hi) if secs <= hi => {
                return i as f64 + (secs - lo) as f64 / (hi - lo).max(1) as f64;
            }
            Some(hi) => lo = hi,
            None => return i as f64 + 0.5,
        }
    }
    hist.len() as f64
}

/// A table of `(label, value)` rows with a header.
fn table(out: &mut String, head: (&str, &str), rows: &[(String, String)]) {
    let _ = write!(
        out,
        r#"<table><thead><tr><th>{}</th><th class="n">{}</th></tr></thead><tbody>"#,
        escape(head.0),
        escape(head.1)
    );
    for (k, v) in rows {
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td class="n">{}</td></tr>"#,
            escape(k),
            escape(v)
        );
    }
    out.push_str("</tbody></table>");
}

fn times_line(t: &Times) -> String {
    format!(
        "{} children: p50 {}, p95 {}, max {}",
        t.count,
        dur(t.p50),
        dur(t.p95),
        dur(t.max)
    )
}

/// The page.
pub fn page(f: &Figures) -> String {
    let mut o = String::with_capacity(16 * 1024 + f.schools.len() * 200);
    let period = format!("{} to {}", f.from, f.to);
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="en-GB"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>kim report {}</title><style>{STYLE}</style></head><body><main>"#,
        escape(&period)
    );
    let force = f
        .force
        .as_deref()
        .map(|x| format!(", force {x}"))
        .unwrap_or_default();
    let _ = write!(
        o,
        r#"<h1>What kim did: {}</h1><p class="sub">UK dates ({}){}. Notifications received in the period, followed through every later event.</p><p class="sub">Audit chain verified from event {} to the head, event {} ({}).</p>"#,
        escape(&period),
        escape(&f.time_zone),
        escape(&force),
        f.audit.from_event,
        f.audit.events,
        escape(&f.audit.head_hash)
    );
    headline(&mut o, f);
    per_day(&mut o, f);
    delivery(&mut o, f);
    misses(&mut o, f);
    review(&mut o, f);
    schools(&mut o, f);
    counts(&mut o, f);
    let _ = writeln!(
        o,
        "<footer>Made by kim from its verified audit and the school directory only: no child's name, date of birth or postcode is in this page. {} received in the period.</footer></main></body></html>",
        escape(&format!(
            "{} notifications, {} children",
            f.received.notifications, f.received.children
        ))
    );
    o
}

fn headline(o: &mut String, f: &Figures) {
    let h = &f.headline;
    let pct = h
        .before_school_day_percent
        .map(|p| format!("{p}%"))
        .unwrap_or_else(|| "-".into());
    let _ = write!(
        o,
        r#"<section class="tiles" aria-label="{}"><div class="tile"><b>{}</b>children kept in mind</div><div class="tile"><b>{}</b>schools told</div><div class="tile"><b>{}</b>before the school day</div></section>"#,
        escape(&h.sentence()),
        h.children_kept_in_mind,
        h.schools_told,
        escape(&pct)
    );
}

fn per_day(o: &mut String, f: &Figures) {
    let days: Vec<&String> = f.outcomes_per_day.keys().collect();
    let col = |g: fn(&super::Outcomes) -> u64| -> Vec<u64> {
        f.outcomes_per_day.values().map(g).collect()
    };
    let series = vec![
        Series {
            name: "delivered",
            colour: DELIVERED,
            values: col(|x| x.delivered),
        },
        Series {
            name: "dismissed",
            colour: DISMISSED,
            values: col(|x| x.dismissed),
        },
        Series {
            name: "withdrawn",
            colour: WITHDRAWN,
            values: col(|x| x.withdrawn),
        },
        Series {
            name: "failed",
            colour: FAILED,
            values: col(|x| x.failed),
        },
        Series {
            name: "still waiting",
            colour: WAITING,
            values: col(|x| x.waiting),
        },
    ];
    let keys: Vec<(&str, &str)> = series.iter().map(|s| (s.name, s.colour)).collect();
    let chart = Bars {
        title: "Children per day of receipt, by outcome",
        labels: days
            .iter()
            .map(|d| d.get(5..).unwrap_or(d).to_owned())
            .collect(),
        series,
        stacked: true,
        marker: None,
    };
    let _ = write!(
        o,
        "<section><h2>Children per day, by outcome</h2>{}{}</section>",
        chart.render(),
        legend(&keys)
    );
}

fn delivery(o: &mut String, f: &Figures) {
    let hist = &f.delivery_time_histogram;
    let mut prev = None;
    let labels = hist
        .iter()
        .map(|b| {
            let l = bucket_label(b, prev);
            prev = b.up_to_seconds;
            l
        })
        .collect();
    let marker = f.receipt_to_deadline_seconds.p50.map(|s| {
        (
            position(hist, s),
            format!("deadline (median {} after receipt)", dur(Some(s))),
        )
    });
    let chart = Bars {
        title: "Receipt to delivery of the school's alert, children per time band",
        labels,
        series: vec![
            Series {
                name: "deadline met",
                colour: DELIVERED,
                values: hist.iter().map(|b| b.met).collect(),
            },
            Series {
                name: "deadline missed",
                colour: MISSED,
                values: hist.iter().map(|b| b.missed).collect(),
            },
        ],
        stacked: true,
        marker,
    };
    let _ = write!(
        o,
        "<section><h2>Receipt to delivery</h2>{}{}<p>Receipt to delivery, {}. Time the school had before its deadline (the next school day's start): {}.</p></section>",
        chart.render(),
        legend(&[("deadline met", DELIVERED), ("deadline missed", MISSED), ("deadline", "#b00020")]),
        escape(&times_line(&f.receipt_to_delivery_seconds)),
        escape(&times_line(&f.receipt_to_deadline_seconds)),
    );
}

fn misses(o: &mut String, f: &Figures) {
    let m = &f.misses_by_cause;
    let items = vec![
        ("arrived too late".to_owned(), m.arrived_too_late),
        ("kim down".to_owned(), m.kim_down),
        ("waited in review".to_owned(), m.waited_in_review),
        (
            "relay refused or unreachable".to_owned(),
            m.relay_refused_or_unreachable,
        ),
        ("other".to_owned(), m.other),
    ];
    let _ = write!(
        o,
        "<section><h2>Deadline misses by cause</h2><p>Deadline met for {} children, missed for {}.</p>{}</section>",
        f.deadline.met,
        f.deadline.missed,
        hbars("Deadline misses by cause", &items, MISSED)
    );
}

fn review(o: &mut String, f: &Figures) {
    let labels = f
        .review_per_day
        .keys()
        .map(|d| d.get(5..).unwrap_or(d).to_owned())
        .collect();
    let chart = Bars {
        title: "Review queue: children entering review and decided, per day",
        labels,
        series: vec![
            Series {
                name: "entered review",
                colour: REVIEW_IN,
                values: f.review_per_day.values().map(|d| d.entered).collect(),
            },
            Series {
                name: "decided",
                colour: REVIEW_OUT,
                values: f.review_per_day.values().map(|d| d.decided).collect(),
            },
        ],
        stacked: false,
        marker: None,
    };
    let m = &f.matching;
    let _ = write!(
        o,
        "<section><h2>Review queue</h2>{}{}<p>Review entry to decision, {}.</p><div class=\"figs\">",
        chart.render(),
        legend(&[("entered review", REVIEW_IN), ("decided", REVIEW_OUT)]),
        escape(&times_line(&f.review_to_decision_seconds))
    );
    let reasons: Vec<(String, String)> = m
        .review_reasons
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    table(o, ("Review reason", "Children"), &reasons);
    let by: Vec<(String, String)> = m
        .matched_after_review_by
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    table(o, ("Matched after review by", "Children"), &by);
    o.push_str("</div></section>");
}

fn schools(o: &mut String, f: &Figures) {
    let _ = write!(
        o,
        r#"<section><h2>Per school</h2><p>{} schools.</p><div class="scroll"><table><thead><tr><th>URN</th><th>School</th><th class="n">Children notified</th><th class="n">Alerts delivered</th><th class="n">Deadline misses</th></tr></thead><tbody>"#,
        f.schools.len()
    );
    for s in &f.schools {
        let _ = write!(
            o,
            r#"<tr><td>{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            escape(&s.urn),
            escape(s.name.as_deref().unwrap_or("(not in the directory)")),
            s.children_notified,
            s.alerts_delivered,
            s.deadline_misses
        );
    }
    o.push_str("</tbody></table></div></section>");
}

fn counts(o: &mut String, f: &Figures) {
    let n = |v: u64| v.to_string();
    o.push_str(r#"<section><h2>All figures</h2><div class="figs">"#);
    let forces: Vec<(String, String)> = f
        .per_force
        .iter()
        .map(|(k, c)| {
            (
                k.clone(),
                format!(
                    "{} notifications, {} children, {} re-sends, {} conflicts",
                    c.notifications, c.children, c.resends, c.conflicts
                ),
            )
        })
        .collect();
    table(o, ("Force", "Received"), &forces);
    let m = &f.matching;
    let oc = &f.outcomes;
    let e = &f.events;
    table(
        o,
        ("Children", "Count"),
        &[
            ("matched automatically".into(), n(m.matched_automatically)),
            ("sent to review".into(), n(m.sent_to_review)),
            ("matched after review".into(), n(m.matched_after_review)),
            ("delivered (school told)".into(), n(oc.delivered)),
            ("dismissed in review".into(), n(oc.dismissed)),
            ("withdrawn by the police".into(), n(oc.withdrawn)),
            ("failed".into(), n(oc.failed)),
            ("still waiting".into(), n(oc.waiting)),
        ],
    );
    table(
        o,
        ("Events", "Count"),
        &[
            ("escalations".into(), n(e.escalations)),
            (
                "deputy copies delivered".into(),
                n(e.deputy_copies_delivered),
            ),
            ("withdrawals (police)".into(), n(e.withdrawals)),
            (
                "withdrawal notices delivered".into(),
                n(e.withdrawal_notices_delivered),
            ),
            ("re-sends (police)".into(), n(e.resends)),
            ("conflicts (police)".into(), n(e.conflicts)),
        ],
    );
    o.push_str("</div></section>");
}

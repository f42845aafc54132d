//! The soak's verdict and output: the least-squares slopes over the
//! samples after the warm-up, checked against the bounds, and written out
//! as soak.csv, soak.svg and soak-figures.md (the figures for docs/soak.md).

use std::fmt::Write as _;

use crate::plot;
use crate::probe::{self, Sample};
use crate::Settings;

/// Checks the slopes (adding to `broken`), writes the CSV, the SVG and the
/// figures; the figures as markdown. `facts` are lines about the run
/// (`"  - …"` ones are sub-items).
pub fn finish(
    set: &Settings,
    machine: &str,
    revision: &str,
    samples: &[Sample],
    preload_done: Option<f64>,
    facts: &[String],
    broken: &mut Vec<String>,
) -> String {
    // The slopes over the measured part (after the warm-up, which lasts
    // at least until a minute after the preload), per hour.
    let warmup = (set.warmup_secs as f64).max(preload_done.unwrap_or(set.secs as f64) + 60.0);
    let measured: Vec<&Sample> = samples.iter().filter(|s| s.t >= warmup).collect();
    let fit_h = |f: &dyn Fn(&Sample) -> f64| {
        probe::fit(
            &measured
                .iter()
                .map(|s| (s.t / 3600.0, f(s)))
                .collect::<Vec<_>>(),
        )
    };
    let rss = fit_h(&|s| s.rss_kib as f64 / 1024.0);
    let fds = fit_h(&|s| s.fds as f64);
    let p99 = fit_h(&|s| s.p99_ms);
    let cpu = fit_h(&|s| s.cpu_pct);
    let slope = |f: Option<(f64, f64)>| f.map_or(f64::NAN, |f| f.1);
    if slope(rss) > set.max_rss_mib_per_h || rss.is_none() {
        broken.push(format!(
            "RSS grows {:.2} MiB/h after the warm-up (bound {} MiB/h)",
            slope(rss),
            set.max_rss_mib_per_h
        ));
    }
    if slope(fds) > set.max_fds_per_h || fds.is_none() {
        broken.push(format!(
            "open FDs grow {:.2}/h after the warm-up (bound {}/h)",
            slope(fds),
            set.max_fds_per_h
        ));
    }
    let (first, lastm) = (measured.first(), measured.last());
    let per_notification = match (first, lastm) {
        (Some(a), Some(b)) if b.accepted > a.accepted => {
            (b.store_bytes as f64 - a.store_bytes as f64) / (b.accepted - a.accepted) as f64
        }
        _ => f64::NAN,
    };
    let all_lat: Vec<f64> = measured.iter().map(|s| s.p99_ms).collect();
    let worst_p99 = all_lat.iter().cloned().fold(0.0, f64::max);
    let mean = |f: &dyn Fn(&Sample) -> f64| {
        measured.iter().map(|s| f(s)).sum::<f64>() / measured.len().max(1) as f64
    };

    // Output: CSV, SVG, and the figures as markdown.
    let mut csv = String::from(probe::CSV_HEADER);
    csv.push('\n');
    for s in samples {
        csv.push_str(&s.csv());
        csv.push('\n');
    }
    std::fs::write(set.out.join("soak.csv"), csv).unwrap();
    let minutes = set.secs as f64 / 60.0;
    let per_min = |f: Option<(f64, f64)>| f.map(|(a, b)| (a, b / 60.0));
    let series = |f: &dyn Fn(&Sample) -> f64| -> Vec<(f64, f64)> {
        samples.iter().map(|s| (s.t / 60.0, f(s))).collect()
    };
    let panels = vec![
        plot::Panel {
            title: format!("RSS of kim serve — slope {:+.2} MiB/h", slope(rss)),
            unit: "MiB",
            points: series(&|s| s.rss_kib as f64 / 1024.0),
            fit: per_min(rss),
        },
        plot::Panel {
            title: format!("open file descriptors — slope {:+.2}/h", slope(fds)),
            unit: "",
            points: series(&|s| s.fds as f64),
            fit: per_min(fds),
        },
        plot::Panel {
            title: format!(
                "store on disk (du) — grows with the data: {:.0} bytes per notification",
                per_notification
            ),
            unit: "MiB",
            points: series(&|s| s.store_bytes as f64 / 1048576.0),
            fit: None,
        },
        plot::Panel {
            title: format!(
                "CPU of kim serve (utime+stime), % of one core — slope {:+.2} points/h",
                slope(cpu)
            ),
            unit: "%",
            points: series(&|s| s.cpu_pct),
            fit: per_min(cpu),
        },
        plot::Panel {
            title: format!(
                "police POST p99 per 10 s — slope {:+.2} ms/h (shared, loaded machine)",
                slope(p99)
            ),
            unit: "ms",
            points: series(&|s| s.p99_ms),
            fit: per_min(p99),
        },
    ];
    let heading = format!(
        "kim soak: {:.0} min at {}/s + {} per minute every {} s (revision {revision}); warm-up shaded, fit dashed",
        minutes, set.rate, set.burst, set.burst_every
    );
    std::fs::write(
        set.out.join("soak.svg"),
        plot::svg(&heading, &panels, minutes, warmup / 60.0),
    )
    .unwrap();

    let verdict = if broken.is_empty() {
        "PASS".to_owned()
    } else {
        format!("FAIL: {}", broken.join("; "))
    };
    let mut md = String::new();
    let _ = writeln!(md, "- command: `{}`", set.command());
    let _ = writeln!(md, "- machine: {machine}");
    for f in facts {
        if f.starts_with("  ") {
            let _ = writeln!(md, "{f}");
        } else {
            let _ = writeln!(md, "- {f}");
        }
    }
    let _ = writeln!(md, "- samples: {} every {} s; slopes over the {} after {:.0} s of warm-up (the preload of {} done at {:.0} s):", samples.len(), set.sample_secs, measured.len(), warmup, set.preload, preload_done.unwrap_or(f64::NAN));
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| series | mean after warm-up | slope (least squares) | bound |"
    );
    let _ = writeln!(md, "|---|---|---|---|");
    let _ = writeln!(
        md,
        "| RSS | {:.1} MiB | {:+.2} MiB/h | ≤ {} MiB/h |",
        mean(&|s| s.rss_kib as f64 / 1024.0),
        slope(rss),
        set.max_rss_mib_per_h
    );
    let _ = writeln!(
        md,
        "| open FDs | {:.1} | {:+.2} /h | ≤ {} /h |",
        mean(&|s| s.fds as f64),
        slope(fds),
        set.max_fds_per_h
    );
    let _ = writeln!(
        md,
        "| police POST p99 | {:.2} ms (worst 10 s: {:.2} ms) | {:+.2} ms/h | reported |",
        mean(&|s| s.p99_ms),
        worst_p99,
        slope(p99)
    );
    let _ = writeln!(
        md,
        "| CPU | {:.1} % of a core | {:+.2} points/h | reported |",
        mean(&|s| s.cpu_pct),
        slope(cpu)
    );
    let _ = writeln!(md, "| store (du) | {:.1} MiB at the end | {:.0} bytes per notification | grows with the data |", samples.last().map_or(0.0, |s| s.store_bytes as f64 / 1048576.0), per_notification);
    let _ = writeln!(md);
    let _ = writeln!(md, "Verdict: **{verdict}**");
    std::fs::write(set.out.join("soak-figures.md"), &md).unwrap();
    md
}

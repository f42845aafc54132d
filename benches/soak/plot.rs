//! The soak's plot: one SVG, one panel per series (a polyline over time),
//! the warm-up shaded and the least-squares line over the rest drawn
//! dashed, with the slope in the panel's title. Written by hand: no
//! plotting crate, no script, no font file.

use std::fmt::Write as _;

/// One panel: its title, unit, the points (minutes, value) and the fit
/// (a, b per minute) over the measured part, when there is one.
pub struct Panel {
    pub title: String,
    pub unit: &'static str,
    pub points: Vec<(f64, f64)>,
    pub fit: Option<(f64, f64)>,
}

const W: f64 = 900.0;
const PANEL_H: f64 = 150.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 40.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 22.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A readable number for an axis label.
fn num(v: f64) -> String {
    if v.abs() >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The SVG of `panels` over `minutes` (the run's length), the first
/// `warmup` minutes shaded, under `heading`.
pub fn svg(heading: &str, panels: &[Panel], minutes: f64, warmup: f64) -> String {
    let height = 30.0 + panels.len() as f64 * (PANEL_H + TOP + BOTTOM) + 10.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{height}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{}</text>"#,
        esc(heading)
    );
    let pw = W - LEFT - RIGHT;
    let xmax = minutes.max(1e-9);
    for (n, p) in panels.iter().enumerate() {
        let y0 = 30.0 + n as f64 * (PANEL_H + TOP + BOTTOM) + TOP;
        let (mut lo, mut hi) = p
            .points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), q| {
                (lo.min(q.1), hi.max(q.1))
            });
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        // From zero when that keeps the line readable; always some height.
        if lo >= 0.0 && lo < 0.5 * hi {
            lo = 0.0;
        }
        if hi - lo < 1e-9 {
            hi = lo + 1.0;
        }
        let pad = (hi - lo) * 0.05;
        let (lo, hi) = (lo - if lo == 0.0 { 0.0 } else { pad }, hi + pad);
        let x = |m: f64| LEFT + m / xmax * pw;
        let y = |v: f64| y0 + PANEL_H - (v - lo) / (hi - lo) * PANEL_H;
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="{}" font-weight="bold">{}</text>"#,
            y0 - 8.0,
            esc(&p.title)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{y0}" width="{}" height="{PANEL_H}" fill="#eeeeee"/>"##,
            warmup.min(xmax) / xmax * pw
        );
        let _ = writeln!(
            s,
            r#"<rect x="{LEFT}" y="{y0}" width="{pw}" height="{PANEL_H}" fill="none" stroke="black"/>"#
        );
        for k in 0..=4 {
            let v = lo + (hi - lo) * k as f64 / 4.0;
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#cccccc"/><text x="{}" y="{:.1}" text-anchor="end">{} {}</text>"##,
                LEFT + pw,
                LEFT - 4.0,
                y(v) + 4.0,
                num(v),
                p.unit,
                yy = y(v)
            );
        }
        let step = if xmax > 30.0 {
            10.0
        } else if xmax > 6.0 {
            1.0
        } else {
            0.5
        };
        let mut m = 0.0;
        while m <= xmax + 1e-9 {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{m} min</text>"#,
                x(m),
                y0 + PANEL_H + 14.0
            );
            m += step;
        }
        let pts: Vec<String> = p
            .points
            .iter()
            .map(|&(m, v)| format!("{:.1},{:.1}", x(m), y(v)))
            .collect();
        let _ = writeln!(
            s,
            r##"<polyline fill="none" stroke="#1f5fa8" stroke-width="1.5" points="{}"/>"##,
            pts.join(" ")
        );
        if let Some((a, b)) = p.fit {
            let _ = writeln!(
                s,
                r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#c0392b" stroke-dasharray="6,4" stroke-width="1.5"/>"##,
                x(warmup),
                y(a + b * warmup),
                x(xmax),
                y(a + b * xmax)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

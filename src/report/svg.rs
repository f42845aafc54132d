//! The report page's charts as inline SVG (issue 15), drawn here so the
//! page needs no script, font or image from anywhere: vertical bar charts
//! (stacked or side by side, with an optional marked position) and
//! horizontal bars. Every label is HTML-escaped; the SVG has no `xmlns`
//! (inline SVG in HTML needs none) so the page holds no URL at all.

use std::fmt::Write as _;

/// `s` safe in HTML text and attribute values (`/` too, so the page holds
/// no `https://` even in a school's name).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // So that no text, not even a school's name, reads as a URL.
            '/' => out.push_str("&#47;"),
            c => out.push(c),
        }
    }
    out
}

/// One series of a bar chart: its name, colour and a value per bar.
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub values: Vec<u64>,
}

/// A vertical bar chart.
pub struct Bars<'a> {
    /// What it shows (the SVG's title, for screen readers).
    pub title: &'a str,
    pub labels: Vec<String>,
    pub series: Vec<Series<'a>>,
    /// Stacked (true) or side by side.
    pub stacked: bool,
    /// A position to mark, in bars from the left edge (0.0 ..= bars), and
    /// its label.
    pub marker: Option<(f64, String)>,
}

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 40.0;

/// A round step for about five grid lines up to `max`.
fn step(max: u64) -> u64 {
    let raw = (max.max(1) as f64 / 5.0).ceil() as u64;
    let mag = 10u64.pow(raw.max(1).ilog10());
    [1, 2, 5, 10]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(raw)
        .max(1)
}

fn open(out: &mut String, title: &str, h: f64) {
    let t = escape(title);
    let _ = write!(
        out,
        r#"<svg viewBox="0 0 {W} {h}" role="img" aria-label="{t}"><title>{t}</title>"#
    );
}

/// The legend, as HTML under the chart (wraps on a phone).
pub fn legend(series: &[(&str, &str)]) -> String {
    let mut out = String::from(r#"<ul class="legend">"#);
    for (name, colour) in series {
        let _ = write!(
            out,
            r#"<li><span class="key" style="background:{}"></span>{}</li>"#,
            escape(colour),
            escape(name)
        );
    }
    out.push_str("</ul>");
    out
}

impl Bars<'_> {
    pub fn render(&self) -> String {
        let n = self.labels.len().max(1);
        let totals: Vec<u64> = (0..n)
            .map(|i| {
                let v = self
                    .series
                    .iter()
                    .map(|s| s.values.get(i).copied().unwrap_or(0));
                if self.stacked {
                    v.sum()
                } else {
                    v.max().unwrap_or(0)
                }
            })
            .collect();
        let step = step(totals.iter().copied().max().unwrap_or(0));
        let top = totals
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .div_ceil(step)
            .max(1)
            * step;
        let plot_w = W - LEFT - RIGHT;
        let plot_h = H - TOP - BOTTOM;
        let y = |v: u64| TOP + plot_h - plot_h * v as f64 / top as f64;
        let slot = plot_w / n as f64;
        let mut out = String::new();
        open(&mut out, self.title, H);
        // Grid and the y axis's figures.
        let mut v = 0;
        while v <= top {
            let yy = y(v);
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11" fill="#333">{v}</text>"##,
                W - RIGHT,
                LEFT - 4.0,
                yy + 4.0
            );
            v += step;
        }
        let every = n.div_ceil(12);
        for i in 0..n {
            let x0 = LEFT + slot * i as f64 + slot * 0.1;
            let bw = slot * 0.8;
            let mut base = 0u64;
            let k = self.series.len().max(1) as f64;
            for (j, s) in self.series.iter().enumerate() {
                let val = s.values.get(i).copied().unwrap_or(0);
                if val == 0 {
                    continue;
                }
                let (x, w, lo, hi) = if self.stacked {
                    (x0, bw, base, base + val)
                } else {
                    (x0 + bw / k * j as f64, bw / k, 0, val)
                };
                let _ = write!(
                    out,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                    y(hi),
                    y(lo) - y(hi),
                    escape(s.colour),
                    escape(&format!(
                        "{} {}",
                        self.labels.get(i).map(String::as_str).unwrap_or(""),
                        s.name
                    )),
                    val
                );
                base += val;
            }
            if i % every == 0 {
                let label = self.labels.get(i).map(String::as_str).unwrap_or("");
                let _ = write!(
                    out,
                    r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#333">{}</text>"##,
                    x0 + bw / 2.0,
                    H - BOTTOM + 16.0,
                    escape(label)
                );
            }
        }
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#333"/>"##,
            W - RIGHT,
            y(0),
            y(0)
        );
        if let Some((pos, label)) = &self.marker {
            let x = LEFT + slot * pos.clamp(0.0, n as f64);
            let anchor = if x > W / 2.0 { "end" } else { "start" };
            let tx = if x > W / 2.0 { x - 4.0 } else { x + 4.0 };
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="#b00020" stroke-width="2" stroke-dasharray="6 4"/><text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" font-size="12" fill="#b00020">{}</text>"##,
                y(0),
                TOP - 6.0,
                escape(label)
            );
        }
        out.push_str("</svg>");
        out
    }
}

/// Horizontal bars, one per `(label, value)`, in `colour`.
pub fn hbars(title: &str, items: &[(String, u64)], colour: &str) -> String {
    let row = 30.0;
    let h = row * items.len().max(1) as f64 + 10.0;
    let label_w = 250.0;
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let room = W - label_w - 60.0;
    let mut out = String::new();
    open(&mut out, title, h);
    for (i, (label, v)) in items.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let w = room * *v as f64 / max as f64;
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="13" fill="#333">{}</text><rect x="{label_w}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="13" fill="#333">{v}</text>"##,
            label_w - 8.0,
            y + 19.0,
            escape(label),
            y + 4.0,
            row - 8.0,
            escape(colour),
            label_w + w + 6.0,
            y + 19.0,
        );
    }
    out.push_str("</svg>");
    out
}

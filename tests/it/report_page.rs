//! `kim report --html FILE`'s page (issue 15), checked as a document and in
//! a real browser: valid HTML by html5ever (through `scraper`, which keeps
//! its parse errors), no script and no URL at all, and Debian's headless
//! Chromium shows it at 1280 px and 390 px wide (screenshots decoded: not
//! blank) without a horizontal scroll at 390 px (the browser's own
//! `scrollWidth` and `innerWidth` of the page in a 390 px frame, read by a
//! script of a wrapper page; the report itself holds none).
//!
//! Without `chromium` the browser part fails, unless `KIM_SKIP_BROWSER=1`
//! says to skip it (loudly); `.ci/run` installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The page is a valid, self-contained HTML document.
pub fn check_document(page: &str) {
    let doc = scraper::Html::parse_document(page);
    assert!(
        doc.errors.is_empty(),
        "HTML parse errors: {:?}\n{page}",
        doc.errors
    );
    let lower = page.to_lowercase();
    assert!(!lower.contains("<script"), "a script in the page");
    assert!(
        !lower.contains("http://") && !lower.contains("https://"),
        "a URL in the page"
    );
    for (sel, what) in [
        ("script", "script"),
        ("link", "link"),
        ("img", "image"),
        ("iframe", "frame"),
        ("a[href]", "link"),
        ("[src]", "source"),
    ] {
        let s = scraper::Selector::parse(sel).unwrap();
        assert_eq!(doc.select(&s).count(), 0, "a {what} element in the page");
    }
    let svg = scraper::Selector::parse("svg").unwrap();
    assert!(doc.select(&svg).count() >= 4, "the charts are inline SVG");
    assert!(lower.contains("@media print") && lower.contains("size:a4"));
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Runs headless Chromium on `page` with `extra` flags, at most 60 s;
/// its standard output.
fn run_chromium(bin: &Path, profile: &Path, size: &str, extra: &[&str], page: &Path) -> String {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--window-size={size}"))
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("start chromium");
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 60 s ({extra:?})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "chromium {extra:?}: {}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The screenshot's size and how many colours it has.
fn decode(png_file: &Path) -> (u32, u32, usize) {
    let f = std::io::BufReader::new(std::fs::File::open(png_file).expect("a screenshot"));
    let mut reader = png::Decoder::new(f).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let colours: std::collections::HashSet<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    (info.width, info.height, colours.len())
}

/// The page in Chromium: screenshots at 1280 and 390 px not blank, and no
/// horizontal overflow at 390 px. Returns the 1280 px screenshot, or None
/// when skipped.
pub fn check_in_browser(page: &Path, work: &Path) -> Option<PathBuf> {
    let Some(bin) = chromium() else {
        if std::env::var("KIM_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!(
                "\n*** SKIPPED: the report page's browser test (no chromium; KIM_SKIP_BROWSER=1) ***\n"
            );
            return None;
        }
        panic!(
            "chromium is not installed: `apt-get install -y chromium` (.ci/run does), or KIM_SKIP_BROWSER=1 to skip"
        );
    };
    let mut wide = None;
    for (size, w, h) in [("1280,900", 1280, 900), ("390,844", 390, 844)] {
        let shot = work.join(format!("report-{w}.png"));
        let profile = tempfile::tempdir().unwrap();
        let arg = format!("--screenshot={}", shot.display());
        run_chromium(&bin, profile.path(), size, &[&arg], page);
        let (pw, ph, colours) = decode(&shot);
        assert_eq!((pw, ph), (w, h), "screenshot size at {size}");
        assert!(
            colours > 8,
            "a blank screenshot at {size}: {colours} colours"
        );
        if w == 1280 {
            wide = Some(shot);
        }
    }
    // Headless Chromium's window is at least 500 px wide, so the page goes
    // into a 390 px frame (srcdoc: same origin) of a wrapper page whose
    // script reads the frame's widths once it has loaded (the report
    // itself holds no script).
    let text = std::fs::read_to_string(page).unwrap();
    let srcdoc = text.replace('&', "&amp;").replace('"', "&quot;");
    let wrapper = format!(
        r#"<!DOCTYPE html><html><body style="margin:0"><iframe id="f" style="width:390px;height:844px;border:0" srcdoc="{srcdoc}"></iframe><script>
window.addEventListener('load', function () {{
  var f = document.getElementById('f'), d = f.contentDocument, m = document.createElement('pre');
  m.id = 'probe';
  m.textContent = 'WIDTHS ' + d.documentElement.scrollWidth + ' ' + f.contentWindow.innerWidth + ' ' + d.body.scrollWidth;
  document.body.appendChild(m);
}});
</script></body></html>"#
    );
    let probed = work.join("report-probe.html");
    std::fs::write(&probed, wrapper).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let dom = run_chromium(
        &bin,
        profile.path(),
        "600,900",
        &["--dump-dom", "--virtual-time-budget=2000"],
        &probed,
    );
    let line = dom
        .lines()
        .find_map(|l| l.split(r#"<pre id="probe">WIDTHS "#).nth(1))
        .unwrap_or_else(|| panic!("no probe in the dumped DOM:\n{dom}"));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(3)
        .map(|s| s.parse().unwrap())
        .collect();
    let (scroll, inner, body) = (n[0], n[1], n[2]);
    assert_eq!(inner, 390, "the frame is 390 px wide: {line}");
    assert!(
        scroll <= inner && body <= inner,
        "the page scrolls sideways at 390 px: {line}"
    );
    wide
}

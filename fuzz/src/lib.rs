//! What kim's fuzz targets share: the fixed clock, key and configuration
//! they run under, and the check that a refusal quotes nothing of its input.

use std::path::Path;
use std::sync::OnceLock;

use kim::config::Config;

/// The receive time every target parses under (a school day).
pub fn now() -> jiff::Timestamp {
    "2026-03-02T12:00:00Z".parse().expect("a fixed timestamp")
}

/// "Today" for the roll's dates of birth.
pub fn today() -> jiff::civil::Date {
    jiff::civil::date(2026, 3, 2)
}

/// A fixed store key (tests only).
pub const KEY: [u8; 32] = [0x4b; 32];

/// The development configuration, plus a URI name and a test name, so
/// certificate identities have something to match.
pub fn config() -> &'static Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(|| {
        let text = include_str!("../../config/dev.toml").replace(
            "client_names = [\"relay.kent-police.example\"]",
            "client_names = [\"relay.kent-police.example\", \"spiffe://kent-police.example/relay\"]\n\
             test_client_names = [\"test.kent-police.example\"]\n\n\
             [[forces]]\nid = \"durham\"\nname = \"Durham Constabulary\"\n\
             client_names = [\"relay.durham.example\"]",
        );
        // A force with test names needs a test recipient.
        let text = text.replace("[mail]\n", "[mail]\ntest_recipient = \"test@council.example\"\n");
        Config::from_toml(&text, Path::new("/etc/kim/kim.toml")).expect("the fuzz config loads")
    })
}

/// Each ASCII letter and digit moved one place on (`z` → `a`, `9` → `0`):
/// the same shape of value, different text.
pub fn rotate(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='y' | 'A'..='Y' | '0'..='8' => char::from(c as u8 + 1),
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            c => c,
        })
        .collect()
}

/// Shortest run of input a refusal must not quote.
pub const RUN: usize = 8;

/// Runs of `input` that look like a typed value (a name, a date, a
/// postcode, an address): at least [`RUN`] characters of letters, digits,
/// spaces and `-'.@`, with at least one letter or digit.
pub fn runs(input: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let is_run = |c: char| c.is_alphanumeric() || matches!(c, ' ' | '-' | '\'' | '.' | '@');
    for (i, c) in input
        .char_indices()
        .chain(std::iter::once((input.len(), '\0')))
    {
        match (is_run(c) && i < input.len(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let r = &input[s..i];
                if r.chars().count() >= RUN && r.chars().any(|c| c.is_ascii_alphanumeric()) {
                    out.push(r);
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Panics if `refusal` (the error text for an input, `None` if accepted)
/// quotes any [`RUN`]-character piece of a value-like run of `input`. A
/// piece found in the text counts as quoted only if, with the run's
/// letters and digits changed ([`rotate`]), the new text holds the changed
/// piece: so fixed words of the message ("required", "domestic_abuse")
/// that happen to be typed in the input are not a leak.
pub fn assert_quotes_nothing(input: &str, text: &str, refusal: impl Fn(&str) -> Option<String>) {
    for run in runs(input).into_iter().take(8) {
        let chars: Vec<(usize, char)> = run.char_indices().collect();
        let piece = (0..=chars.len() - RUN).find_map(|i| {
            let from = chars[i].0;
            let to = chars.get(i + RUN).map_or(run.len(), |c| c.0);
            let p = &run[from..to];
            text.contains(p).then_some(p)
        });
        let Some(piece) = piece else { continue };
        let (rotated_run, rotated_piece) = (rotate(run), rotate(piece));
        if rotated_piece == piece {
            continue;
        }
        let changed = input.replace(run, &rotated_run);
        if let Some(text2) = refusal(&changed) {
            assert!(
                !text2.contains(&rotated_piece),
                "a refusal quotes its input: {rotated_piece:?} in {text2:?}"
            );
        }
    }
}

/// Panics unless `pointer` is log-safe: no control characters and no
/// segment longer than a capped key (64 characters, `~`/`/` escaped).
pub fn assert_pointer_safe(pointer: &str) {
    assert!(
        !pointer.chars().any(char::is_control),
        "a pointer holds a control character: {pointer:?}"
    );
    for seg in pointer.split('/') {
        let unescaped = seg.replace("~1", "/").replace("~0", "~");
        assert!(
            unescaped.chars().count() <= 64,
            "a pointer segment is not capped: {} characters",
            unescaped.chars().count()
        );
    }
}

//! Tests of `metrics`, kept in their own file.

use super::*;
use crate::store::crypto::MasterKey;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store"), &MasterKey::from_bytes([7; 32])).unwrap();
    (dir, store)
}

fn observed() -> Metrics {
    let m = Metrics::default();
    m.accepted.inc();
    m.observe_request(
        "notifications",
        StatusCode::ACCEPTED,
        Duration::from_millis(3),
    );
    m
}

#[test]
fn renders_counters_and_histograms() {
    let (_dir, store) = store();
    let m = observed();
    m.observe_request(
        "notifications",
        StatusCode::UNPROCESSABLE_ENTITY,
        Duration::from_millis(30),
    );
    let text = m.render(&store);
    assert!(text.contains("kim_notifications_accepted_total 1"));
    assert!(text.contains("kim_http_requests_total{route=\"notifications\",status=\"202\"} 1"));
    assert!(
        text.contains("kim_http_request_duration_ms_bucket{route=\"notifications\",le=\"5\"} 1")
    );
    assert!(text.contains("kim_http_request_duration_ms_count{route=\"notifications\"} 2"));
    assert!(text.contains("kim_match_queue_depth 0"));
    assert!(text.contains("kim_alerts_waiting{state=\"queued\"} 0"));
}

/// The exposition is byte for byte what kim rendered before the metrics
/// were declared in one list (names, types, help texts, labels, order):
/// operators' alerts and dashboards read them.
#[test]
fn exposition_unchanged() {
    let (_dir, store) = store();
    assert_eq!(
        observed().render(&store),
        include_str!("metrics_exposition.txt")
    );
}

/// Every declared family renders once: one `# HELP` and one `# TYPE` per
/// name, no name declared twice, every sample belongs to the family above
/// it (histograms: `_bucket`, `_sum`, `_count`), every value is a number.
#[test]
fn every_declared_metric_renders_once_and_validly() {
    let (_dir, store) = store();
    let text = observed().render(&store);
    let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), FAMILIES.len(), "a metric name declared twice");

    let mut helped = std::collections::HashMap::<&str, usize>::new();
    let mut typed = std::collections::HashMap::<&str, &str>::new();
    let mut current: Option<&Family> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            let fam = FAMILIES.iter().find(|f| f.name == name).expect(name);
            assert_eq!(help, fam.help);
            *helped.entry(fam.name).or_default() += 1;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            let fam = FAMILIES.iter().find(|f| f.name == name).expect(name);
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert_eq!(kind, fam.kind);
            assert!(typed.insert(fam.name, kind).is_none(), "TYPE twice: {line}");
            current = Some(fam);
        } else {
            let fam = current.expect("a sample before any # TYPE");
            let (series, value) = line.rsplit_once(' ').unwrap();
            let metric = series.split('{').next().unwrap();
            let ok = match fam.kind {
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| metric == format!("{}{s}", fam.name)),
                _ => metric == fam.name,
            };
            assert!(ok, "sample {line} under # TYPE {}", fam.name);
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
    for fam in FAMILIES {
        assert_eq!(helped.get(fam.name), Some(&1), "# HELP of {}", fam.name);
        assert!(typed.contains_key(fam.name), "# TYPE of {}", fam.name);
    }
}

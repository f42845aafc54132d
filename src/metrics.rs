//! Prometheus metrics: counters and gauges kept in atomics, rendered as text
//! on a separate listener (loopback by default). Labels are routes, status
//! codes and force ids — never anything from a notification's content.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hyper::StatusCode;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

const BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000];

#[derive(Debug, Default)]
struct RouteStats {
    by_status: Vec<(u16, u64)>,
    buckets: [u64; BUCKETS_MS.len()],
    count: u64,
    sum_ms: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub accepted: Counter,
    pub store_errors: Counter,
    pub handshake_failures: Counter,
    pub handshake_timeouts: Counter,
    pub connections_open: Gauge,
    pub connections_total: Counter,
    pub server_cert_expiry_seconds: Gauge,
    /// Stored audit checkpoints that the checkpoint file lacks.
    pub audit_checkpoints_unshipped: Gauge,
    routes: Mutex<Vec<(&'static str, RouteStats)>>,
}

impl Metrics {
    pub fn observe_request(&self, route: &'static str, status: StatusCode, took: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let idx = match routes.iter().position(|(r, _)| *r == route) {
            Some(i) => i,
            None => {
                routes.push((route, RouteStats::default()));
                routes.len() - 1
            }
        };
        let st = &mut routes[idx].1;
        match st.by_status.iter_mut().find(|(s, _)| *s == status.as_u16()) {
            Some((_, n)) => *n += 1,
            None => st.by_status.push((status.as_u16(), 1)),
        }
        let ms = took.as_secs_f64() * 1000.0;
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if ms <= *b as f64 {
                st.buckets[i] += 1;
            }
        }
        st.count += 1;
        st.sum_ms += ms;
    }

    /// The Prometheus text exposition.
    pub fn render(
        &self,
        notifications_stored: usize,
        pending_match: usize,
        writer: &crate::store::writer::WriterStats,
    ) -> String {
        let mut out = String::new();
        {
            use std::sync::atomic::Ordering::Relaxed;
            let _ = writeln!(out, "# HELP kim_store_commit_batches_total Accept batches (each journaled in one write and sync).\n# TYPE kim_store_commit_batches_total counter\nkim_store_commit_batches_total {}", writer.batches.load(Relaxed));
            let _ = writeln!(out, "# HELP kim_store_committed_total Notifications through the group commit (new and re-sent).\n# TYPE kim_store_committed_total counter\nkim_store_committed_total {}", writer.batched.load(Relaxed));
            let _ = writeln!(out, "# HELP kim_store_commit_seconds_total Time spent applying journaled notifications to the store (transactions).\n# TYPE kim_store_commit_seconds_total counter\nkim_store_commit_seconds_total {:.6}", writer.commit_us.load(Relaxed) as f64 / 1e6);
            let _ = writeln!(out, "# HELP kim_store_syncs_total Accept journal writes, each synced to disk.\n# TYPE kim_store_syncs_total counter\nkim_store_syncs_total {}", writer.syncs.load(Relaxed));
            let _ = writeln!(out, "# HELP kim_store_sync_seconds_total Time spent writing and syncing the accept journal.\n# TYPE kim_store_sync_seconds_total counter\nkim_store_sync_seconds_total {:.6}", writer.sync_us.load(Relaxed) as f64 / 1e6);
            let _ = writeln!(out, "# HELP kim_store_journal_unapplied Accepted notifications in the journal, not yet applied to the store.\n# TYPE kim_store_journal_unapplied gauge\nkim_store_journal_unapplied {}", writer.unapplied.load(Relaxed));
        }
        let mut scalar = |name: &str, kind: &str, help: &str, v: i64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        scalar(
            "kim_notifications_accepted_total",
            "counter",
            "Notifications accepted (202) since start.",
            self.accepted.get() as i64,
        );
        scalar(
            "kim_store_errors_total",
            "counter",
            "Store failures answered with 503.",
            self.store_errors.get() as i64,
        );
        scalar(
            "kim_tls_handshake_failures_total",
            "counter",
            "TLS handshakes that failed (bad or missing client certificate, protocol).",
            self.handshake_failures.get() as i64,
        );
        scalar(
            "kim_tls_handshake_timeouts_total",
            "counter",
            "TLS handshakes cut off by the handshake timeout.",
            self.handshake_timeouts.get() as i64,
        );
        scalar(
            "kim_connections_open",
            "gauge",
            "Police connections open now.",
            self.connections_open.get(),
        );
        scalar(
            "kim_connections_total",
            "counter",
            "Police connections accepted since start.",
            self.connections_total.get() as i64,
        );
        scalar(
            "kim_server_cert_expiry_seconds",
            "gauge",
            "Seconds until the server certificate expires.",
            self.server_cert_expiry_seconds.get(),
        );
        scalar(
            "kim_audit_checkpoints_unshipped",
            "gauge",
            "Signed audit checkpoints in the store that [audit] checkpoint_file does not hold yet (retried every 500 ms).",
            self.audit_checkpoints_unshipped.get(),
        );
        scalar(
            "kim_notifications_stored",
            "gauge",
            "Notifications in the store.",
            notifications_stored as i64,
        );
        scalar(
            "kim_match_queue_depth",
            "gauge",
            "Notifications waiting for the matching stage.",
            pending_match as i64,
        );
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "# HELP kim_http_requests_total Requests by route and status.\n# TYPE kim_http_requests_total counter");
        for (route, st) in routes.iter() {
            for (status, n) in &st.by_status {
                let _ = writeln!(
                    out,
                    "kim_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(out, "# HELP kim_http_request_duration_ms Request latency in milliseconds.\n# TYPE kim_http_request_duration_ms histogram");
        for (route, st) in routes.iter() {
            for (i, b) in BUCKETS_MS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "kim_http_request_duration_ms_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                    st.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "kim_http_request_duration_ms_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                st.count
            );
            let _ = writeln!(
                out,
                "kim_http_request_duration_ms_sum{{route=\"{route}\"}} {:.3}",
                st.sum_ms
            );
            let _ = writeln!(
                out,
                "kim_http_request_duration_ms_count{{route=\"{route}\"}} {}",
                st.count
            );
        }
        out
    }
}

/// Gauges of the outbox (DESIGN §10): alerts waiting per state and the age
/// of the oldest undelivered one. Identifiers never appear as labels.
pub fn render_outbox(active: &[crate::store::outbox::AlertRecord], now: jiff::Timestamp) -> String {
    use crate::store::outbox::AlertState;
    let mut out = String::from(
        "# HELP kim_alerts_waiting Alerts not yet delivered, by state.\n# TYPE kim_alerts_waiting gauge\n",
    );
    for state in [
        AlertState::Queued,
        AlertState::Sending,
        AlertState::RetryWait,
    ] {
        let n = active.iter().filter(|a| a.state == state).count();
        let _ = writeln!(
            out,
            "kim_alerts_waiting{{state=\"{}\"}} {n}",
            state.as_str()
        );
    }
    let oldest = active
        .iter()
        .map(|a| now.duration_since(a.queued_at).as_secs_f64().max(0.0))
        .fold(0.0, f64::max);
    let _ = writeln!(
        out,
        "# HELP kim_alert_oldest_undelivered_seconds Age of the oldest alert not yet delivered (0 when none).\n# TYPE kim_alert_oldest_undelivered_seconds gauge\nkim_alert_oldest_undelivered_seconds {oldest:.0}"
    );
    let missed = active
        .iter()
        .filter(|a| a.deadline_met == Some(false))
        .count();
    let _ = writeln!(
        out,
        "# HELP kim_alerts_past_deadline Undelivered alerts whose school-day deadline has passed.\n# TYPE kim_alerts_past_deadline gauge\nkim_alerts_past_deadline {missed}"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.accepted.inc();
        m.observe_request(
            "notifications",
            StatusCode::ACCEPTED,
            Duration::from_millis(3),
        );
        m.observe_request(
            "notifications",
            StatusCode::UNPROCESSABLE_ENTITY,
            Duration::from_millis(30),
        );
        let text = m.render(5, 2, &Default::default());
        assert!(text.contains("kim_notifications_accepted_total 1"));
        assert!(text.contains("kim_http_requests_total{route=\"notifications\",status=\"202\"} 1"));
        assert!(text
            .contains("kim_http_request_duration_ms_bucket{route=\"notifications\",le=\"5\"} 1"));
        assert!(text.contains("kim_http_request_duration_ms_count{route=\"notifications\"} 2"));
        assert!(text.contains("kim_match_queue_depth 2"));
    }
}

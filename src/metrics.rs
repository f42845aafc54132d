//! Prometheus metrics: every metric is declared once, in the `metrics!`
//! list below — its name, type, help text and where its value comes from
//! (a counter or gauge the daemon updates, or a reading of the store taken
//! at each scrape) — and rendered as text on a separate listener (loopback
//! by default) by `Metrics::render`. Labels are routes, status codes, alert
//! states and force ids — never anything from a notification's content.
//!
//! Adding a metric is one edit: one entry in the list.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hyper::StatusCode;

use crate::store::outbox::{AlertRecord, AlertState};
use crate::store::Store;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
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

/// Requests per route: counts by status and a latency histogram.
#[derive(Debug, Default)]
pub struct Routes(Mutex<Vec<(&'static str, RouteStats)>>);

/// One sample line of a family: `NAME{SUFFIX}{LABELS} VALUE`.
#[derive(Debug)]
pub struct Sample {
    suffix: &'static str,
    labels: String,
    value: String,
}

impl Sample {
    /// An unlabelled sample.
    fn plain(value: impl std::fmt::Display) -> Self {
        Self::labelled("", &[], value)
    }

    /// A sample of `NAME{suffix}` with labels.
    fn labelled(
        suffix: &'static str,
        labels: &[(&str, &str)],
        value: impl std::fmt::Display,
    ) -> Self {
        let labels = if labels.is_empty() {
            String::new()
        } else {
            let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            format!("{{{}}}", inner.join(","))
        };
        Self {
            suffix,
            labels,
            value: value.to_string(),
        }
    }
}

/// The samples of one family, or `None` to leave the family out of this
/// scrape (e.g. the outbox could not be read).
type Samples = Option<Vec<Sample>>;

/// What a scrape reads: the live metrics, the store, the time, and the
/// outbox's undelivered alerts (read once, for all the outbox gauges).
pub struct Scrape<'a> {
    pub metrics: &'a Metrics,
    pub store: &'a Store,
    pub now: jiff::Timestamp,
    active: std::cell::OnceCell<Option<Vec<AlertRecord>>>,
}

impl Scrape<'_> {
    /// Undelivered alerts, `None` if the outbox cannot be read.
    fn active(&self) -> Option<&[AlertRecord]> {
        self.active
            .get_or_init(|| self.store.active_alerts().ok())
            .as_deref()
    }
}

/// A family's declaration: what `# HELP` and `# TYPE` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub kind: &'static str,
    pub help: &'static str,
}

/// Declares the metrics, in exposition order. Each entry is
/// `/// HELP` then `NAME: KIND = SOURCE,` where the doc comment is the
/// `# HELP` text, KIND is `counter`, `gauge` or `histogram`, and SOURCE is
/// either `field: Counter` / `field: Gauge` (a public field of `Metrics`
/// the daemon updates) or `|s| EXPR` (samples read at scrape time from
/// `s: &Scrape`).
macro_rules! metrics {
    // Done: the struct, the list of families and the rendering.
    (@munch [$($fields:tt)*] [$(($name:ident $kind:ident $help:tt $src:tt))*]) => {
        #[derive(Debug, Default)]
        pub struct Metrics {
            $($fields)*
            routes: Routes,
        }

        /// Every declared family, in exposition order.
        pub const FAMILIES: &[Family] = &[
            $(Family { name: stringify!($name), kind: stringify!($kind), help: $help.trim_ascii_start() },)*
        ];

        impl Metrics {
            /// The Prometheus text exposition: every declared family, live
            /// values and store readings alike.
            pub fn render(&self, store: &Store) -> String {
                let scrape = Scrape {
                    metrics: self,
                    store,
                    now: jiff::Timestamp::now(),
                    active: std::cell::OnceCell::new(),
                };
                let mut out = String::new();
                $(
                    let samples: Samples = metrics!(@read scrape $src);
                    write_family(&mut out, stringify!($name), stringify!($kind), $help.trim_ascii_start(), samples);
                )*
                out
            }
        }
    };
    (@read $scrape:ident (field $field:ident)) => {
        Some(vec![Sample::plain($scrape.metrics.$field.get())])
    };
    (@read $scrape:ident (read $s:ident $e:expr)) => {
        (|$s: &Scrape<'_>| -> Samples { $e })(&$scrape)
    };
    // A value read at scrape time.
    (@munch [$($fields:tt)*] [$($fams:tt)*]
        $(#[doc = $doc:literal])+ $name:ident: $kind:ident = |$s:ident| $e:expr, $($rest:tt)*) => {
        metrics!(@munch [$($fields)*] [$($fams)* ($name $kind (concat!($($doc),+)) (read $s $e))] $($rest)*);
    };
    // A field the daemon updates, rendered at scrape time by an expression
    // (labelled samples, or a value relative to now).
    (@munch [$($fields:tt)*] [$($fams:tt)*]
        $(#[doc = $doc:literal])+ $name:ident: $kind:ident = $field:ident: $ty:ty => |$s:ident| $e:expr, $($rest:tt)*) => {
        metrics!(@munch [$($fields)* $(#[doc = $doc])+ pub $field: $ty,] [$($fams)* ($name $kind (concat!($($doc),+)) (read $s $e))] $($rest)*);
    };
    // A counter or gauge the daemon updates.
    (@munch [$($fields:tt)*] [$($fams:tt)*]
        $(#[doc = $doc:literal])+ $name:ident: $kind:ident = $field:ident: $ty:ty, $($rest:tt)*) => {
        metrics!(@munch [$($fields)* $(#[doc = $doc])+ pub $field: $ty,] [$($fams)* ($name $kind (concat!($($doc),+)) (field $field))] $($rest)*);
    };
    ($($body:tt)*) => { metrics!(@munch [] [] $($body)*); };
}

fn write_family(out: &mut String, name: &str, kind: &str, help: &str, samples: Samples) {
    let Some(samples) = samples else { return };
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for s in samples {
        let _ = writeln!(out, "{name}{}{} {}", s.suffix, s.labels, s.value);
    }
}

/// Seconds from a microsecond counter of the store's writer.
fn secs(us: &AtomicU64) -> Samples {
    Some(vec![Sample::plain(format!(
        "{:.6}",
        us.load(Ordering::Relaxed) as f64 / 1e6
    ))])
}

fn count(n: &AtomicU64) -> Samples {
    Some(vec![Sample::plain(n.load(Ordering::Relaxed))])
}

metrics! {
    /// Accept batches (each journaled in one write and sync).
    kim_store_commit_batches_total: counter = |s| count(&s.store.stats.batches),
    /// Notifications through the group commit (new and re-sent).
    kim_store_committed_total: counter = |s| count(&s.store.stats.batched),
    /// Time spent applying journaled notifications to the store (transactions).
    kim_store_commit_seconds_total: counter = |s| secs(&s.store.stats.commit_us),
    /// Accept journal writes, each synced to disk.
    kim_store_syncs_total: counter = |s| count(&s.store.stats.syncs),
    /// Time spent writing and syncing the accept journal.
    kim_store_sync_seconds_total: counter = |s| secs(&s.store.stats.sync_us),
    /// Accepted notifications in the journal, not yet applied to the store.
    kim_store_journal_unapplied: gauge = |s| count(&s.store.stats.unapplied),
    /// Notifications accepted (202) since start.
    kim_notifications_accepted_total: counter = accepted: Counter,
    /// Store failures answered with 503.
    kim_store_errors_total: counter = store_errors: Counter,
    /// TLS handshakes that failed (bad or missing client certificate, protocol).
    kim_tls_handshake_failures_total: counter = handshake_failures: Counter,
    /// TLS handshakes cut off by the handshake timeout.
    kim_tls_handshake_timeouts_total: counter = handshake_timeouts: Counter,
    /// Unauthenticated connections closed to admit newer ones (handshake budget, per-source cap or descriptor reserve full).
    kim_tls_handshakes_evicted_total: counter = handshakes_evicted: Counter,
    /// Connections accepted and not yet through the TLS handshake (silent or handshaking).
    kim_tls_handshakes_pending: gauge = handshakes_pending: Gauge,
    /// Police connections closed at once because the file-descriptor reserve was reached.
    kim_connections_refused_total: counter = connections_refused: Counter,
    /// Failed accept calls on the police and metrics listeners (e.g. too many open files).
    kim_accept_errors_total: counter = accept_errors: Counter,
    /// Metrics connections closed at once (connection cap or file-descriptor reserve).
    kim_metrics_connections_refused_total: counter = metrics_connections_refused: Counter,
    /// Police connections open now.
    kim_connections_open: gauge = connections_open: Gauge,
    /// Police connections accepted since start.
    kim_connections_total: counter = connections_total: Counter,
    /// Police keep-alive connections closed after [limits] idle_timeout with nothing in flight.
    kim_connections_idle_closed_total: counter = idle_closed: Counter,
    /// Seconds until the server certificate expires.
    kim_server_cert_expiry_seconds: gauge = server_cert_not_after: Gauge => |s| Some(vec![Sample::plain(until(s.metrics.server_cert_not_after.get(), s.now))]),
    /// Signed audit checkpoints in the store that [audit] checkpoint_file does not hold yet (retried every 500 ms).
    kim_audit_checkpoints_unshipped: gauge = audit_checkpoints_unshipped: Gauge,
    /// Notifications in the store.
    kim_notifications_stored: gauge = |s| Some(vec![Sample::plain(s.store.notification_count())]),
    /// Notifications waiting for the matching stage.
    kim_match_queue_depth: gauge = |s| Some(vec![Sample::plain(s.store.pending_match().count())]),
    /// Requests by route and status.
    kim_http_requests_total: counter = |s| s.metrics.routes.requests(),
    /// Request latency in milliseconds.
    kim_http_request_duration_ms: histogram = |s| s.metrics.routes.durations(),
    /// Alerts not yet delivered, by state.
    kim_alerts_waiting: gauge = |s| alerts_waiting(s.active()?),
    /// Age of the oldest alert not yet delivered (0 when none).
    kim_alert_oldest_undelivered_seconds: gauge = |s| oldest_undelivered(s.active()?, s.now),
    /// Undelivered alerts whose school-day deadline has passed.
    kim_alerts_past_deadline: gauge = |s| Some(vec![Sample::plain(s.active()?.iter().filter(|a| a.deadline_met == Some(false)).count())]),
    /// Children waiting in the review queue.
    kim_review_waiting: gauge = |s| Some(vec![Sample::plain(s.store.review_stats(s.now).ok()?.waiting)]),
    /// Age of the oldest child waiting in the review queue (0 when none).
    kim_review_oldest_seconds: gauge = |s| Some(vec![Sample::plain(s.store.review_stats(s.now).ok()?.oldest_seconds)]),
    /// Children waiting in the review queue whose school-day deadline has passed.
    kim_review_past_deadline: gauge = |s| Some(vec![Sample::plain(s.store.review_stats(s.now).ok()?.past_deadline)]),
    /// Config reloads (SIGHUP, and CRL files re-read when they change) by result (ok, failed).
    kim_config_reloads_total: counter = reloads: Reloads => |s| Some(s.metrics.reloads.samples()),
    /// When the last reload succeeded (Unix seconds; 0: none since start).
    kim_config_last_reload_success_timestamp_seconds: gauge = last_reload_success: Gauge,
    /// Seconds until each loaded CRL's nextUpdate (negative: expired, every client it covers is refused), by file.
    kim_crl_next_update_seconds: gauge = crl_next_update: CrlTimes => |s| Some(s.metrics.crl_next_update.samples(s.now)),
    /// Seconds until the first police CA in client_ca expires.
    kim_client_ca_expiry_seconds: gauge = client_ca_not_after: Gauge => |s| Some(vec![Sample::plain(until(s.metrics.client_ca_not_after.get(), s.now))]),
    /// When retention last ran (the daemon at [retention] run_at, or `kim retention run`; Unix seconds, 0: never).
    kim_retention_last_run_timestamp_seconds: gauge = |s| Some(vec![Sample::plain(s.store.retention_last().ok()?.map_or(0, |l| l.at.as_second()))]),
    /// Notifications whose details the last retention run purged.
    kim_retention_last_run_purged: gauge = |s| Some(vec![Sample::plain(s.store.retention_last().ok()?.map_or(0, |l| l.purged))]),
    /// Days whose key is still on disk (their notifications can still be opened; retention destroys a day's key once all of them are purged).
    kim_retention_day_keys: gauge = |s| Some(vec![Sample::plain(s.store.day_key_count().ok()?)]),
}

/// Seconds from `now` to the Unix time `t` (0 when `t` is unknown: 0).
fn until(t: i64, now: jiff::Timestamp) -> i64 {
    if t == 0 {
        0
    } else {
        t - now.as_second()
    }
}

/// `kim_config_reloads_total` by result.
#[derive(Debug, Default)]
pub struct Reloads {
    pub ok: Counter,
    pub failed: Counter,
}

impl Reloads {
    fn samples(&self) -> Vec<Sample> {
        vec![
            Sample::labelled("", &[("result", "ok")], self.ok.get()),
            Sample::labelled("", &[("result", "failed")], self.failed.get()),
        ]
    }
}

/// The nextUpdate (Unix seconds) of each loaded CRL, by file.
#[derive(Debug, Default)]
pub struct CrlTimes(Mutex<Vec<(String, i64)>>);

impl CrlTimes {
    pub fn set(&self, times: Vec<(String, i64)>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = times;
    }

    /// The loaded CRLs whose nextUpdate is before `now` (Unix seconds):
    /// (file, nextUpdate), for `/readyz`.
    pub fn expired(&self, now: i64) -> Vec<(String, i64)> {
        let times = self.0.lock().unwrap_or_else(|p| p.into_inner());
        times.iter().filter(|(_, t)| *t < now).cloned().collect()
    }

    fn samples(&self, now: jiff::Timestamp) -> Vec<Sample> {
        let times = self.0.lock().unwrap_or_else(|p| p.into_inner());
        times
            .iter()
            .map(|(source, t)| {
                let source = source.replace(['\\', '"', '\n'], "_");
                Sample::labelled("", &[("source", &source)], t - now.as_second())
            })
            .collect()
    }
}

impl Metrics {
    pub fn observe_request(&self, route: &'static str, status: StatusCode, took: Duration) {
        let mut routes = self.routes.0.lock().unwrap_or_else(|p| p.into_inner());
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
}

impl Routes {
    fn requests(&self) -> Samples {
        let routes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (route, st) in routes.iter() {
            for (status, n) in &st.by_status {
                let status = status.to_string();
                out.push(Sample::labelled(
                    "",
                    &[("route", route), ("status", &status)],
                    n,
                ));
            }
        }
        Some(out)
    }

    fn durations(&self) -> Samples {
        let routes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (route, st) in routes.iter() {
            for (i, b) in BUCKETS_MS.iter().enumerate() {
                let le = b.to_string();
                out.push(Sample::labelled(
                    "_bucket",
                    &[("route", route), ("le", &le)],
                    st.buckets[i],
                ));
            }
            out.push(Sample::labelled(
                "_bucket",
                &[("route", route), ("le", "+Inf")],
                st.count,
            ));
            out.push(Sample::labelled(
                "_sum",
                &[("route", route)],
                format!("{:.3}", st.sum_ms),
            ));
            out.push(Sample::labelled("_count", &[("route", route)], st.count));
        }
        Some(out)
    }
}

/// Undelivered alerts per state (DESIGN §10); identifiers never appear as
/// labels.
fn alerts_waiting(active: &[AlertRecord]) -> Samples {
    let by_state = [
        AlertState::Queued,
        AlertState::Sending,
        AlertState::RetryWait,
    ]
    .map(|state| {
        let n = active.iter().filter(|a| a.state == state).count();
        Sample::labelled("", &[("state", state.as_str())], n)
    });
    Some(by_state.into())
}

fn oldest_undelivered(active: &[AlertRecord], now: jiff::Timestamp) -> Samples {
    let oldest = active
        .iter()
        .map(|a| now.duration_since(a.queued_at).as_secs_f64().max(0.0))
        .fold(0.0, f64::max);
    Some(vec![Sample::plain(format!("{oldest:.0}"))])
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;

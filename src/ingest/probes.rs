//! The probes `GET /healthz` and `GET /readyz`, answered on the police
//! listener and on the metrics listener alike: whether the process answers,
//! and whether kim can keep its promises now (the store writes, no
//! configured CRL has expired), with the reason when it cannot.

use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::json;

use super::http::{json_response, problem, Body};
use crate::metrics::Metrics;
use crate::store::{Store, Unready};

/// `GET /healthz`: the process answers (on the police and the metrics
/// listener).
pub fn healthz() -> Response<Body> {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /readyz` (on the police and the metrics listener): 200 when the
/// store reads and writes and no configured CRL has expired; 503 (with
/// `Retry-After`) and the reason otherwise, e.g. "store cannot write: disk
/// full?" or "CRL FILE expired at …: no force can connect".
pub fn readyz(store: &Store, metrics: &Metrics) -> Response<Body> {
    let unready = store.unready();
    if let Some(u @ Unready::Broken(_)) = unready {
        let (reason, retry_after) = u.reason();
        return not_ready(reason, retry_after);
    }
    if store.stats.journal_failing() {
        return not_ready("accept journal cannot write: disk full?", "10");
    }
    let expired = metrics
        .crl_next_update
        .expired(jiff::Timestamp::now().as_second());
    if !expired.is_empty() {
        let reason = expired
            .iter()
            .map(|(file, at)| {
                let at = jiff::Timestamp::from_second(*at)
                    .map(|t| t.to_string())
                    .unwrap_or_else(|_| at.to_string());
                format!("CRL {file} expired at {at}: no force can connect")
            })
            .collect::<Vec<_>>()
            .join("; ");
        return not_ready(&reason, "60");
    }
    match unready {
        // A flush failing before the store is declared broken: still say why.
        Some(u) => {
            let (reason, retry_after) = u.reason();
            not_ready(reason, retry_after)
        }
        None => json_response(StatusCode::OK, &json!({"status": "ready"})),
    }
}

/// `/readyz`'s 503: why, and when to ask again (seconds).
fn not_ready(reason: &str, retry_after: &'static str) -> Response<Body> {
    let mut r = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "not-ready",
        "Not ready",
        reason,
        &[],
    );
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static(retry_after));
    r
}

//! The police API over hyper (DESIGN §3): routes, body and content-type
//! limits, and RFC 9457 problem+json errors that never echo input. A 202 is
//! sent only after the store has flushed the notification to disk.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::ingest::notification::{parse_notification, FieldError, ParseError};
pub use crate::ingest::probes::{healthz, readyz};
use crate::ingest::routes::route_name;
pub use crate::ingest::routes::{match_route, OPENAPI_JSON, ROUTES};
use crate::metrics::Metrics;
use crate::store::writer::Ingest;
use crate::store::{AcceptOutcome, NotificationRecord, ReceiptId, Store};

/// The largest body accepted (DESIGN §3).
/// The largest body read. It admits every valid notification: 20 children
/// with every field at its longest (names of 100 characters, 10 other names,
/// 500 characters of voice), 500 characters of summary and the officer,
/// each character written as a JSON escaped surrogate pair (12 bytes) comes
/// to about 440 KB (tests/it/api.rs builds it). DESIGN §3's 64 KiB was too
/// small for 20 children with non-ASCII names; larger limits only admit more.
pub const MAX_BODY: usize = 512 * 1024;

pub type Body = Full<Bytes>;

/// What every request handler can reach.
pub struct AppState {
    pub store: Arc<Store>,
    pub ingest: Ingest,
    pub metrics: Arc<Metrics>,
    pub body_timeout: Duration,
}

/// Who is on the other end of a connection, from its verified certificate.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The configured force id, or `None` for a CA-valid but unlisted cert.
    pub force: Option<String>,
    /// The certificate acts in test mode (`[[forces]] test` or
    /// `test_client_names`): what it sends goes to `[mail] test_recipient`.
    pub test: bool,
}

pub(super) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An RFC 9457 problem. `detail` is written by kim, never copied from input.
pub(super) fn problem(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: &str,
    errors: &[FieldError],
) -> Response<Body> {
    let mut body = json!({
        "type": format!("https://kim.invalid/problems/{slug}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if !errors.is_empty() {
        body["errors"] = serde_json::to_value(errors).expect("field errors serialize");
    }
    let mut r = json_response(status, &body);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

pub(super) fn unavailable() -> Response<Body> {
    let mut r = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "store-unavailable",
        "Service unavailable",
        "The notification could not be stored durably. Nothing was accepted; send it again later.",
        &[],
    );
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("30"));
    r
}

fn receipt_body(rec: &NotificationRecord) -> serde_json::Value {
    json!({
        "receipt_id": rec.receipt_id,
        "status": "accepted",
        "children": rec.children.len(),
    })
}

fn status_body(rec: &NotificationRecord) -> serde_json::Value {
    let mut v = json!({
        "receipt_id": rec.receipt_id,
        "police_reference": rec.police_reference,
        "received_at": rec.received_at,
        "children": rec.children,
    });
    // Only a test-mode notification says so: live answers are unchanged.
    if rec.test {
        v["test"] = json!(true);
    }
    // Retention purged the details: the identifiers and states remain.
    if let Some(t) = rec.purged_at {
        v["purged_at"] = json!(t);
    }
    v
}

/// The single entry point for every request on an mTLS connection.
pub async fn handle(
    req: Request<Incoming>,
    peer: Arc<Peer>,
    state: Arc<AppState>,
) -> Result<Response<Body>, Infallible> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let route = route_name(req.uri().path());
    let resp = match &peer.force {
        None => problem(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            "This client certificate is valid but not listed for any police force.",
            &[],
        ),
        Some(force) => route_request(req, force, peer.test, &state).await,
    };
    state
        .metrics
        .observe_request(route, resp.status(), started.elapsed());
    // One line per request; a POST that stored (or found) a notification
    // names its receipt, so an operator can follow it into the audit.
    let receipt = resp
        .extensions()
        .get::<ReceiptId>()
        .map(|r| r.as_str().to_owned());
    tracing::info!(
        force = peer.force.as_deref().unwrap_or("-"),
        peer = %peer.addr,
        method = %method,
        route,
        status = resp.status().as_u16(),
        receipt = receipt.as_deref().unwrap_or("-"),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    Ok(resp)
}

async fn route_request(
    req: Request<Incoming>,
    force: &str,
    test: bool,
    state: &AppState,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let Some((template, params)) = match_route(&path) else {
        return not_found();
    };
    let id = params.first().map(|p| (*p).to_owned()).unwrap_or_default();
    match (req.method().as_str(), template) {
        ("GET", "/healthz") => healthz(),
        ("GET", "/readyz") => readyz(&state.store, &state.metrics),
        ("POST", "/v1/notifications") => post_notification(req, force, test, state).await,
        ("GET", "/v1/notifications/{receipt_id}") => get_status(&id, force, state),
        ("POST", "/v1/notifications/{receipt_id}/withdraw") => {
            withdraw(req, &id, force, state).await
        }
        ("GET", "/v1/openapi.json") => {
            let mut r = Response::new(Full::new(Bytes::from_static(OPENAPI_JSON.as_bytes())));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        _ => {
            let allow: Vec<&str> = ROUTES
                .iter()
                .filter(|(_, t)| *t == template)
                .map(|(m, _)| *m)
                .collect();
            method_not_allowed(&allow.join(", "))
        }
    }
}

fn method_not_allowed(allow: &str) -> Response<Body> {
    let mut r = problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "This resource does not support that method.",
        &[],
    );
    if let Ok(v) = HeaderValue::from_str(allow) {
        r.headers_mut().insert(ALLOW, v);
    }
    r
}

fn not_found() -> Response<Body> {
    problem(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "No such resource for this force.",
        &[],
    )
}

fn is_json(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false)
}

fn too_large() -> Response<Body> {
    problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        "Body too large",
        "A notification body may be at most 64 KiB.",
        &[],
    )
}

/// An over-long body is read and thrown away up to this much before the 413,
/// so the client finishes sending and sees the answer instead of a reset.
const DRAIN_MAX: usize = 1024 * 1024;

/// Reads the body within `MAX_BODY` and the body timeout.
async fn read_body(req: Request<Incoming>, state: &AppState) -> Result<Bytes, Response<Body>> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_MAX as u64) {
        return Err(too_large());
    }
    let mut body = req.into_body();
    let read = async {
        let mut buf = Vec::new();
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| ())?;
            if let Ok(data) = frame.into_data() {
                seen += data.len();
                if seen <= MAX_BODY {
                    buf.extend_from_slice(&data);
                } else if seen > DRAIN_MAX {
                    break;
                }
            }
        }
        Ok::<_, ()>((buf, seen))
    };
    match tokio::time::timeout(state.body_timeout, read).await {
        Err(_) => Err(problem(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            "Request timeout",
            "The body did not arrive in time.",
            &[],
        )),
        Ok(Err(())) => Err(problem(
            StatusCode::BAD_REQUEST,
            "bad-body",
            "Bad request",
            "The body could not be read.",
            &[],
        )),
        Ok(Ok((_, seen))) if seen > MAX_BODY => Err(too_large()),
        Ok(Ok((buf, _))) => Ok(Bytes::from(buf)),
    }
}

async fn post_notification(
    req: Request<Incoming>,
    force: &str,
    test: bool,
    state: &AppState,
) -> Response<Body> {
    if !is_json(&req) {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the notification as Content-Type: application/json.",
            &[],
        );
    }
    let body = match read_body(req, state).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // A store that cannot write: 503 at once, nothing sealed or journaled
    // (`Retry-After` tells the police system when to try again). The body
    // is read first, so the client sees the answer, not a reset.
    if let Some(b) = state.store.broken() {
        crate::lograte::error!("http.broken", force, "{}: answering 503", b.reason());
        state.metrics.store_errors.inc();
        return unavailable();
    }
    let now = jiff::Timestamp::now();
    let n = match parse_notification(&body, now) {
        Ok(n) => n,
        Err(ParseError::Syntax(where_)) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "malformed-json",
                "Malformed JSON",
                &format!("The body is not valid JSON ({where_})."),
                &[],
            )
        }
        Err(ParseError::Invalid(errors)) => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-notification",
                "Invalid notification",
                &format!(
                    "The notification breaks {} rule(s) of the contract; see errors.",
                    errors.len()
                ),
                &errors,
            )
        }
    };
    drop(body);
    // Sealing happens here, on the runtime's threads in parallel; the
    // writer thread commits and syncs whole batches.
    let prepared = state.store.prepare_as(force, test, &n, now);
    drop(n);
    let outcome = match prepared {
        Ok(p) => state.ingest.accept(p).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Err(e) => {
            crate::lograte::error!("http.accept", force, error = %e, "accept failed; answering 503");
            state.metrics.store_errors.inc();
            unavailable()
        }
        Ok(AcceptOutcome::Conflict(rec)) => match audit_resend(state, &rec, true).await {
            Err(r) => r,
            Ok(()) => problem(
                StatusCode::CONFLICT,
                "reference-conflict",
                "Conflict",
                "This force already sent this police_reference with different content.",
                &[],
            ),
        },
        Ok(AcceptOutcome::Duplicate(rec)) => match audit_resend(state, &rec, false).await {
            Err(r) => r,
            Ok(()) => with_location(
                json_response(StatusCode::OK, &receipt_body(&rec)),
                &rec.receipt_id,
            ),
        },
        Ok(AcceptOutcome::Accepted(rec)) => {
            state.metrics.accepted.inc();
            with_location(
                json_response(StatusCode::ACCEPTED, &receipt_body(&rec)),
                &rec.receipt_id,
            )
        }
    }
}

/// Audits a re-send (`resent`) or a conflict (`reference_conflict`) of
/// `original` durably before the answer; 503 if it cannot (the police
/// re-send, nothing is lost). The original is waited for in the trees
/// first, so its `received` precedes in the chain. A first-time 202 never
/// comes here.
async fn audit_resend(
    state: &AppState,
    original: &NotificationRecord,
    conflict: bool,
) -> Result<(), Response<Body>> {
    let store = &state.store;
    let rid = original.receipt_id.as_str();
    let force = original.force.as_str();
    if !crate::store::writer::settled(store, rid, Duration::from_secs(10)).await {
        tracing::error!(
            force,
            "re-send waited too long for its original to be applied"
        );
        return Err(unavailable());
    }
    let audited = match store.audit_resend(original, conflict) {
        Ok(t) => store.durable(t).await,
        Err(e) => Err(e),
    };
    audited.map_err(|e| {
        crate::lograte::error!("http.resend", force, error = %e, "re-send not audited; answering 503");
        state.metrics.store_errors.inc();
        unavailable()
    })
}

fn with_location(mut r: Response<Body>, id: &ReceiptId) -> Response<Body> {
    r.extensions_mut().insert(id.clone());
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/notifications/{id}")) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

fn get_status(id: &str, force: &str, state: &AppState) -> Response<Body> {
    let Some(rid) = ReceiptId::parse(id) else {
        return not_found();
    };
    match state.store.record_for_force(force, &rid) {
        Ok(Some(rec)) => json_response(StatusCode::OK, &status_body(&rec)),
        Ok(None) => not_found(),
        Err(e) => {
            crate::lograte::error!("http.status", force, error = %e, "status lookup failed");
            unavailable()
        }
    }
}

/// Why a withdrawal body was refused: the answer's status, problem slug,
/// title and detail (written by kim) and the broken rule, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalRefusal {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

/// The reason a police system gives for a withdrawal: 1-500 characters, no
/// control characters but line breaks; nothing else in the body. A refusal
/// never quotes the body; an unknown key is named by a capped, log-safe
/// pointer (as in a notification).
pub fn withdrawal_reason(body: &[u8]) -> Result<String, WithdrawalRefusal> {
    let invalid = |pointer: String, message: &str| WithdrawalRefusal {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        slug: "invalid-withdrawal",
        title: "Invalid withdrawal",
        detail: "The withdrawal breaks a rule of the contract; see errors.".to_owned(),
        errors: vec![FieldError {
            pointer,
            message: message.to_owned(),
        }],
    };
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| WithdrawalRefusal {
        status: StatusCode::BAD_REQUEST,
        slug: "malformed-json",
        title: "Malformed JSON",
        detail: format!(
            "The body is not valid JSON (line {}, column {}).",
            e.line(),
            e.column()
        ),
        errors: Vec::new(),
    })?;
    let Some(obj) = v.as_object() else {
        return Err(invalid(
            String::new(),
            "must be a JSON object with a reason",
        ));
    };
    if let Some(k) = obj.keys().find(|k| k.as_str() != "reason") {
        return Err(invalid(
            crate::ingest::notification::key_pointer("", k),
            "unknown field",
        ));
    }
    match obj.get("reason") {
        None => Err(invalid("/reason".into(), "is required")),
        Some(serde_json::Value::String(r)) => {
            let n = r.chars().count();
            if n == 0 || n > 500 {
                Err(invalid("/reason".into(), "must be 1 to 500 characters"))
            } else if r.chars().any(|c| c.is_control() && c != '\n') {
                Err(invalid(
                    "/reason".into(),
                    "must not contain control characters",
                ))
            } else {
                Ok(r.clone())
            }
        }
        Some(_) => Err(invalid("/reason".into(), "must be a string")),
    }
}

#[allow(clippy::result_large_err)] // the error is the answer, built once
fn parse_withdrawal(body: &[u8]) -> Result<String, Response<Body>> {
    withdrawal_reason(body).map_err(|r| problem(r.status, r.slug, r.title, &r.detail, &r.errors))
}

async fn withdraw(
    req: Request<Incoming>,
    id: &str,
    force: &str,
    state: &AppState,
) -> Response<Body> {
    let Some(rid) = ReceiptId::parse(id) else {
        return not_found();
    };
    if !is_json(&req) {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the withdrawal as Content-Type: application/json.",
            &[],
        );
    }
    let body = match read_body(req, state).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let reason = match parse_withdrawal(&body) {
        Ok(r) => zeroize::Zeroizing::new(r),
        Err(r) => return r,
    };
    // A store that cannot write cannot record it (nor apply the record it
    // would wait for below).
    if let Some(b) = state.store.broken() {
        crate::lograte::error!("http.broken", force, "{}: answering 503", b.reason());
        return unavailable();
    }
    // Just accepted: its record reaches the trees within milliseconds.
    if !crate::store::writer::settled(&state.store, rid.as_str(), Duration::from_secs(10)).await {
        tracing::error!(
            force,
            "withdrawal waited too long for its notification to be applied"
        );
        return unavailable();
    }
    match crate::deliver::withdraw(
        &state.store,
        force,
        rid.as_str(),
        &reason,
        jiff::Timestamp::now(),
    ) {
        Ok(None) => not_found(),
        Ok(Some((rec, ticket))) => {
            if let Some(t) = ticket {
                if let Err(e) = state.store.durable(t).await {
                    crate::lograte::error!("http.withdraw", force, error = %e, "withdrawal not durable; answering 503");
                    return unavailable();
                }
            }
            let mut r = json_response(StatusCode::OK, &status_body(&rec));
            r.extensions_mut().insert(rec.receipt_id.clone());
            r
        }
        Err(e) => {
            tracing::error!(force, error = %e, "withdrawal failed");
            unavailable()
        }
    }
}

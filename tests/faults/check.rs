//! The promises checked after each fault: every 202'd receipt answers its
//! status, every child reaches a final or waiting state, no alert reaches a
//! DSL twice except a resend after a kill (same Message-ID), the audit chain
//! verifies.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::Method;
use kim::police_client::{Connection, PoliceClient};

use crate::load::Accepted;
use crate::support::smtp::Received;
use crate::world::World;
use crate::{promise, Broken, Outcome};

/// GETs `path` on `conn`, reconnecting (at most 5 times) when the
/// connection breaks: (status, JSON body).
async fn get(
    client: &PoliceClient,
    addr: SocketAddr,
    conn: &mut Option<Connection>,
    path: &str,
) -> Result<(u16, serde_json::Value), String> {
    let mut last = String::new();
    for _ in 0..5 {
        if conn.is_none() {
            match client.connect(addr).await {
                Ok(c) => *conn = Some(c),
                Err(e) => {
                    last = e.to_string();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        match conn.as_mut().unwrap().send(Method::GET, path, None).await {
            Ok(a) => {
                let body = if a.status == 200 {
                    a.json()
                } else {
                    serde_json::Value::Null
                };
                return Ok((a.status, body));
            }
            Err(e) => {
                last = e.to_string();
                *conn = None;
            }
        }
    }
    Err(last)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Every receipt that got a 202 answers 200 to its force's GET. Returns how
/// many were checked.
pub fn receipts_answer(w: &World) -> Outcome<usize> {
    let accepted = w.shared.accepted();
    let addr = w.addr();
    rt().block_on(async {
        let mut conn = None;
        for a in &accepted {
            let path = format!("/v1/notifications/{}", a.receipt);
            match get(&w.client, addr, &mut conn, &path).await {
                Ok((200, _)) => {}
                Ok((status, _)) => {
                    return Err(Broken {
                        promise: "every 202'd receipt answers GET",
                        detail: format!("receipt {} answers {status}", a.receipt),
                    })
                }
                Err(e) => {
                    return Err(Broken {
                        promise: "kim answers the police after a restart",
                        detail: format!("GET {}: {e}", a.receipt),
                    })
                }
            }
        }
        Ok(accepted.len())
    })
}

/// Waits (at most `limit`) until every child is where it must end: on the
/// roll → `delivered`; not on it → `needs_review`. Returns the time it took.
pub fn settle(w: &World, limit: Duration) -> Outcome<Duration> {
    let started = Instant::now();
    let addr = w.addr();
    let mut pending: Vec<Accepted> = w.shared.accepted();
    rt().block_on(async {
        let mut conn = None;
        loop {
            let mut still = Vec::new();
            let mut states = BTreeMap::<String, usize>::new();
            for a in pending {
                let path = format!("/v1/notifications/{}", a.receipt);
                let (status, s) =
                    get(&w.client, addr, &mut conn, &path)
                        .await
                        .map_err(|e| Broken {
                            promise: "kim answers the police after a restart",
                            detail: format!("GET {}: {e}", a.receipt),
                        })?;
                promise(status == 200, "every 202'd receipt answers GET", || {
                    format!("receipt {} answers {status}", a.receipt)
                })?;
                let state = s["children"][0]["state"].as_str().unwrap_or("?").to_owned();
                let want = if a.on_roll {
                    "delivered"
                } else {
                    "needs_review"
                };
                if state == want {
                    continue;
                }
                promise(
                    !matches!(state.as_str(), "failed" | "withdrawn" | "delivered"),
                    "every child reaches the state it must",
                    || format!("receipt {} child 0 is {state}, not {want}", a.receipt),
                )?;
                *states.entry(state).or_default() += 1;
                still.push(a);
            }
            if still.is_empty() {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                let some: Vec<&str> = still.iter().take(5).map(|a| a.receipt.as_str()).collect();
                return Err(Broken {
                    promise: "every child reaches a final or waiting state",
                    detail: format!(
                        "{} children still {states:?} after {limit:?}, e.g. {some:?}",
                        still.len()
                    ),
                });
            }
            pending = still;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

/// The messages to a school DSL, by Message-ID, each with the number of the
/// server that got it.
pub fn dsl_messages(received: &[(usize, Received)]) -> BTreeMap<String, Vec<(usize, Received)>> {
    let mut by_id = BTreeMap::<String, Vec<(usize, Received)>>::new();
    for (server, m) in received {
        if !m
            .to
            .iter()
            .any(|t| t.starts_with("dsl@") || t.contains("<dsl@"))
        {
            continue;
        }
        let id = m.header("Message-ID").unwrap_or_default();
        by_id.entry(id).or_default().push((*server, m.clone()));
    }
    by_id
}

/// No alert reached a DSL twice, except a copy sent again by the next kim
/// process after a kill (same Message-ID): each kim process reaches its
/// own SMTP server (`Setup::server_per_run`), so two copies at one server
/// are a double send. Returns how many resends after a kill there were.
pub fn no_doubles(w: &World) -> Outcome<usize> {
    let mut resends = 0;
    for (id, mut copies) in dsl_messages(&w.received()) {
        copies.sort_by_key(|(_, m)| m.at);
        for pair in copies.windows(2) {
            promise(pair[0].0 != pair[1].0, "no alert delivered twice", || {
                format!(
                    "{id} reached the DSL {} times, twice from one kim process ({:?} apart)",
                    copies.len(),
                    pair[1].1.at - pair[0].1.at
                )
            })?;
            resends += 1;
        }
    }
    Ok(resends)
}

/// Every child on the roll got its alert (its Message-ID at the server).
pub fn every_alert_arrived(w: &World) -> Outcome<usize> {
    let got = dsl_messages(&w.received());
    let mut n = 0;
    for a in w.shared.accepted().iter().filter(|a| a.on_roll) {
        let id = format!("<{}.0@council.example>", a.receipt.to_ascii_lowercase());
        promise(got.contains_key(&id), "every alert reaches its DSL", || {
            format!("nothing arrived with Message-ID {id}")
        })?;
        n += 1;
    }
    Ok(n)
}

/// `kim audit verify` passes.
pub fn audit_verifies(w: &World) -> Outcome {
    let (code, out, err) = w.kim_cli(&["audit", "verify"]);
    promise(code == 0, "kim audit verify passes", || {
        format!("exit {code}: {}{}", out.trim(), err.trim())
    })
}

/// No answer other than 202 or 503 (+ Retry-After) reached the load.
pub fn no_unexpected_answers(w: &World) -> Outcome {
    let u = w.shared.unexpected.lock().unwrap().clone();
    promise(
        u.is_empty(),
        "the police get 202 or 503, nothing else",
        || format!("{} unexpected answers: {:?}", u.len(), &u[..u.len().min(5)]),
    )
}

/// kim's own books: at most one `delivered` event per DSL alert (a resend
/// after a kill follows an attempt the killed process never recorded).
/// Returns the alerts the audit has delivered.
pub fn audit_delivers_once(w: &World) -> Outcome<std::collections::BTreeSet<String>> {
    let (code, out, err) = w.kim_cli(&["audit", "list", "--json"]);
    promise(code == 0, "kim audit list answers", || {
        format!("exit {code}: {}", err.trim())
    })?;
    let events: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut delivered = BTreeMap::<String, usize>::new();
    for e in events.as_array().into_iter().flatten() {
        let alert = e["alert_id"].as_str().unwrap_or_default();
        // The DSL alert of a child: RECEIPT.CHILD (not an admin notice such
        // as `review.N.RECEIPT.CHILD`).
        let dsl = alert.split_once('.').is_some_and(|(r, c)| {
            r.len() == 19 && r.matches('-').count() == 3 && c.bytes().all(|b| b.is_ascii_digit())
        });
        if e["kind"] == "delivered" && dsl {
            *delivered.entry(alert.to_owned()).or_default() += 1;
        }
    }
    if let Some((id, n)) = delivered.iter().find(|(_, n)| **n > 1) {
        return Err(Broken {
            promise: "no alert delivered twice",
            detail: format!("the audit has {n} delivered events for {id}"),
        });
    }
    Ok(delivered.into_keys().collect())
}

/// The alerts the audit has delivered are the alerts whose Message-ID
/// reached the relay, both ways round (named when not).
pub fn audit_matches_relay(w: &World, in_audit: &std::collections::BTreeSet<String>) -> Outcome {
    let at_relay: std::collections::BTreeSet<String> = dsl_messages(&w.received())
        .into_keys()
        .map(|id| {
            id.trim_start_matches('<')
                .split('@')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase()
        })
        .collect();
    let unsent: Vec<&String> = in_audit.difference(&at_relay).take(5).collect();
    promise(
        unsent.is_empty(),
        "an alert recorded delivered reached the relay",
        || {
            format!(
                "{} alerts delivered in the audit, {} at the relay; not at the relay: {unsent:?}",
                in_audit.len(),
                at_relay.len()
            )
        },
    )?;
    let unrecorded: Vec<&String> = at_relay.difference(in_audit).take(5).collect();
    promise(
        unrecorded.is_empty(),
        "every message that reached the relay is recorded delivered",
        || {
            format!(
            "{} alerts delivered in the audit, {} at the relay; not in the audit: {unrecorded:?}",
            in_audit.len(),
            at_relay.len()
        )
        },
    )
}

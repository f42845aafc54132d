//! The steady police load: a few keep-alive mTLS clients posting
//! notifications to whichever kim runs now, keeping every receipt that got
//! a 202. Every seventh child is not on the roll (it waits for review); the
//! others match a pupil and become an alert to a school's DSL.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Method;
use kim::police_client::{Connection, PoliceClient};
use serde_json::json;

use crate::world::PUPILS;

/// A notification that got its 202.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub receipt: String,
    /// The child is on the roll (an alert must reach the DSL); else it waits
    /// for review.
    pub on_roll: bool,
}

/// What the load and the campaign share.
#[derive(Default)]
pub struct Shared {
    /// Where kim listens now; `None` while it is down.
    pub addr: Mutex<Option<SocketAddr>>,
    pub accepted: Mutex<Vec<Accepted>>,
    /// The next notification's number.
    pub seq: AtomicU64,
    pub refused_503: AtomicU64,
    /// Answers that are neither 202 nor 503 (each a broken promise).
    pub unexpected: Mutex<Vec<String>>,
    /// The load holds off while the campaign checks (so the checks do not
    /// grow with their own length).
    pub paused: AtomicBool,
}

impl Shared {
    pub fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().unwrap().clone()
    }
}

/// Notification number `n`: its body and whether its child is on the roll.
pub fn body(n: u64) -> (Vec<u8>, bool) {
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
    let on_roll = n % 7 != 3;
    let (g, f, d) = if on_roll {
        let (g, f, d, _) = PUPILS[(n as usize) % PUPILS.len()];
        (g, f, d)
    } else {
        ("Nobody", "Notontheroll", "2015-01-01")
    };
    let b = serde_json::to_vec(&json!({
        "police_reference": format!("KNT/FLT/{n}"),
        "incident": {"occurred_at": occurred, "category": "domestic_abuse",
                     "summary_for_school": "Police attended a verbal argument at the home."},
        "children": [{"given_name": g, "family_name": f, "date_of_birth": d,
                      "postcode": "QX9 7ZZ", "involvement": "present"}],
        "officer": {"name": "PC 4411 Jones", "phone": "01622 000000"}
    }))
    .unwrap();
    (b, on_roll)
}

/// Posts notification number `n` on `c`: `Ok(Some(receipt))` on 202,
/// `Ok(None)` on 503, `Err` when the connection failed (kim down).
pub async fn post(shared: &Shared, c: &mut Connection, n: u64) -> Result<Option<String>, ()> {
    let (b, on_roll) = body(n);
    match c.send(Method::POST, "/v1/notifications", Some(&b)).await {
        Ok(a) if a.status == 202 => {
            let receipt = a.json()["receipt_id"].as_str().unwrap().to_owned();
            shared.accepted.lock().unwrap().push(Accepted {
                receipt: receipt.clone(),
                on_roll,
            });
            Ok(Some(receipt))
        }
        Ok(a) if a.status == 503 => {
            shared.refused_503.fetch_add(1, Ordering::SeqCst);
            if !a.headers.contains_key("retry-after") {
                shared
                    .unexpected
                    .lock()
                    .unwrap()
                    .push("503 without Retry-After".into());
            }
            Ok(None)
        }
        Ok(a) => {
            // Only the status: a body might quote the request.
            shared
                .unexpected
                .lock()
                .unwrap()
                .push(format!("POST KNT/FLT/{n}: {}", a.status));
            Ok(None)
        }
        Err(_) => Err(()),
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    rt: tokio::runtime::Runtime,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(
        client: PoliceClient,
        shared: Arc<Shared>,
        clients: usize,
        every: Duration,
    ) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..clients)
            .map(|_| {
                let (client, shared, stop) = (client.clone(), shared.clone(), stop.clone());
                rt.spawn(async move {
                    let mut conn: Option<(SocketAddr, Connection)> = None;
                    while !stop.load(Ordering::SeqCst) {
                        if shared.paused.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                        let Some(addr) = *shared.addr.lock().unwrap() else {
                            conn = None;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        };
                        if conn.as_ref().is_none_or(|(a, _)| *a != addr) {
                            conn = match client.connect(addr).await {
                                Ok(c) => Some((addr, c)),
                                Err(_) => {
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                    continue;
                                }
                            };
                        }
                        let n = shared.seq.fetch_add(1, Ordering::SeqCst);
                        let c = &mut conn.as_mut().unwrap().1;
                        if post(&shared, c, n).await.is_err() {
                            conn = None;
                        }
                        tokio::time::sleep(every).await;
                    }
                })
            })
            .collect();
        Self { stop, rt, tasks }
    }

    /// Stops every client (each finishes the request it is in, briefly).
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.rt.block_on(async {
            for t in self.tasks {
                let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
            }
        });
    }
}

//! The soak's outside world: the roll and school directory it imports, the
//! police notifications it posts (steady and in bursts, each to a child on
//! the roll or, now and then, to one who is not and so goes to review),
//! and the admin at the CLI (review decisions, reading the audit and the
//! alerts). Everything is decided by the notification's number and the
//! seed, so two runs with one seed post the same notifications.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::Method;
use kim::police_client::{Connection, PoliceClient};

pub const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,deputy@maidstone.example,\n\
118766,Oakwood School,Mr Oak,dsl@oakwood.example,,\n\
118767,Riverside Academy,Mrs River,dsl@riverside.example,,\n";
const URNS: [&str; 3] = ["118765", "118766", "118767"];
/// Pupils on the roll.
pub const ROLL_SIZE: u64 = 3000;
/// One notification in this many is for a child not on the roll (review).
const REVIEW_ONE_IN: u64 = 40;

/// splitmix64: the deterministic choices.
pub fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed
        .wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Pupil `p` of the roll: (given, family, date of birth, URN).
fn pupil(p: u64) -> (String, String, String, &'static str) {
    (
        format!("Ann{}", crate::common::alpha(p)),
        format!("Soak{}", crate::common::alpha(p * 7 + 3)),
        format!("201{}-{:02}-{:02}", 2 + p % 7, 1 + p % 12, 1 + p % 28),
        URNS[(p % 3) as usize],
    )
}

pub fn roll_csv() -> String {
    let mut roll = String::from(
        "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n",
    );
    for p in 0..ROLL_SIZE {
        let (g, f, d, urn) = pupil(p);
        roll.push_str(&format!("SOAK-{p},{g},{f},,{d},,{urn}\n"));
    }
    roll
}

/// Whether notification `i` is for a child who is not on the roll.
pub fn goes_to_review(seed: u64, i: u64) -> bool {
    mix(seed, i) % REVIEW_ONE_IN == 0
}

/// Notification `i`: its police reference and body.
pub fn notification(seed: u64, i: u64) -> (String, Vec<u8>) {
    let reference = format!("KNT/SOAK/{seed}/{i}");
    let (g, f, d) = if goes_to_review(seed, i) {
        (
            format!("Nobody{}", crate::common::alpha(i)),
            format!("Unlisted{}", crate::common::alpha(i)),
            "2016-01-01".to_owned(),
        )
    } else {
        let (g, f, d, _) = pupil(mix(seed ^ 1, i) % ROLL_SIZE);
        (g, f, d)
    };
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
    let body = serde_json::to_vec(&serde_json::json!({
        "police_reference": reference,
        "incident": {"occurred_at": occurred, "category": "domestic_abuse",
                     "summary_for_school": "Police attended a verbal argument at the home."},
        "children": [{"given_name": g, "family_name": f, "date_of_birth": d,
                      "involvement": "present"}]
    }))
    .unwrap();
    (reference, body)
}

/// What the police side saw, shared with the sampler.
#[derive(Default)]
pub struct Police {
    /// Latencies (µs) of the POSTs since the sampler last took them.
    pub window: Mutex<Vec<u32>>,
    /// Every receipt, by notification number.
    pub receipts: Mutex<Vec<(u64, String)>>,
    pub accepted: AtomicU64,
    /// Answers other than 202 (the first few kept, without bodies).
    pub refused: Mutex<Vec<String>>,
    /// Connections that broke and were opened again.
    pub reconnects: AtomicU64,
    /// The next notification number.
    pub next: AtomicU64,
}

/// Posts one notification on `conn` (opening one when there is none or
/// the last broke; one retry of the same body on a new connection).
async fn post(
    police: &Police,
    client: &PoliceClient,
    addr: SocketAddr,
    conn: &mut Option<Connection>,
    seed: u64,
) {
    let i = police.next.fetch_add(1, Ordering::Relaxed);
    let (_, body) = notification(seed, i);
    for attempt in 0..3 {
        if conn.is_none() {
            match client.connect(addr).await {
                Ok(c) => *conn = Some(c),
                Err(e) => {
                    police.refused.lock().unwrap().push(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let t = Instant::now();
        let answer = conn
            .as_mut()
            .unwrap()
            .send(Method::POST, "/v1/notifications", Some(&body))
            .await;
        let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
        match answer {
            // 200: the retry of a POST whose 202 the broken connection lost.
            Ok(a) if a.status == 202 || (a.status == 200 && attempt > 0) => {
                police.window.lock().unwrap().push(us);
                police.accepted.fetch_add(1, Ordering::Relaxed);
                let receipt = a.json()["receipt_id"].as_str().unwrap_or("").to_owned();
                police.receipts.lock().unwrap().push((i, receipt));
                return;
            }
            Ok(a) => {
                police
                    .refused
                    .lock()
                    .unwrap()
                    .push(format!("notification {i}: {}", a.status));
                return;
            }
            Err(_) => {
                police.reconnects.fetch_add(1, Ordering::Relaxed);
                *conn = None;
            }
        }
    }
    police
        .refused
        .lock()
        .unwrap()
        .push(format!("notification {i}: no answer after 3 tries"));
}

/// The steady sender: `rate` notifications/s on one keep-alive connection.
pub async fn steady(
    police: Arc<Police>,
    client: PoliceClient,
    addr: SocketAddr,
    rate: f64,
    seed: u64,
    stop: Arc<AtomicBool>,
) {
    let mut conn = None;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        post(&police, &client, addr, &mut conn, seed).await;
    }
}

/// The preload: `n` notifications back to back on `conns` connections at
/// the start, so that sled's cache is full before the warm-up ends (a
/// police system catching up after an outage).
pub async fn preload(
    police: Arc<Police>,
    client: PoliceClient,
    addr: SocketAddr,
    (n, conns): (u64, u64),
    seed: u64,
) {
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (police, client) = (police.clone(), client.clone());
        let share = n / conns + u64::from(c < n % conns);
        tasks.push(tokio::spawn(async move {
            let mut conn = None;
            for _ in 0..share {
                post(&police, &client, addr, &mut conn, seed).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// The bursts: `burst` notifications spread over one minute, every
/// `every` seconds from `every / 2` on, on a second connection.
pub async fn bursts(
    police: Arc<Police>,
    client: PoliceClient,
    addr: SocketAddr,
    (burst, every): (u64, u64),
    seed: u64,
    stop: Arc<AtomicBool>,
) {
    if burst == 0 || every == 0 {
        return;
    }
    let start = tokio::time::Instant::now();
    let mut k = 0u64;
    loop {
        let at = start + Duration::from_secs(every / 2 + k * every);
        while tokio::time::Instant::now() < at {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut conn = None;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(60.0 / burst as f64));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for _ in 0..burst {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            tick.tick().await;
            post(&police, &client, addr, &mut conn, seed).await;
        }
        k += 1;
    }
}

/// The admin at the CLI, over the admin socket.
pub struct Admin {
    pub kim: PathBuf,
    pub config: PathBuf,
    /// Children assigned to a school (each an alert to deliver) and dismissed.
    pub assigned: AtomicU64,
    pub dismissed: AtomicU64,
    /// Admin commands run, and the failures (exit status and stderr).
    pub runs: AtomicU64,
    pub failures: Mutex<Vec<String>>,
}

impl Admin {
    pub fn new(kim: &Path, config: &Path) -> Self {
        Self {
            kim: kim.to_owned(),
            config: config.to_owned(),
            assigned: AtomicU64::new(0),
            dismissed: AtomicU64::new(0),
            runs: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
        }
    }

    /// `kim --config … ARGS`: stdout when it succeeded.
    pub fn run(&self, args: &[&str]) -> Option<String> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        let out = Command::new(&self.kim)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .ok()?;
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let mut f = self.failures.lock().unwrap();
        if f.len() < 20 {
            f.push(format!(
                "kim {}: {}: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        None
    }

    /// The children waiting in review: (receipt, index).
    pub fn waiting(&self) -> Vec<(String, u32)> {
        let Some(out) = self.run(&["review", "list", "--json"]) else {
            return Vec::new();
        };
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let items = v
            .as_array()
            .or_else(|| v["items"].as_array())
            .cloned()
            .unwrap_or_default();
        items
            .iter()
            .filter_map(|it| {
                Some((
                    it["receipt_id"].as_str()?.to_owned(),
                    it["index"].as_u64()? as u32,
                ))
            })
            .collect()
    }

    /// One admin minute: read the audit and the alerts, then decide every
    /// child waiting in review, alternately assigning a school and
    /// dismissing.
    pub fn minute(&self) {
        self.run(&["audit", "list", "--since", "2m", "--json"]);
        self.run(&["alerts", "list", "--since", "2m", "--json"]);
        for (receipt, index) in self.waiting() {
            let idx = index.to_string();
            let n = self.assigned.load(Ordering::Relaxed) + self.dismissed.load(Ordering::Relaxed);
            if n % 2 == 0 {
                if self
                    .run(&["review", "assign", &receipt, &idx, URNS[0]])
                    .is_some()
                {
                    self.assigned.fetch_add(1, Ordering::Relaxed);
                }
            } else if self
                .run(&[
                    "review",
                    "dismiss",
                    &receipt,
                    &idx,
                    "--reason",
                    "soak: not known to the council's schools",
                ])
                .is_some()
            {
                self.dismissed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

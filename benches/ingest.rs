//! `cargo bench --bench ingest`: a load benchmark of kim's police listener
//! against nginx terminating the same mutual TLS and answering 202, driven by
//! the same Rust load client (kim's own `PoliceClient`) in one run.
//!
//! Modes, each for KIM_BENCH_SECS (default 10) with KIM_BENCH_CONNS (default
//! 64) concurrent clients:
//!   * keep-alive: one mTLS connection per client, POSTs back to back;
//!   * new connection, full handshake: a fresh TCP + TLS handshake with the
//!     client certificate per request (a new client config each time, so no
//!     session resumption);
//!   * new connection, resumed: the same, with one shared client config, so
//!     rustls resumes TLS 1.3 sessions from the server's tickets.
//!
//! Every body is unique (kim answers 200, not 202, to a re-send). Only 202s
//! count. Nothing here asserts anything: it prints figures. See bench/README.md.

#[path = "common/mod.rs"]
mod common;
use common::{du, env_num, git_revision, machine};

use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::Method;
use kim::pki::{write_dev_certs, DevCerts};
use kim::police_client::PoliceClient;
use tokio::sync::{watch, Barrier};

const KIM: &str = env!("CARGO_BIN_EXE_kim");
const NGINX_TEMPLATE: &str = include_str!("../bench/nginx.conf.tmpl");
const ENDPOINT: &str = "/v1/notifications";
/// No single request may take longer than this; it then counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CLIENT_THREAD: &str = "bench-client";

// ---------------------------------------------------------------------------
// Settings and output helpers

struct Settings {
    secs: u64,
    conns: usize,
}

fn command_line() -> String {
    let mut parts: Vec<String> = ["KIM_BENCH_SECS", "KIM_BENCH_CONNS"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v}")))
        .collect();
    parts.push("cargo bench --bench ingest".into());
    let argv: Vec<String> = std::env::args().collect();
    format!("{}   (argv: {})", parts.join(" "), argv.join(" "))
}

/// The filesystem type holding `p` (longest mount prefix in /proc/mounts).
fn fs_type(p: &Path) -> String {
    let p = p.canonicalize().unwrap_or_else(|_| p.to_owned());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, mnt, ty) = (it.next()?, it.next()?, it.next()?);
            p.starts_with(mnt)
                .then(|| (mnt.len(), format!("{ty} on {dev}")))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, s)| s)
        .unwrap_or_else(|| "unknown".into())
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

// ---------------------------------------------------------------------------
// CPU accounting from /proc

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// (comm, ppid, utime + stime ticks) from a /proc/.../stat file.
fn read_stat(path: &Path) -> Option<(String, u32, u64)> {
    let s = std::fs::read_to_string(path).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_owned();
    let f: Vec<&str> = s[close + 1..].split_whitespace().collect();
    // After the comm: state(3) ppid(4) ... utime(14) stime(15).
    let ppid = f.get(1)?.parse().ok()?;
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((comm, ppid, ticks))
}

/// CPU ticks per thread name for every thread of `pid`.
fn thread_ticks(pid: u32) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            if let Some((comm, _, t)) = read_stat(&e.path().join("stat")) {
                *out.entry(comm).or_insert(0) += t;
            }
        }
    }
    out
}

/// Direct children of `pid` (nginx's workers).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some((_, ppid, _)) = read_stat(&e.path().join("stat")) {
                if ppid == pid {
                    out.push(n);
                }
            }
        }
    }
    out
}

/// Threads (by name) of the server processes and of the load client, and
/// the whole machine (busy and stolen ticks, from /proc/stat).
#[derive(Clone, Default)]
struct CpuSnap {
    server: BTreeMap<String, u64>,
    client: u64,
    machine_busy: u64,
    steal: u64,
}

impl CpuSnap {
    fn take(server: BTreeMap<String, u64>) -> Self {
        let client = client_ticks();
        let (machine_busy, steal) = machine_ticks();
        Self {
            server,
            client,
            machine_busy,
            steal,
        }
    }
}

/// (busy, steal) ticks of all CPUs together: busy is user + nice + system +
/// irq + softirq (guest time is already inside user).
fn machine_ticks() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = s.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    (at(0) + at(1) + at(2) + at(5) + at(6), at(7))
}

fn client_ticks() -> u64 {
    thread_ticks(std::process::id())
        .into_iter()
        .filter(|(k, _)| k == CLIENT_THREAD)
        .map(|(_, v)| v)
        .sum()
}

// ---------------------------------------------------------------------------
// Request bodies

/// A valid notification (like the integration tests' `simple()`) with the
/// police reference spliced in per request.
struct Bodies {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
}

impl Bodies {
    fn new() -> Self {
        const MARK: &str = "@@REFERENCE@@";
        let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
        let v = serde_json::json!({
            "police_reference": MARK,
            "incident": {
                "occurred_at": occurred,
                "category": "domestic_abuse",
                "summary_for_school": "Police attended a verbal argument at the home. No injuries."
            },
            "children": [{
                "given_name": "Amelia",
                "family_name": "Khan",
                "other_names": ["Zed"],
                "date_of_birth": "2014-03-09",
                "school_urn": "118765",
                "postcode": "ME14 1XX",
                "involvement": "present",
                "voice_of_child": "Spoken to by officers."
            }],
            "officer": { "name": "PC 4411 Jones", "phone": "01622 000000", "email": "p.jones@police.example" }
        });
        let s = serde_json::to_string(&v).expect("serializes");
        let (a, b) = s.split_once(MARK).expect("marker present");
        Self {
            prefix: a.as_bytes().to_vec(),
            suffix: b.as_bytes().to_vec(),
        }
    }

    /// A body with the unique reference `BENCH/{tag}/{conn}/{i}`.
    fn body(&self, tag: &str, conn: usize, i: u64) -> Vec<u8> {
        use std::io::Write;
        let mut b = Vec::with_capacity(self.prefix.len() + self.suffix.len() + 32);
        b.extend_from_slice(&self.prefix);
        let _ = write!(b, "BENCH/{tag}/{conn}/{i}");
        b.extend_from_slice(&self.suffix);
        b
    }
}

// ---------------------------------------------------------------------------
// Servers under test (guards that stop them on drop, also on panic)

fn signal(pid: u32, sig: Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

/// SIGTERM, wait up to `limit`, then SIGKILL.
fn stop_child(child: &mut Child, limit: Duration) -> bool {
    if let Ok(Some(_)) = child.try_wait() {
        return true;
    }
    signal(child.id(), Signal::SIGTERM);
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

#[derive(Default)]
struct LogStats {
    lines: AtomicU64,
    warn_or_error: AtomicU64,
    /// The lines up to the listening line, then the first few warnings.
    kept: Mutex<Vec<String>>,
    /// Each reload's time to take effect (ms, from kim's "config reloaded" lines).
    reload_ms: Mutex<Vec<f64>>,
}

struct Kim {
    child: Child,
    addr: SocketAddr,
    store: PathBuf,
    log: Arc<LogStats>,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn find_addr(line: &str, after: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(after)? + after.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

impl Kim {
    /// Writes a config in `dir` and starts `kim serve` with `KIM_LOG=log`.
    fn start(dir: &Path, certs: &DevCerts, log: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        kim::store::crypto::write_new_key(&dir.join("master.key")).map_err(|e| e.to_string())?;
        let config = dir.join("kim.toml");
        let text = kim::dev::config(&kim::dev::Options {
            certs: certs.dir.clone(),
            extra: "[limits]\nmax_connections = 1024".into(),
            ..kim::dev::Options::loopback()
        });
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        if !Path::new(KIM).exists() {
            return Err(format!(
                "{KIM} is missing: run `cargo build --release --bin kim` (cargo bench builds it)"
            ));
        }
        let mut child = Command::new(KIM)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env("KIM_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {KIM}: {e}"))?;
        let stderr = child.stderr.take().expect("piped");
        let stats = Arc::new(LogStats::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let st = stats.clone();
        // Drains kim's log pipe as journald would; after the listening line
        // it only counts lines and keeps the first few warnings.
        let reader = std::thread::Builder::new()
            .name("kim-stderr".into())
            .spawn(move || {
                let mut r = BufReader::with_capacity(256 * 1024, stderr);
                let mut buf = Vec::with_capacity(1024);
                let mut found = false;
                loop {
                    buf.clear();
                    match r.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    st.lines.fetch_add(1, Ordering::Relaxed);
                    if !found {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                        if line.contains("listening for police systems") {
                            found = true;
                            let _ = tx.send(find_addr(&line, "addr="));
                        }
                        st.kept.lock().unwrap().push(line);
                        continue;
                    }
                    // "<timestamp>  LEVEL target: message": the level is the
                    // first word after the timestamp.
                    let level = buf
                        .split(|b| *b == b' ')
                        .filter(|w| !w.is_empty())
                        .nth(1)
                        .unwrap_or_default();
                    if buf.windows(15).any(|w| w == b"config reloaded") {
                        let line = String::from_utf8_lossy(&buf);
                        if let Some(ms) = line
                            .split_whitespace()
                            .find_map(|w| w.strip_prefix("ms="))
                            .and_then(|v| v.trim_matches('"').parse::<f64>().ok())
                        {
                            st.reload_ms.lock().unwrap().push(ms);
                        }
                    }
                    if buf.windows(21).any(|w| w == b"accept journal closed") {
                        eprintln!("  kim: {}", String::from_utf8_lossy(&buf).trim_end());
                    }
                    if level == b"WARN" || level == b"ERROR" {
                        let n = st.warn_or_error.fetch_add(1, Ordering::Relaxed);
                        if n < 5 {
                            st.kept
                                .lock()
                                .unwrap()
                                .push(String::from_utf8_lossy(&buf).trim_end().to_owned());
                        }
                    }
                }
                if !found {
                    let _ = tx.send(None);
                }
            })
            .expect("spawn a thread");
        let mut kim = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            store: dir.join("store"),
            log: stats,
            reader: Some(reader),
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(addr)) => {
                kim.addr = addr;
                Ok(kim)
            }
            _ => {
                let _ = kim.child.kill();
                let _ = kim.child.wait();
                if let Some(r) = kim.reader.take() {
                    let _ = r.join();
                }
                Err(format!(
                    "kim did not start listening within 30 s; its log:\n{}",
                    kim.log.kept.lock().unwrap().join("\n")
                ))
            }
        }
    }

    fn cpu(&self) -> BTreeMap<String, u64> {
        thread_ticks(self.child.id())
    }

    /// SIGTERM (kim drains and flushes the store), then wait.
    fn stop(&mut self) -> bool {
        let clean = stop_child(&mut self.child, Duration::from_secs(20));
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        clean
    }
}

impl Drop for Kim {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Nginx {
    child: Child,
    addr: SocketAddr,
    workers: Vec<u32>,
    dir: PathBuf,
}

/// `nginx` on PATH (or in /usr/sbin, where Debian puts it).
fn find_nginx() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl Nginx {
    fn start(bin: &Path, dir: &Path, certs: &DevCerts) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let port = free_port();
        let conf = NGINX_TEMPLATE
            .replace("@@DIR@@", &dir.display().to_string())
            .replace("@@PORT@@", &port.to_string())
            .replace("@@SERVER_CERT@@", &certs.server_cert.display().to_string())
            .replace("@@SERVER_KEY@@", &certs.server_key.display().to_string())
            .replace("@@POLICE_CA@@", &certs.police_ca.display().to_string());
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let out = std::fs::File::create(dir.join("stderr.log")).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut nginx = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            workers: Vec::new(),
            dir: dir.to_owned(),
        };
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                return Err(format!("nginx exited ({status}): {}", nginx.logs()));
            }
            if TcpStream::connect_timeout(&nginx.addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "nginx did not listen within 10 s: {}",
                    nginx.logs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Give the master a moment to fork every worker.
        std::thread::sleep(Duration::from_millis(200));
        nginx.workers = children_of(nginx.child.id());
        Ok(nginx)
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for f in ["stderr.log", "error.log"] {
            s.push_str(&std::fs::read_to_string(self.dir.join(f)).unwrap_or_default());
        }
        s.trim().to_owned()
    }

    fn cpu(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (label, pid) in std::iter::once(("master", self.child.id()))
            .chain(self.workers.iter().map(|p| ("workers", *p)))
        {
            if let Some((_, _, t)) = read_stat(Path::new(&format!("/proc/{pid}/stat"))) {
                *out.entry(label.to_owned()).or_insert(0) += t;
            }
        }
        out
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM is nginx's fast shutdown: the master stops its workers.
        if !stop_child(&mut self.child, Duration::from_secs(5)) {
            for w in &self.workers {
                signal(*w, Signal::SIGKILL);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The load client

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    KeepAlive,
    NewFull,
    NewResumed,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::KeepAlive => "keep-alive",
            Mode::NewFull => "new conn, full handshake",
            Mode::NewResumed => "new conn, TLS 1.3 resumed",
        }
    }
    fn tag(self) -> &'static str {
        match self {
            Mode::KeepAlive => "ka",
            Mode::NewFull => "nf",
            Mode::NewResumed => "nr",
        }
    }
}

/// Where the client certificate and CA are, for fresh client configs.
#[derive(Clone)]
struct Identity {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Identity {
    fn client(&self) -> PoliceClient {
        PoliceClient::new(&self.ca, Some((&self.cert, &self.key))).expect("client TLS config")
    }
}

#[derive(Default)]
struct Tally {
    /// 202s answered before the deadline.
    ok: u64,
    /// Latency of each of those, in microseconds.
    lat_us: Vec<u32>,
    /// Other statuses and errors before the deadline, by kind.
    other: BTreeMap<String, u64>,
    /// Requests sent (including those answered after the deadline).
    sent: u64,
    /// Answers (of any kind) that arrived after the deadline: not counted.
    late: u64,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.ok += o.ok;
        self.lat_us.extend(o.lat_us);
        for (k, v) in o.other {
            *self.other.entry(k).or_insert(0) += v;
        }
        self.sent += o.sent;
        self.late += o.late;
    }

    fn problem(&mut self, what: String, at: Instant, deadline: Instant) {
        if at > deadline {
            self.late += 1;
        } else {
            let mut what = what;
            what.truncate(100);
            *self.other.entry(what).or_insert(0) += 1;
        }
    }

    fn answer(&mut self, status: u16, t0: Instant, deadline: Instant) {
        let done = Instant::now();
        if done > deadline {
            self.late += 1;
        } else if status == 202 {
            self.ok += 1;
            let us = done.duration_since(t0).as_micros();
            self.lat_us.push(us.min(u32::MAX as u128) as u32);
        } else {
            self.problem(format!("HTTP {status}"), done, deadline);
        }
    }
}

struct Load {
    addr: SocketAddr,
    mode: Mode,
    worker: usize,
    bodies: Arc<Bodies>,
    shared: PoliceClient,
    identity: Identity,
    ready: Arc<Barrier>,
    go: watch::Receiver<Option<Instant>>,
}

impl Load {
    async fn start_signal(&mut self) -> Instant {
        self.ready.wait().await;
        let d = self
            .go
            .wait_for(Option::is_some)
            .await
            .expect("the bench keeps the sender");
        d.expect("checked")
    }

    async fn run(mut self) -> Tally {
        let mut t = Tally::default();
        let tag = self.mode.tag();
        let mut conn = None;
        if self.mode == Mode::KeepAlive {
            // Connections are opened before the clock starts.
            match tokio::time::timeout(REQUEST_TIMEOUT, self.shared.connect(self.addr)).await {
                Ok(Ok(c)) => conn = Some(c),
                Ok(Err(e)) => {
                    *t.other.entry(format!("connect: {e}")).or_insert(0) += 1;
                }
                Err(_) => *t.other.entry("connect: timed out".into()).or_insert(0) += 1,
            }
        }
        let deadline = self.start_signal().await;
        let mut i = 0u64;
        while Instant::now() < deadline {
            let body = self.bodies.body(tag, self.worker, i);
            i += 1;
            match self.mode {
                Mode::KeepAlive => {
                    let mut c = match conn.take() {
                        Some(c) => c,
                        None => {
                            let t0 = Instant::now();
                            match tokio::time::timeout(
                                REQUEST_TIMEOUT,
                                self.shared.connect(self.addr),
                            )
                            .await
                            {
                                Ok(Ok(c)) => c,
                                Ok(Err(e)) => {
                                    t.problem(format!("connect: {e}"), t0, deadline);
                                    tokio::time::sleep(Duration::from_millis(5)).await;
                                    continue;
                                }
                                Err(_) => {
                                    t.problem("connect: timed out".into(), t0, deadline);
                                    continue;
                                }
                            }
                        }
                    };
                    t.sent += 1;
                    let t0 = Instant::now();
                    match tokio::time::timeout(
                        REQUEST_TIMEOUT,
                        c.send(Method::POST, ENDPOINT, Some(&body)),
                    )
                    .await
                    {
                        Ok(Ok(a)) => {
                            t.answer(a.status, t0, deadline);
                            conn = Some(c);
                        }
                        Ok(Err(e)) => {
                            t.problem(format!("keep-alive: {e}"), Instant::now(), deadline)
                        }
                        Err(_) => t.problem("request timed out".into(), Instant::now(), deadline),
                    }
                }
                Mode::NewFull | Mode::NewResumed => {
                    // A fresh client config has an empty session cache: the
                    // handshake is a full one, client certificate included.
                    let client = if self.mode == Mode::NewFull {
                        self.identity.client()
                    } else {
                        self.shared.clone()
                    };
                    t.sent += 1;
                    let t0 = Instant::now();
                    match tokio::time::timeout(
                        REQUEST_TIMEOUT,
                        client.once(self.addr, Method::POST, ENDPOINT, Some(&body)),
                    )
                    .await
                    {
                        Ok(Ok(a)) => t.answer(a.status, t0, deadline),
                        Ok(Err(e)) => {
                            t.problem(format!("new conn: {e}"), Instant::now(), deadline);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Err(_) => t.problem("request timed out".into(), Instant::now(), deadline),
                    }
                }
            }
        }
        t
    }
}

/// The measured outcome of one server × mode run.
struct Outcome {
    server: String,
    mode: Mode,
    tally: Tally,
    secs: f64,
    server_cpu: BTreeMap<String, f64>,
    client_cpu: f64,
    /// Every CPU of the machine, busy, over the run (seconds).
    machine_busy: f64,
    /// Time the hypervisor gave these CPUs to someone else (seconds).
    steal: f64,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.tally.ok as f64 / self.secs
    }
    fn pct(&self, q: f64) -> f64 {
        let v = &self.tally.lat_us;
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() as f64 * q) as usize).min(v.len() - 1);
        v[i] as f64 / 1000.0
    }
    fn errors(&self) -> u64 {
        self.tally.other.values().sum()
    }
    fn server_cpu_total(&self) -> f64 {
        self.server_cpu.values().sum()
    }
}

struct Bench {
    rt: tokio::runtime::Runtime,
    settings: Settings,
    bodies: Arc<Bodies>,
    identity: Identity,
    ticks: f64,
}

impl Bench {
    fn run(
        &self,
        server: &str,
        addr: SocketAddr,
        mode: Mode,
        server_cpu: &dyn Fn() -> BTreeMap<String, u64>,
    ) -> Outcome {
        let s = &self.settings;
        eprintln!("  {server}: {} for {} s ...", mode.label(), s.secs);
        // One shared client config per run: keep-alive connections and
        // resumed handshakes use it; a run starts with an empty cache.
        let shared = self.identity.client();
        let (go_tx, go_rx) = watch::channel(None);
        let ready = Arc::new(Barrier::new(s.conns + 1));
        let handles: Vec<_> = (0..s.conns)
            .map(|worker| {
                let load = Load {
                    addr,
                    mode,
                    worker,
                    bodies: self.bodies.clone(),
                    shared: shared.clone(),
                    identity: self.identity.clone(),
                    ready: ready.clone(),
                    go: go_rx.clone(),
                };
                self.rt.spawn(load.run())
            })
            .collect();
        let (tally, secs, cpu0, cpu1) = self.rt.block_on(async {
            ready.wait().await;
            let cpu0 = CpuSnap::take(server_cpu());
            let start = Instant::now();
            let window = Duration::from_secs(s.secs);
            let _ = go_tx.send(Some(start + window));
            tokio::time::sleep(window).await;
            let cpu1 = CpuSnap::take(server_cpu());
            let mut tally = Tally::default();
            for h in handles {
                match h.await {
                    Ok(t) => tally.merge(t),
                    Err(e) => *tally.other.entry(format!("client task: {e}")).or_insert(0) += 1,
                }
            }
            (tally, window.as_secs_f64(), cpu0, cpu1)
        });
        let mut tally = tally;
        tally.lat_us.sort_unstable();
        let server_cpu = cpu1
            .server
            .iter()
            .map(|(k, v)| {
                let before = cpu0.server.get(k).copied().unwrap_or(0);
                (k.clone(), v.saturating_sub(before) as f64 / self.ticks)
            })
            .collect();
        let out = Outcome {
            server: server.to_owned(),
            mode,
            tally,
            secs,
            server_cpu,
            client_cpu: cpu1.client.saturating_sub(cpu0.client) as f64 / self.ticks,
            machine_busy: cpu1.machine_busy.saturating_sub(cpu0.machine_busy) as f64 / self.ticks,
            steal: cpu1.steal.saturating_sub(cpu0.steal) as f64 / self.ticks,
        };
        eprintln!(
            "    {:.0} 202/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            out.rate(),
            out.pct(0.50),
            out.pct(0.99),
            out.errors()
        );
        // Let TIME_WAIT sockets and the server settle between runs.
        std::thread::sleep(Duration::from_millis(500));
        out
    }

    /// How the second connection with one client config is negotiated.
    fn probe(&self, addr: SocketAddr) -> String {
        let client = self.identity.client();
        let body = self.bodies.body("probe", 0, 0);
        self.rt.block_on(async {
            let kind = |s: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>| {
                let c = s.get_ref().1;
                let version = c.protocol_version().map(|v| format!("{v:?}"));
                let kind = c.handshake_kind().map(|k| format!("{k:?}"));
                format!(
                    "{} {}",
                    version.unwrap_or_default(),
                    kind.unwrap_or_default()
                )
            };
            let first = match client.connect_tls(addr).await {
                Ok(s) => kind(&s),
                Err(e) => return format!("probe failed: {e}"),
            };
            // A whole request, so the client reads the server's tickets.
            let status = match client.once(addr, Method::POST, ENDPOINT, Some(&body)).await {
                Ok(a) => a.status.to_string(),
                Err(e) => format!("error: {e}"),
            };
            let second = match client.connect_tls(addr).await {
                Ok(s) => kind(&s),
                Err(e) => format!("error: {e}"),
            };
            format!(
                "first handshake {first}; probe POST -> {status}; \
                 next handshake with the same client config {second}"
            )
        })
    }
}

/// Measures the client-side cost of a fresh client config (full-handshake mode).
fn client_config_cost(id: &Identity) -> f64 {
    let n = 200;
    let t0 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(id.client());
    }
    t0.elapsed().as_secs_f64() * 1e6 / n as f64
}

// ---------------------------------------------------------------------------
// Report

fn print_table(rows: &[&Outcome], conns: usize) {
    println!();
    println!(
        "{:<14} {:<26} {:>9} {:>8} {:>8} {:>9} {:>7} {:>6} {:>9} {:>9}",
        "server",
        "mode",
        "202/s",
        "p50 ms",
        "p99 ms",
        "202s",
        "errors",
        "late",
        "srv µs/req",
        "cli µs/req"
    );
    for o in rows {
        let per = |cpu: f64| {
            if o.tally.ok > 0 {
                format!("{:.0}", cpu * 1e6 / o.tally.ok as f64)
            } else {
                "-".into()
            }
        };
        println!(
            "{:<14} {:<26} {:>9.0} {:>8.2} {:>8.2} {:>9} {:>7} {:>6} {:>10} {:>10}",
            o.server,
            o.mode.label(),
            o.rate(),
            o.pct(0.50),
            o.pct(0.99),
            o.tally.ok,
            o.errors(),
            o.tally.late,
            per(o.server_cpu_total()),
            per(o.client_cpu),
        );
    }
    println!(
        "({conns} concurrent clients; latency of 202s only, new-conn latency includes TCP + TLS; \
         late = answers after the window, not counted; \
         srv/cli µs/req = server / load-client CPU time per 202)"
    );
    let mut any = false;
    for o in rows {
        for (what, n) in &o.tally.other {
            if !any {
                println!("non-202 answers and errors:");
                any = true;
            }
            println!("  {} / {}: {n} × {what}", o.server, o.mode.label());
        }
    }
}

fn main() {
    let settings = Settings {
        secs: env_num("KIM_BENCH_SECS", 10u64).max(1),
        conns: env_num("KIM_BENCH_CONNS", 64usize).max(1),
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name(CLIENT_THREAD)
        .enable_all()
        .build()
        .expect("tokio runtime");

    // Declared first, so it is removed last, after every child is stopped.
    let tmp = tempfile::Builder::new()
        .prefix("kim-bench-")
        .tempdir()
        .expect("temporary folder");
    let certs = write_dev_certs(&tmp.path().join("certs")).expect("dev certificates");
    let identity = Identity {
        ca: certs.ca_cert.clone(),
        cert: certs.client_cert.clone(),
        key: certs.client_key.clone(),
    };
    let nginx_bin = find_nginx();
    let bench = Bench {
        rt,
        settings,
        bodies: Arc::new(Bodies::new()),
        identity: identity.clone(),
        ticks: clock_ticks(),
    };
    let s = &bench.settings;

    println!("kim ingest benchmark");
    println!("command:  {}", command_line());
    println!("machine:  {}", machine());
    println!("revision: {}", git_revision());
    println!("kim:      {KIM}");
    println!(
        "nginx:    {}",
        match &nginx_bin {
            Some(p) => {
                let v = Command::new(p).arg("-v").output().ok();
                let v = v
                    .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
                    .unwrap_or_default();
                format!("{} ({v})", p.display())
            }
            None => "nginx not found: apt-get install -y nginx".into(),
        }
    );
    println!(
        "store:    {} ({})",
        tmp.path().display(),
        fs_type(tmp.path())
    );
    println!(
        "load:     {} s per run, {} concurrent clients, one tokio runtime with {cores} worker threads \
         in this process; client and server share the {cores} cores (the same for kim and nginx)",
        s.secs, s.conns
    );
    let cfg_us = client_config_cost(&identity);
    println!(
        "          full-handshake mode builds a fresh client config per request: {cfg_us:.0} µs of client CPU each"
    );
    if nginx_bin.is_none() {
        println!("nginx not found: apt-get install -y nginx  (running kim only)");
    }
    println!();

    let mut outcomes: Vec<Outcome> = Vec::new();
    let modes = [Mode::KeepAlive, Mode::NewFull, Mode::NewResumed];

    // 1. kim as in production: KIM_LOG=info (a log line per request).
    eprintln!("kim, KIM_LOG=info:");
    let (store_line, kim_log_line) = {
        let mut kim = Kim::start(&tmp.path().join("kim-info"), &certs, "info")
            .unwrap_or_else(|e| panic!("{e}"));
        println!("kim probe:   {}", bench.probe(kim.addr));
        for m in modes {
            let cpu = || kim.cpu();
            outcomes.push(bench.run("kim", kim.addr, m, &cpu));
        }
        let sent: u64 = outcomes.iter().map(|o| o.tally.sent).sum::<u64>() + 1;
        let ok: u64 = outcomes.iter().map(|o| o.tally.ok).sum();
        let clean = kim.stop();
        let (alloc, apparent, files) = du(&kim.store);
        let store_line = format!(
            "kim store after the KIM_LOG=info runs (stopped {}): {:.1} MiB on disk (du), {:.1} MiB apparent, \
             {files} files; {sent} notifications sent (incl. 1 probe and answers after the deadline), \
             {ok} counted 202s; ≈ {:.0} bytes on disk per notification sent",
            if clean { "cleanly with SIGTERM" } else { "with SIGKILL after 20 s" },
            mib(alloc),
            mib(apparent),
            alloc as f64 / sent.max(1) as f64
        );
        let log_line = format!(
            "kim log (KIM_LOG=info): {} lines drained from stderr, {} WARN/ERROR",
            kim.log.lines.load(Ordering::Relaxed),
            kim.log.warn_or_error.load(Ordering::Relaxed)
        );
        if kim.log.warn_or_error.load(Ordering::Relaxed) > 0 {
            for l in kim.log.kept.lock().unwrap().iter().rev().take(5) {
                eprintln!("    kim: {l}");
            }
        }
        (store_line, log_line)
    };

    // 2. The logging cost: per-request lines off, startup lines kept.
    eprintln!("kim, KIM_LOG=warn,kim::daemon=info:");
    {
        let kim = Kim::start(
            &tmp.path().join("kim-warn"),
            &certs,
            "warn,kim::daemon=info",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let cpu = || kim.cpu();
        outcomes.push(bench.run("kim log=warn", kim.addr, Mode::KeepAlive, &cpu));
    }

    // 2b. The same keep-alive load on a fresh kim (every body is new to it)
    // while it reloads its config (SIGHUP) every KIM_BENCH_RELOAD_MS
    // (default 1000): the latency a reload costs, against "kim log=warn".
    eprintln!("kim, KIM_LOG=warn,kim::daemon=info, reloading:");
    let reload_line = {
        let kim = Kim::start(
            &tmp.path().join("kim-reload"),
            &certs,
            "warn,kim::daemon=info",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let cpu = || kim.cpu();
        let every = Duration::from_millis(env_num("KIM_BENCH_RELOAD_MS", 1000u64).max(50));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let pid = kim.child.id();
        let hups = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                loop {
                    std::thread::sleep(every);
                    if stop.load(Ordering::Relaxed) {
                        return n;
                    }
                    signal(pid, Signal::SIGHUP);
                    n += 1;
                }
            })
        };
        outcomes.push(bench.run("kim reloading", kim.addr, Mode::KeepAlive, &cpu));
        stop.store(true, Ordering::Relaxed);
        let sent = hups.join().unwrap_or(0);
        let mut ms = kim.log.reload_ms.lock().unwrap().clone();
        ms.sort_by(f64::total_cmp);
        format!(
            "reloads under keep-alive load (SIGHUP every {} ms): {sent} sent, {} logged, time to take effect \
             p50 {:.1} ms, max {:.1} ms",
            every.as_millis(),
            ms.len(),
            ms.get(ms.len() / 2).copied().unwrap_or(0.0),
            ms.last().copied().unwrap_or(0.0),
        )
    };

    // 3. nginx with the same mutual TLS, answering 202 without storing.
    if let Some(bin) = &nginx_bin {
        eprintln!("nginx:");
        match Nginx::start(bin, &tmp.path().join("nginx"), &certs) {
            Ok(nginx) => {
                println!(
                    "nginx probe: {}  ({} workers)",
                    bench.probe(nginx.addr),
                    nginx.workers.len()
                );
                for m in modes {
                    let cpu = || nginx.cpu();
                    outcomes.push(bench.run("nginx", nginx.addr, m, &cpu));
                }
                let errs = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
                let n = errs.lines().count();
                if n > 0 {
                    println!(
                        "nginx error.log: {n} lines, first: {}",
                        errs.lines().next().unwrap_or("")
                    );
                }
            }
            Err(e) => println!("nginx failed to start, running kim only: {e}"),
        }
    }

    let rows: Vec<&Outcome> = outcomes.iter().collect();
    print_table(&rows, s.conns);

    let find = |server: &str, mode: Mode| {
        outcomes
            .iter()
            .find(|o| o.server == server && o.mode == mode)
    };
    println!();
    println!("kim / nginx (202s per second):");
    for (mode, goal) in [
        (Mode::KeepAlive, Some(0.15)),
        (Mode::NewFull, Some(0.8)),
        (Mode::NewResumed, None),
    ] {
        let line = match (find("kim", mode), find("nginx", mode)) {
            (Some(k), Some(n)) if n.rate() > 0.0 => {
                let r = k.rate() / n.rate();
                match goal {
                    Some(g) => format!(
                        "{r:.3}×   goal ≥ {g}×: {}",
                        if r >= g { "met" } else { "NOT MET" }
                    ),
                    None => format!("{r:.3}×   (no goal)"),
                }
            }
            _ => "n/a (nginx not run)".into(),
        };
        println!("  {:<26} {line}", mode.label());
    }
    if let (Some(info), Some(warn)) = (
        find("kim", Mode::KeepAlive),
        find("kim log=warn", Mode::KeepAlive),
    ) {
        println!(
            "logging cost, keep-alive: KIM_LOG=info {:.0}/s vs KIM_LOG=warn,kim::daemon=info {:.0}/s \
             ({:+.1}% without per-request lines)",
            info.rate(),
            warn.rate(),
            (warn.rate() / info.rate().max(1e-9) - 1.0) * 100.0
        );
    }
    println!("CPU time over each run, server by thread name (seconds):");
    for o in &outcomes {
        let mut v: Vec<_> = o.server_cpu.iter().filter(|(_, s)| **s > 0.0).collect();
        v.sort_by(|a, b| b.1.total_cmp(a.1));
        let parts: Vec<String> = v.iter().map(|(k, s)| format!("{k} {s:.2}")).collect();
        println!(
            "  {:<14} {:<26} {:.2} s of {:.0} core-s: {}; load client {:.2} s; \
             anything else {:.2} s; stolen by the hypervisor {:.2} s",
            o.server,
            o.mode.label(),
            o.server_cpu_total(),
            o.secs * cores as f64,
            parts.join(", "),
            o.client_cpu,
            (o.machine_busy - o.server_cpu_total() - o.client_cpu).max(0.0),
            o.steal
        );
    }
    println!("{store_line}");
    println!("{kim_log_line}");
    println!("{reload_line}");
}

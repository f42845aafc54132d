//! One kim installation for a part of the campaign: the real binary on a
//! real sled store, a real STARTTLS SMTP server behind a forwarder that can
//! go down, schools whose DSLs get the alerts, a roll that matches the
//! children the load posts, and the steady police load itself. Starts and
//! SIGKILLs kim, timing each start until it is ready.

use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kim::police_client::PoliceClient;

use crate::load::{Load, Shared};
use crate::proxy::Proxy;
use crate::support::smtp::{free_port, mail_config, Received, SmtpServer};
use crate::support::{Env, Options, KIM};
use crate::{promise, Broken, Outcome};

pub const SCHOOLS: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
118765,Maidstone Primary,Ms Dee,dsl@maidstone.example,,01622 111111\n\
118766,Oakwood School,Mr Oak,dsl@oakwood.example,,\n\
118767,Rosewood Academy,Mrs Rose,dsl@rosewood.example,,\n";

/// (given, family, dob, urn) of the pupils the load names.
pub const PUPILS: [(&str, &str, &str, &str); 9] = [
    ("Zebediah", "Quixotic-Marsh", "2013-05-17", "118765"),
    ("Philippa", "Wyndham-Thorne", "2012-02-02", "118766"),
    ("Ottoline", "Barrowclough", "2014-04-04", "118767"),
    ("Peregrine", "Fotheringay", "2015-05-05", "118765"),
    ("Clementine", "Aldergrove", "2016-06-06", "118766"),
    ("Barnaby", "Kittiwake", "2011-07-07", "118767"),
    ("Araminta", "Pocklington", "2013-08-08", "118765"),
    ("Leopold", "Grimsditch", "2012-09-09", "118766"),
    ("Wilhelmina", "Scattergood", "2014-10-10", "118767"),
];

/// The roll: the pupils above, then `filler` more (other names), so two
/// rolls of different sizes both match every child the load posts.
pub fn roll(filler: usize) -> String {
    let mut s = String::from(
        "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n",
    );
    for (i, (g, f, d, u)) in PUPILS.iter().enumerate() {
        s.push_str(&format!("KCC-{i},{g},{f},,{d},QX9 7ZZ,{u}\n"));
    }
    for i in 0..filler {
        // Letters only: a name, not a number.
        let tag: String = format!("{i:06}")
            .bytes()
            .map(|b| (b'a' + (b - b'0')) as char)
            .collect();
        let urn = 118765 + (i % 3);
        let dob = format!("201{}-0{}-1{}", i % 8, 1 + i % 9, i % 9);
        s.push_str(&format!("F-{i},Filler,Pupil{tag},,{dob},,{urn}\n"));
    }
    s
}

/// What the world is built with.
#[derive(Default)]
pub struct Setup {
    /// Appended to the config (a `[delivery]` section…).
    pub extra: String,
    /// The store folder (default: inside the installation).
    pub store: Option<PathBuf>,
    /// A command that execs kim with its arguments (e.g. `env LD_PRELOAD=…`).
    pub wrapper: Vec<String>,
    /// A new SMTP server after each kill, so each message is known to come
    /// from one kim process (a resend after a kill tells itself apart from
    /// a double send by one process, whatever the delays in between).
    pub server_per_run: bool,
}

/// A kim that answered "listening".
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
}

pub struct World {
    pub env: Env,
    /// The SMTP server kim's connections reach now.
    pub smtp: SmtpServer,
    /// With `Setup::server_per_run`: the servers earlier kim processes
    /// (killed since) reached, oldest first. A message's server says which
    /// process sent it.
    pub earlier: Vec<SmtpServer>,
    server_per_run: bool,
    pub proxy: Proxy,
    pub kim: Option<Running>,
    pub client: PoliceClient,
    pub shared: Arc<Shared>,
    pub load: Option<Load>,
    /// When each SIGKILL happened.
    pub kills: Vec<Instant>,
    wrapper: Vec<String>,
    pub log: PathBuf,
}

impl World {
    pub fn new(setup: Setup) -> Self {
        let port = free_port();
        let env = Env::with(Options {
            mail: Some(mail_config(port, std::path::Path::new("certs/ca.crt"))),
            extra: Some(setup.extra.clone()),
            store_path: setup.store.clone(),
            ..Options::default()
        });
        env.import(SCHOOLS, &roll(0));
        let smtp = smtp_server(&env);
        let proxy = Proxy::start(port, smtp.addr);
        // No OpenAPI observer: thousands of answers, checked here instead.
        let client = PoliceClient::new(
            &env.certs.ca_cert,
            Some((&env.certs.client_cert, &env.certs.client_key)),
        )
        .unwrap();
        let log = env.path("kim.log");
        Self {
            env,
            smtp,
            earlier: Vec::new(),
            server_per_run: setup.server_per_run,
            proxy,
            kim: None,
            client,
            shared: Arc::default(),
            load: None,
            kills: Vec::new(),
            wrapper: setup.wrapper,
            log,
        }
    }

    /// Spawns `kim serve` (its stderr appended to the log); returns the
    /// process and the log's length before it.
    pub fn spawn(&self) -> (Child, u64) {
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let offset = logf.metadata().unwrap().len();
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(KIM);
                c
            }
            None => Command::new(KIM),
        };
        let child = cmd
            .arg("--config")
            .arg(&self.env.config)
            .arg("serve")
            .env("KIM_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(logf))
            .spawn()
            .expect("spawn kim");
        (child, offset)
    }

    /// The log written since `offset`.
    pub fn log_since(&self, offset: u64) -> String {
        let mut f = std::fs::File::open(&self.log).unwrap();
        f.seek(SeekFrom::Start(offset)).unwrap();
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        s
    }

    /// Starts kim and waits until it listens: the time from the spawn to
    /// ready, and how many notifications it applied from the journal.
    pub fn start(&mut self) -> Outcome<(Duration, usize)> {
        assert!(self.kim.is_none(), "kim runs already");
        let spawned = Instant::now();
        let (mut child, offset) = self.spawn();
        loop {
            let log = self.log_since(offset);
            if let Some(line) = log
                .lines()
                .find(|l| l.contains("listening for police systems"))
            {
                let addr = field(line, "addr=")
                    .and_then(|a| a.parse().ok())
                    .expect("an address in the listening line");
                let ready = spawned.elapsed();
                let applied = log
                    .lines()
                    .find(|l| l.contains("applied accepted notifications from the journal"))
                    .and_then(|l| field(l, "notifications="))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                *self.shared.addr.lock().unwrap() = Some(addr);
                self.kim = Some(Running { child, addr });
                return Ok((ready, applied));
            }
            if let Some(status) = child.try_wait().unwrap() {
                return Err(Broken {
                    promise: "kim starts again after a fault",
                    detail: format!("exit {status:?} before listening; log:\n{}", tail(&log, 15)),
                });
            }
            if spawned.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Broken {
                    promise: "kim starts again after a fault",
                    detail: format!(
                        "not listening 60 s after the start; log:\n{}",
                        tail(&log, 15)
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self) {
        *self.shared.addr.lock().unwrap() = None;
        if let Some(mut k) = self.kim.take() {
            let _ = k.child.kill();
            self.kills.push(Instant::now());
            let _ = k.child.wait();
            self.next_server();
        }
    }

    /// With `server_per_run`: the next kim process reaches a new server.
    pub fn next_server(&mut self) {
        if self.server_per_run {
            let next = smtp_server(&self.env);
            self.proxy.retarget(next.addr);
            self.earlier.push(std::mem::replace(&mut self.smtp, next));
        }
    }

    /// Every message any server received, with the number of the server
    /// (one per kim process when `server_per_run`).
    pub fn received(&self) -> Vec<(usize, Received)> {
        self.earlier
            .iter()
            .chain([&self.smtp])
            .enumerate()
            .flat_map(|(i, s)| s.received().into_iter().map(move |m| (i, m)))
            .collect()
    }

    /// If kim exited by itself: its exit status (it is then down, and the
    /// next process reaches a new server).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.kim.as_mut()?.child.try_wait().unwrap()?;
        self.kim = None;
        *self.shared.addr.lock().unwrap() = None;
        self.next_server();
        Some(status)
    }

    pub fn addr(&self) -> SocketAddr {
        self.kim.as_ref().expect("kim runs").addr
    }

    /// Starts the police load: `clients` keep-alive connections, each
    /// posting every `every`.
    pub fn start_load(&mut self, clients: usize, every: Duration) {
        self.load = Some(Load::start(
            self.client.clone(),
            self.shared.clone(),
            clients,
            every,
        ));
    }

    pub fn stop_load(&mut self) {
        if let Some(l) = self.load.take() {
            l.stop();
        }
    }

    /// Runs `kim ARGS…` (through the admin socket while kim runs).
    pub fn kim_cli(&self, args: &[&str]) -> (i32, String, String) {
        self.env.kim(args)
    }

    /// The number of pupils on the roll now.
    pub fn roll_pupils(&self) -> Outcome<u64> {
        let (code, out, err) = self.kim_cli(&["roll", "stats", "--json"]);
        promise(
            code == 0,
            "the admin socket answers after a restart",
            || format!("roll stats: exit {code}: {err}"),
        )?;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        Ok(v["pupils"].as_u64().unwrap_or(0))
    }
}

/// A real STARTTLS SMTP server with the installation's dev certificate.
fn smtp_server(env: &Env) -> SmtpServer {
    SmtpServer::start(0, Some((&env.certs.server_cert, &env.certs.server_key)))
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop_load();
        if std::env::var_os("KIM_FAULTS_KEEP").is_some() {
            let keep = std::env::temp_dir().join(format!("kim-faults-kept-{}", std::process::id()));
            let _ = Command::new("cp")
                .arg("-a")
                .arg(self.env.dir.path())
                .arg(&keep)
                .status();
            eprintln!("kept the installation in {}", keep.display());
        }
        if let Some(mut k) = self.kim.take() {
            let _ = k.child.kill();
            let _ = k.child.wait();
        }
    }
}

/// The value after `key` in a log line (up to the next space).
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Percentile `p` (0–100) of `xs` (sorted here).
pub fn percentile(xs: &[Duration], p: usize) -> Duration {
    if xs.is_empty() {
        return Duration::ZERO;
    }
    let mut v = xs.to_vec();
    v.sort();
    v[((v.len() - 1) * p).div_ceil(100)]
}

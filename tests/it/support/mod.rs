//! Test harness: a temporary kim installation (dev PKI + fixtures, master
//! key, config), the real `kim` binary started and stopped, police clients
//! with real certificates, and a grep for personal data.

#![allow(dead_code)]

pub mod openapi;
pub mod smtp;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kim::pki::{write_test_fixtures, DevCerts, TestFixtures};
use kim::police_client::PoliceClient;

pub const KIM: &str = env!("CARGO_BIN_EXE_kim");

/// A kim installation in a temporary folder.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub certs: DevCerts,
    pub fx: TestFixtures,
    pub config: PathBuf,
}

/// The forces besides Kent: the Met and Durham (a SPIFFE identity).
const FORCES: &str = r#"[[forces]]
id = "met"
name = "Metropolitan Police"
client_names = ["relay.met-police.example"]

[[forces]]
id = "durham"
name = "Durham Constabulary"
client_names = ["spiffe://police.example/durham"]
"#;

/// Extra config appended to the generated file.
#[derive(Default, Clone)]
pub struct Options {
    pub crls: Vec<PathBuf>,
    pub limits: Option<String>,
    pub store_path: Option<PathBuf>,
    /// Replaces the whole `[mail]` section (default: file transport into `outbox`).
    pub mail: Option<String>,
    /// Appended at the end (e.g. a `[delivery]` section).
    pub extra: Option<String>,
}

impl Env {
    pub fn new() -> Self {
        Self::with(Options::default())
    }

    pub fn with(opts: Options) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kim-it-")
            .tempdir()
            .unwrap();
        let kim::dev::Install { certs, config, .. } =
            kim::dev::install(dir.path(), &kim::dev::Options::loopback()).unwrap();
        let fx = write_test_fixtures(&dir.path().join("certs")).unwrap();
        let env = Self {
            dir,
            certs,
            fx,
            config,
        };
        env.write_config(&opts);
        env
    }

    pub fn write_config(&self, opts: &Options) {
        let text = kim::dev::config(&kim::dev::Options {
            crls: opts.crls.clone(),
            forces: FORCES.into(),
            store: opts
                .store_path
                .clone()
                .unwrap_or_else(|| self.dir.path().join("store")),
            mail: opts
                .mail
                .clone()
                .map_or(kim::dev::Mail::File, kim::dev::Mail::Section),
            extra: format!(
                "[limits]\n{}\n\n{}",
                opts.limits.clone().unwrap_or_default(),
                opts.extra.clone().unwrap_or_default()
            ),
            ..kim::dev::Options::loopback()
        });
        std::fs::write(&self.config, text).unwrap();
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn client(&self, identity: (&Path, &Path)) -> PoliceClient {
        PoliceClient::new(&self.certs.ca_cert, Some(identity))
            .unwrap()
            .observed(openapi::observer())
    }

    pub fn kent(&self) -> PoliceClient {
        self.client((&self.certs.client_cert, &self.certs.client_key))
    }

    pub fn met(&self) -> PoliceClient {
        self.client((&self.fx.met_client.0, &self.fx.met_client.1))
    }

    /// Runs `kim --config THIS ARGS…`: (exit code, stdout, stderr).
    pub fn kim(&self, args: &[&str]) -> (i32, String, String) {
        self.run(Command::new(KIM), args)
    }

    /// Runs `kim --config THIS ARGS…` under `umask UMASK`.
    pub fn kim_with_umask(&self, umask: &str, args: &[&str]) -> (i32, String, String) {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(KIM);
        self.run(sh, args)
    }

    /// Runs `cmd --config THIS ARGS…`: (exit code, stdout, stderr).
    fn run(&self, mut cmd: Command, args: &[&str]) -> (i32, String, String) {
        let out = cmd
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Imports `schools` and `roll` (CSV text) through the real CLI.
    pub fn import(&self, schools: &str, roll: &str) {
        std::fs::write(self.path("schools.csv"), schools).unwrap();
        std::fs::write(self.path("roll.csv"), roll).unwrap();
        for (verb, file) in [("schools", "schools.csv"), ("roll", "roll.csv")] {
            let f = self.path(file);
            let (code, _, err) = self.kim(&[verb, "import", f.to_str().unwrap()]);
            assert_eq!(code, 0, "{verb} import: {err}");
        }
    }

    /// Starts `kim serve` on this installation.
    pub fn start(&self) -> Kim {
        Kim::start(&self.config, &self.path("kim.log"))
    }

    /// Starts `kim serve` under a wrapper that execs it (e.g.
    /// `["prlimit", "--nofile=1024:1024"]`), so the child's pid is kim's.
    pub fn start_under(&self, wrapper: &[&str]) -> Kim {
        Kim::start_with(wrapper, &self.config, &self.path("kim.log"))
    }
}

/// The real `kim serve` process.
pub struct Kim {
    pub child: Child,
    pub addr: SocketAddr,
    pub metrics: Option<SocketAddr>,
    pub log: PathBuf,
}

fn find_addr(line: &str, after: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(after)? + after.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

impl Kim {
    pub fn start(config: &Path, log: &Path) -> Self {
        Self::start_with(&[], config, log)
    }

    /// `kim serve` under `sh -c 'umask UMASK; exec kim …'`.
    pub fn start_with_umask(config: &Path, log: &Path, umask: &str) -> Self {
        let script = format!("umask {umask}; exec \"$0\" \"$@\"");
        Self::start_with(&["sh", "-c", &script], config, log)
    }

    /// Like `start`, with `wrapper` (a command that execs the rest) in front.
    pub fn start_with(wrapper: &[&str], config: &Path, log: &Path) -> Self {
        Self::start_with_stdin(wrapper, config, log, None)
    }

    /// Like `start_with`, with `stdin` as the wrapper's standard input
    /// (e.g. a listening socket the wrapper moves to fd 3).
    pub fn start_with_stdin(
        wrapper: &[&str],
        config: &Path,
        log: &Path,
        stdin: Option<Stdio>,
    ) -> Self {
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(KIM);
                c
            }
            None => Command::new(KIM),
        };
        if let Some(stdin) = stdin {
            command.stdin(stdin);
        }
        let mut child = command
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env(
                "KIM_LOG",
                std::env::var("KIM_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kim");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut logf = logf;
            let mut sent = false;
            let mut metrics = None;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(logf, "{line}");
                if line.contains("metrics on") {
                    metrics = find_addr(&line, "addr=");
                }
                if !sent && line.contains("listening for police systems") {
                    sent = true;
                    let _ = tx.send((find_addr(&line, "addr="), metrics));
                }
            }
            if !sent {
                let _ = tx.send((None, None));
            }
        });
        let (addr, _) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("kim did not start within 30 s");
        let addr = addr.unwrap_or_else(|| {
            panic!(
                "kim exited before listening; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
        // The metrics line is logged right after the listening line.
        std::thread::sleep(Duration::from_millis(50));
        let metrics = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .rev()
            .find(|l| l.contains("metrics on"))
            .and_then(|l| find_addr(l, "addr="));
        Self {
            child,
            addr,
            metrics,
            log: log.to_owned(),
        }
    }

    /// SIGTERM, then wait (at most `limit`) for the exit status.
    pub fn terminate(mut self, limit: Duration) -> ExitStatus {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("kim did not exit within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to 5 s) for a log line containing `needle`: the log reaches
    /// its file through a reader thread, a moment after kim writes it.
    pub fn wait_for_log(&self, needle: &str) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Kim {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// POSTs `body` as Kent Police, asserts the 202, returns the receipt.
pub fn post_accepted(env: &Env, addr: SocketAddr, body: &[u8]) -> String {
    let a = rt()
        .block_on(
            env.kent()
                .once(addr, hyper::Method::POST, "/v1/notifications", Some(body)),
        )
        .unwrap();
    assert_eq!(a.status, 202, "{}", String::from_utf8_lossy(&a.body));
    a.json()["receipt_id"].as_str().unwrap().to_owned()
}

/// Kent withdraws `receipt` with `reason`; the force's answer must be 200.
pub fn withdraw_ok(env: &Env, addr: SocketAddr, receipt: &str, reason: &str) {
    let body = serde_json::to_vec(&serde_json::json!({ "reason": reason })).unwrap();
    let a = rt()
        .block_on(env.kent().once(
            addr,
            hyper::Method::POST,
            &format!("/v1/notifications/{receipt}/withdraw"),
            Some(&body),
        ))
        .unwrap();
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
}

/// A valid notification body with the given reference and child details.
pub fn notification(
    reference: &str,
    given: &str,
    family: &str,
    dob: &str,
    postcode: &str,
) -> Vec<u8> {
    let occurred = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(8)).to_string();
    serde_json::to_vec(&serde_json::json!({
        "police_reference": reference,
        "incident": {
            "occurred_at": occurred,
            "category": "domestic_abuse",
            "summary_for_school": "Police attended a verbal argument at the home. No injuries."
        },
        "children": [{
            "given_name": given,
            "family_name": family,
            "other_names": ["Zed"],
            "date_of_birth": dob,
            "school_urn": "118765",
            "postcode": postcode,
            "involvement": "present",
            "voice_of_child": "Spoken to by officers."
        }],
        "officer": { "name": "PC 4411 Jones", "phone": "01622 000000", "email": "p.jones@police.example" }
    }))
    .unwrap()
}

pub fn simple(reference: &str) -> Vec<u8> {
    notification(reference, "Amelia", "Khan", "2014-03-09", "ME14 1XX")
}

/// Every file under `dir` whose bytes contain any of `needles`.
pub fn files_containing(dir: &Path, needles: &[&str]) -> Vec<(PathBuf, String)> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                for n in needles {
                    let nb = n.as_bytes();
                    if bytes.windows(nb.len()).any(|w| w.eq_ignore_ascii_case(nb)) {
                        hits.push((p.clone(), (*n).to_owned()));
                    }
                }
            }
        }
    }
    hits
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

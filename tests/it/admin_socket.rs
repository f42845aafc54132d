//! Who answers on the admin socket: a fake daemon planted by another user
//! (in a world-writable folder, or answering as another user) gets nothing
//! from the CLI — no request, no roll file, no export file — and the CLI
//! says so; `kim serve` refuses a socket folder others can write and a
//! socket another user made.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{Env, KIM};

/// A fake kim daemon: listens on argv[1]; with argv[2] == "drop" it binds as
/// root and drops to nobody before listen() (so SO_PEERCRED says nobody);
/// prints one JSON line per event (accept, bytes and descriptors received)
/// and answers any request line with a fake success.
const FAKE_DAEMON: &str = r#"
import json, os, socket, sys
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
if mode == "drop":
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
s.listen(8)
print(json.dumps({"ready": os.getuid()}), flush=True)
s.settimeout(30)
while True:
    try:
        c, _ = s.accept()
    except socket.timeout:
        break
    print(json.dumps({"accept": 1}), flush=True)
    c.settimeout(3)
    while True:
        try:
            data, anc, _, _ = c.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
        except (socket.timeout, OSError):
            break
        fds = sum(len(d) // 4 for (lvl, typ, d) in anc if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS)
        print(json.dumps({"bytes": len(data), "fds": fds}), flush=True)
        if not data:
            break
        if b"\n" in data:
            c.sendall(b'{"code":0,"stdout":"imported 3 pupils (fake)\\n"}\n')
    c.close()
"#;

struct Fake {
    child: Child,
}

impl Fake {
    /// Starts the fake daemon as nobody (`drop` false: the whole process,
    /// via setpriv) or as root that drops to nobody after bind (`drop` true).
    fn start(socket: &Path, drop: bool) -> Self {
        // The system's python (a per-user shim in root's home is out of
        // nobody's reach).
        let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("python3");
        let mut cmd = if drop {
            Command::new(python)
        } else {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", python]);
            c
        };
        let mut child = cmd
            .args(["-c", FAKE_DAEMON])
            .arg(socket)
            .arg(if drop { "drop" } else { "as-is" })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 and setpriv");
        let mut first = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(first.contains("\"ready\": 65534"), "fake daemon: {first:?}");
        Self { child }
    }

    /// Stops it: (connections accepted, bytes received, descriptors received).
    fn stop(mut self) -> (usize, usize, usize) {
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let (mut conns, mut bytes, mut fds) = (0, 0, 0);
        for line in out.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            conns += v["accept"].as_u64().unwrap_or(0) as usize;
            bytes += v["bytes"].as_u64().unwrap_or(0) as usize;
            fds += v["fds"].as_u64().unwrap_or(0) as usize;
        }
        (conns, bytes, fds)
    }
}

const ROLL: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
KCC-1,Zebediah,Quixotic-Marsh,Zeb,2013-05-17,QX9 7ZZ,118765\n";

fn root_only() -> bool {
    if nix::unistd::getuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED: needs root to run a fake daemon as another user");
    false
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// An installation whose admin socket is `socket` (relative to its folder),
/// with a roll file to import; its folder traversable by nobody.
fn env_with_socket(socket: &str) -> Env {
    let env = Env::new();
    chmod(env.dir.path(), 0o755);
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("socket = \"admin.sock\"", &format!("socket = \"{socket}\""));
    std::fs::write(&env.config, text).unwrap();
    std::fs::write(env.path("roll.csv"), ROLL).unwrap();
    env
}

/// What root's `kim roll import` and `kim audit export --out X` did.
struct Attempts {
    import: (i32, String, String),
    export: (i32, String, String),
    export_written: bool,
}

fn attempt(env: &Env) -> Attempts {
    let roll = env.path("roll.csv");
    let import = env.kim(&["roll", "import", roll.to_str().unwrap()]);
    let export = env.path("export.jsonl");
    let export_run = env.kim(&["audit", "export", "--out", export.to_str().unwrap()]);
    Attempts {
        import,
        export: export_run,
        export_written: export.exists(),
    }
}

/// Both refused with `expect` in the message, and X not written.
fn both_refused(a: &Attempts, expect: &str) {
    let (code, out, err) = &a.import;
    assert_ne!(*code, 0, "roll import went through: {out}{err}");
    assert!(err.contains(expect), "{err}");
    assert!(!out.contains("imported"), "{out}");
    let (code, out, err) = &a.export;
    assert_ne!(*code, 0, "audit export went through: {out}{err}");
    assert!(err.contains(expect), "{err}");
    assert!(!a.export_written, "the export file was left behind");
}

#[test]
fn a_fake_daemon_in_a_world_writable_folder_gets_nothing() {
    if !root_only() {
        return;
    }
    let env = env_with_socket("public/admin.sock");
    let public = env.path("public");
    std::fs::create_dir(&public).unwrap();
    chmod(&public, 0o1777);
    let fake = Fake::start(&public.join("admin.sock"), false);
    let attempts = attempt(&env);
    let stats = env.kim(&["roll", "stats"]);
    let (conns, bytes, fds) = fake.stop();
    eprintln!("fake daemon as nobody in a 1777 folder: {conns} connections, {bytes} bytes, {fds} descriptors");
    assert_eq!(
        (bytes, fds),
        (0, 0),
        "the fake daemon got data ({conns} connections)"
    );
    both_refused(&attempts, "can be written by someone other than");
    let (code, _, err) = stats;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("chmod 0750"), "{err}");
}

#[test]
fn a_fake_daemon_answering_as_another_user_gets_nothing() {
    if !root_only() {
        return;
    }
    // The folder is root's and 0755, the socket file root's: only the
    // answering process's credentials (SO_PEERCRED) give it away.
    let env = env_with_socket("admin.sock");
    let fake = Fake::start(&env.path("admin.sock"), true);
    let attempts = attempt(&env);
    let (conns, bytes, fds) = fake.stop();
    eprintln!(
        "fake daemon answering as nobody: {conns} connections, {bytes} bytes, {fds} descriptors"
    );
    assert_eq!((bytes, fds), (0, 0), "the fake daemon got data");
    assert!(conns >= 2, "the CLI connected to ask who answers ({conns})");
    both_refused(&attempts, "not the kim daemon");
}

/// `kim serve` expected to refuse: (exit code, stderr). A daemon that starts
/// instead is killed after 15 s (exit code -1).
pub fn serve_refused(env: &Env) -> (i32, String) {
    let mut child = Command::new(KIM)
        .arg("--config")
        .arg(&env.config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        if started.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    (code, err)
}

#[test]
fn serve_refuses_a_socket_folder_others_can_write_or_a_socket_another_user_made() {
    if !root_only() {
        return;
    }
    let env = env_with_socket("public/admin.sock");
    let public = env.path("public");
    std::fs::create_dir(&public).unwrap();
    for mode in [0o1777, 0o777] {
        chmod(&public, mode);
        let (code, err) = serve_refused(&env);
        assert_eq!(code, 2, "{mode:o}: {err}");
        assert!(
            err.contains("admin socket's folder") && err.contains("chmod 0750"),
            "{err}"
        );
    }
    assert!(
        !env.path("store").exists(),
        "refused before the store was opened"
    );

    // A stale socket another user left in a good folder: not replaced.
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("socket = \"public/admin.sock\"", "socket = \"admin.sock\"");
    std::fs::write(&env.config, &text).unwrap();
    let socket = env.path("admin.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    std::os::unix::fs::chown(&socket, Some(65534), Some(65534)).unwrap();
    let (code, err) = serve_refused(&env);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("kim did not make it") && err.contains("rm "),
        "{err}"
    );
    assert!(socket.exists(), "left for the admin to look at");

    // An unknown daemon_user: a clear configuration error.
    std::fs::write(
        &env.config,
        text.replace(
            "socket = \"admin.sock\"",
            "socket = \"admin.sock\"\ndaemon_user = \"no-such-kim-user\"",
        ),
    )
    .unwrap();
    let (code, err) = serve_refused(&env);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no-such-kim-user"), "{err}");

    // Removed, the normal case works: serve starts, the CLI talks to it.
    std::fs::write(&env.config, &text).unwrap();
    std::fs::remove_file(&socket).unwrap();
    let kim = env.start();
    let (code, out, err) = env.kim(&["roll", "stats"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pupils"), "{out}");
    assert!(kim.terminate(Duration::from_secs(30)).success());
}

//! Process hardening: `kim serve` leaves no core dump behind (not even with
//! `ulimit -c unlimited` and SIGABRT, what the systemd watchdog sends), and
//! the unit forbids cores too.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{rt, simple, Env, KIM};

/// Files in `dir` whose name starts with "core".
fn cores_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("core"))
        })
        .collect()
}

#[test]
fn sigabrt_with_an_unlimited_core_size_writes_no_core() {
    // This check needs the kernel to write cores as plain files in the
    // process's folder (core_pattern "core…"); a pipe to a collector or an
    // absolute path elsewhere would put them out of the test's sight.
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let pattern = pattern.trim();
    if pattern.starts_with('|') || pattern.contains('/') || !pattern.starts_with("core") {
        eprintln!("SKIPPED: core_pattern is {pattern:?}, not a plain file in the working folder");
        return;
    }
    let env = Env::new();
    let cwd = env.path("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -c unlimited && exec \"$0\" --config \"$1\" serve",
        ])
        .arg(KIM)
        .arg(&env.config)
        .current_dir(&cwd)
        .env("KIM_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening for police systems").nth(1) {
                let _ = tx.send(rest.to_owned());
            }
        }
    });
    let rest = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("kim started");
    let addr: std::net::SocketAddr = rest
        .split("addr=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("the listening address");
    // A child's details in the daemon's memory.
    let a = rt()
        .block_on(env.kent().once(
            addr,
            hyper::Method::POST,
            "/v1/notifications",
            Some(&simple("KNT/CORE/1")),
        ))
        .unwrap();
    assert_eq!(a.status, 202);
    let pid = child.id().to_string();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core_line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert!(
        core_line.contains("unlimited"),
        "the shell raised the limit: {core_line}"
    );
    assert!(Command::new("kill")
        .args(["-ABRT", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "kim did not die of SIGABRT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(6), "{status:?}");
    let cores = cores_in(&cwd);
    for c in &cores {
        let _ = std::fs::remove_file(c);
    }
    assert!(
        !status.core_dumped(),
        "the kernel dumped kim's core: {cores:?}"
    );
    assert!(cores.is_empty(), "core files: {cores:?}");
}

#[test]
fn the_unit_forbids_core_files() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/kim.service"))
        .unwrap();
    assert!(
        unit.lines().any(|l| l.trim() == "LimitCORE=0"),
        "systemd/kim.service needs LimitCORE=0"
    );
}

/// `kim check-config` on `env`: (exit code, stderr).
fn check(env: &Env) -> (i32, String) {
    let (code, out, err) = env.kim(&["check-config"]);
    (code, format!("{out}{err}"))
}

fn chmod(p: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn check_config_and_serve_refuse_secret_files_others_can_read_own_or_swap() {
    let env = Env::new();
    assert_eq!(check(&env).0, 0, "{}", check(&env).1);
    let text = std::fs::read_to_string(&env.config).unwrap();

    // The server's TLS key at 0666: refused by check-config and by serve.
    let server_key = env.path("certs/server.key");
    chmod(&server_key, 0o666);
    let (code, err) = check(&env);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("server.key") && err.contains("chmod 0400"),
        "{err}"
    );
    let (code, err) = crate::admin_socket::serve_refused(&env);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("server.key"), "{err}");
    chmod(&server_key, 0o600);

    // The audit signing key at 0644.
    let (code, _, err) = env.kim(&[
        "keys",
        "signing-init",
        "--out",
        env.path("audit.key").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(
        &env.config,
        format!("{text}\n[audit]\nsigning_key_file = \"audit.key\"\n"),
    )
    .unwrap();
    assert_eq!(check(&env).0, 0, "{}", check(&env).1);
    chmod(&env.path("audit.key"), 0o644);
    let (code, err) = check(&env);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("audit.key") && err.contains("chmod 0400"),
        "{err}"
    );
    std::fs::write(&env.config, &text).unwrap();

    // The master key in a folder anyone may write (no sticky bit): whoever
    // can write there can swap the key.
    let keys = env.path("keys");
    std::fs::create_dir(&keys).unwrap();
    std::fs::rename(env.path("master.key"), keys.join("master.key")).unwrap();
    std::fs::write(
        &env.config,
        text.replace(
            "master_key_file = \"master.key\"",
            "master_key_file = \"keys/master.key\"",
        ),
    )
    .unwrap();
    assert_eq!(check(&env).0, 0, "{}", check(&env).1);
    chmod(&keys, 0o777);
    let (code, err) = check(&env);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("keys/master.key") && err.contains("chmod go-w"),
        "{err}"
    );
    chmod(&keys, 0o700);
    std::fs::rename(keys.join("master.key"), env.path("master.key")).unwrap();
    std::fs::write(&env.config, &text).unwrap();

    // The master key owned by another user (root runs the test).
    if nix::unistd::getuid().is_root() {
        std::os::unix::fs::chown(env.path("master.key"), Some(65534), None).unwrap();
        let (code, err) = check(&env);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("master.key") && err.contains("chown"), "{err}");
        // A systemd credential: systemd owns it and its folder; only the
        // mode is checked.
        std::fs::write(
            &env.config,
            text.replace(
                "master_key_file = \"master.key\"",
                "master_key_credential = \"master.key\"",
            ),
        )
        .unwrap();
        let out = Command::new(KIM)
            .args(["check-config", env.config.to_str().unwrap()])
            .env("CREDENTIALS_DIRECTORY", env.dir.path())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&env.config, &text).unwrap();
        std::os::unix::fs::chown(env.path("master.key"), Some(0), None).unwrap();
    } else {
        eprintln!("SKIPPED (ownership part): needs root");
    }

    // A config file others may write: a warning naming it, not a refusal.
    chmod(&env.config, 0o666);
    let (code, err) = check(&env);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning") && err.contains("kim.toml") && err.contains("chmod 0640"),
        "{err}"
    );
    chmod(&env.config, 0o600);
    let (code, err) = check(&env);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
}

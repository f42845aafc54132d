//! Helpers shared by the benchmarks: environment knobs and a description
//! of the machine and revision a figure came from.

#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

pub fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            eprintln!("ignoring {name}={v:?}: not a number");
            default
        }),
        Err(_) => default,
    }
}

/// `i` in base 26 as lowercase letters: distinct names for generated pupils.
pub fn alpha(mut i: u64) -> String {
    let mut s = String::new();
    loop {
        s.push((b'a' + (i % 26) as u8) as char);
        i /= 26;
        if i == 0 {
            return s;
        }
    }
}

pub fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let l = s.lines().find(|l| l.starts_with("MemTotal:"))?.to_owned();
            let kb: u64 = l.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!(", {:.1} GiB RAM", kb as f64 / 1048576.0))
        })
        .unwrap_or_default();
    format!("nproc {cpus}, {model}{mem}")
}

pub fn git_revision() -> String {
    Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "describe",
            "--always",
            "--dirty",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// Bytes allocated on disk, bytes apparent, and files, under `dir`.
pub fn du(dir: &Path) -> (u64, u64, u64) {
    let (mut alloc, mut apparent, mut files) = (0, 0, 0);
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                alloc += m.blocks() * 512;
                apparent += m.len();
                files += 1;
            }
        }
    }
    (alloc, apparent, files)
}

/// A development installation in `dir` for a benchmark over a big store:
/// the store in `dir/store`, alerts into files, the admin socket in `dir`,
/// `extra` appended to the config. Returns the installation, its config
/// (checked as `kim serve` checks it) and the master key.
pub fn install(
    dir: &Path,
    extra: &str,
) -> (
    kim::dev::Install,
    kim::config::Config,
    kim::store::crypto::MasterKey,
) {
    let opts = kim::dev::Options {
        store: dir.join("store"),
        mail: kim::dev::Mail::File,
        admin_socket: Some(dir.join("admin.sock")),
        extra: extra.to_owned(),
        ..kim::dev::Options::loopback()
    };
    let install = kim::dev::install(dir, &opts).unwrap();
    let (cfg, _, master) = kim::cli::check_config::load_checked(&install.config).expect("config");
    (install, cfg, master)
}

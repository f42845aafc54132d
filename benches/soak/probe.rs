//! What the soak reads about the running daemon and the machine, from
//! /proc and the store's folder, and the arithmetic over the samples:
//! percentiles and the least-squares slope.

use std::path::Path;

/// One sample, every `KIM_SOAK_SAMPLE_SECS` (10 s).
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Seconds since the load started.
    pub t: f64,
    /// Resident set size of `kim serve` (VmRSS), KiB.
    pub rss_kib: u64,
    /// Open file descriptors of `kim serve` (entries of /proc/PID/fd).
    pub fds: u64,
    /// Bytes allocated on disk under the store folder (du).
    pub store_bytes: u64,
    /// utime + stime of `kim serve` so far, clock ticks.
    pub cpu_ticks: u64,
    /// CPU of `kim serve` over the last interval, percent of one core.
    pub cpu_pct: f64,
    /// Police POST latency in the last interval: requests, p50, p99, max (ms).
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Notifications accepted (202) so far.
    pub accepted: u64,
    /// Alerts the SMTP server accepted so far.
    pub delivered: u64,
    /// The machine's 1-minute load average.
    pub load1: f64,
}

pub const CSV_HEADER: &str = "t_s,rss_kib,fds,store_bytes,cpu_ticks,cpu_pct,requests,p50_ms,p99_ms,max_ms,accepted,delivered,load1";

impl Sample {
    pub fn csv(&self) -> String {
        format!(
            "{:.1},{},{},{},{},{:.2},{},{:.3},{:.3},{:.3},{},{},{:.2}",
            self.t,
            self.rss_kib,
            self.fds,
            self.store_bytes,
            self.cpu_ticks,
            self.cpu_pct,
            self.requests,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.accepted,
            self.delivered,
            self.load1
        )
    }
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

/// Open file descriptors of `pid`.
pub fn fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// utime + stime of `pid` (all its threads), clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = s[s.rfind(')')? + 1..].split_whitespace().collect();
    // After the comm: state(3) … utime(14) stime(15).
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

pub fn clock_ticks() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// The 1-minute load average.
pub fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Bytes allocated under `dir`.
pub fn store_bytes(dir: &Path) -> u64 {
    crate::common::du(dir).0
}

/// The `p` quantile (0..=1) of `v` in microseconds, as milliseconds
/// (nearest rank); 0 when empty.
pub fn pct_ms(v: &mut [u32], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i] as f64 / 1000.0
}

/// Least squares fit y = a + b·x: (a, b). `None` with fewer than 2 points
/// or no spread in x.
pub fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

//! Build script: names the git commit in `kim --version` (`KIM_GIT_COMMIT`;
//! a packager building from a tarball sets it in the environment; "unknown"
//! when neither says).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=KIM_GIT_COMMIT");
    let commit = std::env::var("KIM_GIT_COMMIT")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=KIM_GIT_COMMIT={commit}");
    // Run again when HEAD moves: HEAD itself (a checkout) and the branch's
    // ref (a commit), where they exist.
    let watch = |p: &str| {
        if Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    };
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watch(&format!("{dir}/HEAD"));
    }
    if let (Some(common), Some(head)) = (
        git(&["rev-parse", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        watch(&format!("{common}/{head}"));
        watch(&format!("{common}/packed-refs"));
    }
}

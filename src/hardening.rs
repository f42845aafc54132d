//! Process hardening that every `kim` subcommand does first, before it reads
//! a key or a child's details: the process is made non-dumpable
//! (`PR_SET_DUMPABLE` 0). The kernel then writes no core file for it — not on
//! a crash, not on the systemd watchdog's SIGABRT, whatever `ulimit -c` says
//! — and processes of the same (non-root) user can neither ptrace it nor read
//! its memory through /proc. The unit file adds `LimitCORE=0`.
//!
//! RLIMIT_CORE is not lowered here: `setrlimit` is in systemd's `@resources`
//! set, which the unit's `SystemCallFilter=` forbids (the call would kill
//! the daemon), and non-dumpable already stops the dump.

/// The process could not be made non-dumpable.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot make the process non-dumpable (PR_SET_DUMPABLE 0), so a core dump could hold keys: {0}"
)]
pub struct HardeningError(#[source] std::io::Error);

/// Makes this process non-dumpable (all its threads: the setting is per
/// process). Idempotent.
pub fn no_core_dumps() -> Result<(), HardeningError> {
    use rustix::process::{set_dumpable_behavior, DumpableBehavior};
    set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| HardeningError(std::io::Error::from(e)))
}

/// Whether the kernel would dump this process's core.
pub fn is_dumpable() -> std::io::Result<bool> {
    use rustix::process::{dumpable_behavior, DumpableBehavior};
    Ok(dumpable_behavior().map_err(std::io::Error::from)? != DumpableBehavior::NotDumpable)
}

#[cfg(test)]
#[path = "hardening_tests.rs"]
mod tests;

//! `kim restore DIR --to PATH` (the daemon stopped): every file checked
//! against the manifest, the copy put together in a folder beside PATH, its
//! audit chain and stored checkpoints verified with the master key and the
//! signing key, the restore recorded in its chain (`restored`: the backup's
//! sequence and time, how far the checkpoint file reaches), and only then
//! renamed into place. Prints the window whose notifications the forces
//! must re-send.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{check_files, read_manifest, Manifest, CHECKPOINT_COPY, STORE_DIR};
use crate::admin::outcome::{store_failure, CliResult, Failure};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::export::{read_checkpoint_file, verify_checkpoints};
use crate::audit::{verify_chain, Actor, AuditEvent, Head};
use crate::config::Config;
use crate::store::backup::RestoreRecord;
use crate::store::crypto::MasterKey;
use crate::store::Store;

/// Restores the backup at `dir` into `to` (see the module's documentation).
pub fn main(config: &Path, dir: &Path, to: &Path) -> CliResult {
    let cfg = Config::load(config).map_err(Failure::usage)?;
    if std::os::unix::net::UnixStream::connect(&cfg.admin.socket).is_ok() {
        return Err(Failure::usage(anyhow::anyhow!(
            "the daemon is running (its admin socket {} answers): stop it before a restore",
            cfg.admin.socket.display()
        )));
    }
    let manifest = read_manifest(dir).map_err(Failure::failed)?;
    check_target(to)?;
    check_files(dir, &manifest).map_err(Failure::failed)?;
    let master =
        MasterKey::load(&cfg.master_key_path().map_err(Failure::usage)?).map_err(Failure::usage)?;
    let parent = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = to
        .file_name()
        .ok_or_else(|| Failure::usage(anyhow::anyhow!("--to {} names no folder", to.display())))?;
    let tmp = parent.join(format!(
        ".{}.restoring.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = assemble(&cfg, dir, &manifest, &tmp, &master);
    let record = match result {
        Ok(r) => r,
        Err(f) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(f);
        }
    };
    // An empty folder at PATH (e.g. made by tmpfiles) gives way to the copy.
    if to.exists() {
        std::fs::remove_dir(to).map_err(|e| {
            Failure::failed(anyhow::anyhow!(
                "cannot replace the empty {}: {e}",
                to.display()
            ))
        })?;
    }
    std::fs::rename(&tmp, to).map_err(|e| {
        Failure::failed(anyhow::anyhow!(
            "cannot move the restored store into {}: {e} (it is complete in {})",
            to.display(),
            tmp.display()
        ))
    })?;
    File::open(&parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| Failure::failed(anyhow::anyhow!("{}: {e}", parent.display())))?;
    install_checkpoint_file(&cfg, dir, &manifest)?;
    let now = jiff::Timestamp::now();
    println!(
        "restored the store from the backup of {} (kim {}, audit sequence {}) into {}",
        manifest.created_at,
        manifest.kim_version,
        manifest.audit_head.seq,
        to.display()
    );
    println!("{}", record.warning());
    println!(
        "the store lacks what came after the backup: ask forces to re-send notifications received between {} and {} \
         (receipts issued in that window are unknown to this store; a re-send is accepted as new)",
        manifest.created_at, now
    );
    if to != cfg.store.path {
        println!(
            "note: [store] path in {} is {}; point it at {} before starting kim",
            config.display(),
            cfg.store.path.display(),
            to.display()
        );
    }
    Ok(())
}

/// PATH must not exist, or be an empty folder.
fn check_target(to: &Path) -> Result<(), Failure> {
    match std::fs::read_dir(to) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Failure::usage(anyhow::anyhow!("{}: {e}", to.display()))),
        Ok(mut rd) => match rd.next() {
            None => Ok(()),
            Some(_) => Err(Failure::usage(anyhow::anyhow!(
                "{} is not empty; kim never restores over a store",
                to.display()
            ))),
        },
    }
}

/// Copies the backup's store into `tmp`, verifies it and records the
/// restore in it.
fn assemble(
    cfg: &Config,
    dir: &Path,
    manifest: &Manifest,
    tmp: &Path,
    master: &MasterKey,
) -> Result<RestoreRecord, Failure> {
    let fail =
        |e: std::io::Error, p: &Path| Failure::failed(anyhow::anyhow!("{}: {e}", p.display()));
    crate::fsmode::own_dir(tmp).map_err(|e| fail(e, tmp))?;
    let prefix = Path::new(STORE_DIR);
    let root = is_root();
    for f in &manifest.files {
        let Ok(rel) = Path::new(&f.path).strip_prefix(prefix) else {
            continue;
        };
        let target = tmp.join(rel);
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p).map_err(|e| fail(e, p))?;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| fail(e, p))?;
        }
        std::fs::copy(dir.join(&f.path), &target).map_err(|e| fail(e, &target))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(f.mode))
            .map_err(|e| fail(e, &target))?;
        File::open(&target)
            .and_then(|t| t.sync_all())
            .map_err(|e| fail(e, &target))?;
        // Run as root, the files go back to the user that owned them (the
        // daemon's), as do their folders.
        if root {
            std::os::unix::fs::chown(&target, Some(f.uid), Some(f.gid))
                .map_err(|e| fail(e, &target))?;
            let mut p = target.parent();
            while let Some(d) = p {
                if !d.starts_with(tmp) {
                    break;
                }
                std::os::unix::fs::chown(d, Some(f.uid), Some(f.gid)).map_err(|e| fail(e, d))?;
                p = d.parent();
            }
        }
    }
    let store = Store::open(tmp, master).map_err(store_failure)?;
    let head = verify_copy(cfg, &store, manifest)?;
    let (file_seq, entries) = checkpoint_file_reach(cfg)?;
    let record = RestoreRecord {
        backup_seq: head.seq,
        backup_time: manifest.created_at,
        checkpoint_file_seq: if file_seq > head.seq { file_seq } else { 0 },
        checkpoint_file_entries: entries,
        restored_at: jiff::Timestamp::now(),
    };
    store
        .record_restore(&Actor::current_user().to_string(), &record)
        .map_err(store_failure)?;
    drop(store);
    Ok(record)
}

/// The copy's chain recomputed from the first event, its head the
/// manifest's, every stored checkpoint valid under the signing key.
fn verify_copy(cfg: &Config, store: &Store, manifest: &Manifest) -> Result<Head, Failure> {
    let broken = |e: &dyn std::fmt::Display| {
        Failure::failed(anyhow::anyhow!(
            "the backup's audit chain does not verify: {e}; nothing was restored"
        ))
    };
    let events: Vec<AuditEvent> = store
        .audit_events()
        .collect::<Result<_, _>>()
        .map_err(|e| broken(&e))?;
    let head = verify_chain(&Head::default(), &events).map_err(|e| broken(&e))?;
    let stored = store.audit_head().map_err(store_failure)?;
    if head != stored || head != manifest.audit_head {
        return Err(broken(&format!(
            "the chain ends at event {}, the store's head says {}, the manifest {}",
            head.seq, stored.seq, manifest.audit_head.seq
        )));
    }
    let trusted = crate::admin::verbs::audit::trusted_keys(cfg, &[])?;
    if !trusted.is_empty() {
        let cps = store.checkpoints().map_err(store_failure)?;
        let hash_at = |seq: u64| {
            events
                .get((seq as usize).wrapping_sub(1))
                .filter(|e| e.seq == seq)
                .map(|e| e.hash.clone())
        };
        verify_checkpoints(&cps, &trusted, &head, hash_at, "store").map_err(|e| broken(&e))?;
    }
    Ok(head)
}

/// The checkpoint file's highest sequence and how many checkpoints it
/// holds (0, 0 without one).
fn checkpoint_file_reach(cfg: &Config) -> Result<(u64, u64), Failure> {
    let Some(path) = &cfg.audit.checkpoint_file else {
        return Ok((0, 0));
    };
    let cps: Vec<Checkpoint> = match std::fs::read(path) {
        Ok(bytes) => read_checkpoint_file(&bytes[..]).map_err(|e| {
            Failure::failed(anyhow::anyhow!(
                "the checkpoint file {}: {e}",
                path.display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Failure::failed(anyhow::anyhow!("{}: {e}", path.display()))),
    };
    Ok((
        cps.iter().map(|c| c.seq).max().unwrap_or(0),
        cps.len() as u64,
    ))
}

/// On a host without a checkpoint file (a cold standby), the backup's copy
/// becomes it; an existing file is never touched.
fn install_checkpoint_file(cfg: &Config, dir: &Path, manifest: &Manifest) -> Result<(), Failure> {
    let Some(path) = &cfg.audit.checkpoint_file else {
        return Ok(());
    };
    let Some(entry) = manifest.files.iter().find(|f| f.path == CHECKPOINT_COPY) else {
        return Ok(());
    };
    if path.exists() {
        return Ok(());
    }
    std::fs::copy(dir.join(&entry.path), path)
        .and_then(|_| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)))
        .map_err(|e| Failure::failed(anyhow::anyhow!("{}: {e}", path.display())))?;
    if is_root() {
        let _ = std::os::unix::fs::chown(path, Some(entry.uid), Some(entry.gid));
    }
    Ok(())
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

//! `kim keys …`: making the master key and the audit signing key.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{CliResult, Failure};
use crate::audit::Actor;
use crate::store::crypto::{write_new_key, CryptoError};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new 32-byte master key (mode 0400); never overwrites.
    Init {
        #[arg(long)]
        out: PathBuf,
    },
    /// Replace the master key: a new key, every sealed value and blind index
    /// re-made under it (the daemon must be stopped). The old key and store
    /// are kept beside the new ones.
    Rotate,
    /// Write a new Ed25519 audit signing key (PKCS#8, mode 0400) and its
    /// public half as OUT.pub (hex); never overwrites.
    SigningInit {
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn init(out: &Path) -> CliResult {
    write_new_key(out).map_err(|e| match e {
        CryptoError::KeyExists(_) => Failure::usage(e),
        other => Failure::failed(other),
    })?;
    println!(
        "wrote a new 32-byte master key to {} (mode 0400). Keep a copy offline: without it the store cannot be read.",
        out.display()
    );
    Ok(())
}

pub fn signing_init(out: &Path) -> CliResult {
    use crate::audit::checkpoint::{public_key_path, write_new_signing_key, SigningKeyError};
    let public = write_new_signing_key(out).map_err(|e| match e {
        SigningKeyError::Exists(_) => Failure::usage(e),
        other => Failure::failed(other),
    })?;
    println!(
        "wrote a new Ed25519 audit signing key to {} (mode 0400) and its public key to {}:\n  {public}\nSet [audit] signing_key_file to it; give the .pub file to whoever checks exports (`kim audit verify --file F --public-key {}`).",
        out.display(),
        public_key_path(out).display(),
        public_key_path(out).display()
    );
    Ok(())
}

/// `kim keys rotate`: a new master key; the whole store re-sealed under it
/// (offline, into a fresh folder, then swapped in). The old key and the old
/// store are kept beside them until the admin deletes them.
pub fn rotate(config: &Path) -> CliResult {
    let cfg = crate::config::Config::load(config).map_err(Failure::usage)?;
    let Some(key_path) = cfg.store.master_key_file.clone() else {
        return Err(Failure::usage(anyhow::anyhow!(
            "{}: rotation needs [store] master_key_file (with a systemd credential, rotate the credential's source file with a config that names it as master_key_file)",
            config.display()
        )));
    };
    let old_key = crate::store::crypto::MasterKey::load(&key_path).map_err(Failure::usage)?;
    let store_path = cfg.store.path.clone();
    let old = match crate::store::Store::open(&store_path, &old_key) {
        Ok(s) => s,
        Err(crate::store::StoreError::Locked(_)) => {
            return Err(Failure::failed(anyhow::anyhow!(
                "the daemon is running: stop it first (rotation rewrites the whole store)"
            )))
        }
        Err(e) => return Err(Failure::failed(e)),
    };
    let stamp = jiff::Timestamp::now().as_second();
    let with_suffix = |p: &Path, suffix: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        std::path::PathBuf::from(s)
    };
    let new_key_path = with_suffix(&key_path, ".new");
    write_new_key(&new_key_path).map_err(|e| match e {
        CryptoError::KeyExists(_) => Failure::usage(anyhow::anyhow!(
            "{} exists (an earlier rotation stopped half way?): move it away first",
            new_key_path.display()
        )),
        other => Failure::failed(other),
    })?;
    let new_key = crate::store::crypto::MasterKey::load(&new_key_path).map_err(Failure::failed)?;
    let staging = with_suffix(&store_path, ".rotating");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(Failure::failed)?;
    }
    let new = crate::store::Store::open(&staging, &new_key).map_err(Failure::failed)?;
    let started = std::time::Instant::now();
    let r = old
        .rotate_into(&new, &Actor::current_user())
        .map_err(Failure::failed)?;
    new.flush_now().map_err(Failure::failed)?;
    drop(new);
    drop(old);
    // Run as root, the new folder and key are root's: give them the owner
    // and modes of the ones they replace, so the daemon's user opens them.
    let fixed = crate::store::ownership::match_tree(&store_path, &staging)
        .and_then(|a| crate::store::ownership::match_file(&key_path, &new_key_path).map(|b| (a, b)))
        .map_err(Failure::failed)?;
    let old_store = with_suffix(&store_path, &format!(".pre-rotation-{stamp}"));
    let old_key_kept = with_suffix(&key_path, &format!(".old-{stamp}"));
    std::fs::rename(&store_path, &old_store).map_err(Failure::failed)?;
    std::fs::rename(&staging, &store_path).map_err(Failure::failed)?;
    std::fs::rename(&key_path, &old_key_kept).map_err(Failure::failed)?;
    std::fs::rename(&new_key_path, &key_path).map_err(Failure::failed)?;
    println!(
        "rotated the master key {:08x} -> {:08x} in {:.1}s: {} notifications, {} pupils, {} schools re-sealed; {} audit events kept (plus key_rotated).",
        r.old_key_id,
        r.new_key_id,
        started.elapsed().as_secs_f64(),
        r.notifications,
        r.pupils,
        r.schools,
        r.audit_events
    );
    if fixed.0.owners + fixed.1.owners > 0 {
        println!(
            "gave {} new file(s) and folder(s) the owner of the store and key they replace",
            fixed.0.owners + fixed.1.owners
        );
    }
    println!(
        "{} now holds the new key. Kept until you delete them: the old key at {} and the old store at {} (it opens only with the old key). Update your offline key copy.",
        key_path.display(),
        old_key_kept.display(),
        old_store.display()
    );
    Ok(())
}

//! `kim check-config`: parse and validate the config, check who may read and
//! change the secret files it names (and warn about a config others may
//! write), then load every file (certificates, CRLs, keys) the way `serve`
//! would, and report when each certificate and CRL expires (an expired one
//! fails the check: exit 1).

use std::path::Path;

use super::{CliResult, Failure};
use crate::config::Config;
use crate::ingest::tls;
use crate::store::crypto::MasterKey;

/// Loads everything `serve` needs before it binds; any problem is a
/// configuration error (exit 2).
pub fn load_checked(path: &Path) -> Result<(Config, tls::TlsMaterial, MasterKey), Failure> {
    load_checked_with(path, None)
}

/// As [`load_checked`], with the master key read from `master_key` when
/// given (instead of the config's file or systemd credential).
pub fn load_checked_with(
    path: &Path,
    master_key: Option<&Path>,
) -> Result<(Config, tls::TlsMaterial, MasterKey), Failure> {
    let cfg = Config::load(path).map_err(Failure::usage)?;
    check_files(&cfg, path, master_key)?;
    let tls = tls::load_all(&cfg)
        .map_err(|e| Failure::usage(anyhow::anyhow!("{}: [server]: {e}", path.display())))?;
    let key_path = match master_key {
        Some(p) => p.to_owned(),
        None => cfg.master_key_path().map_err(Failure::usage)?,
    };
    let master = MasterKey::load(&key_path)
        .map_err(|e| Failure::usage(anyhow::anyhow!("{}: [store]: {e}", path.display())))?;
    if let Some(k) = cfg.signing_key_path().map_err(Failure::usage)? {
        crate::audit::checkpoint::Signer::load(&k)
            .map_err(|e| Failure::usage(anyhow::anyhow!("{}: [audit]: {e}", path.display())))?;
    }
    for k in &cfg.audit.trusted_keys {
        crate::audit::checkpoint::read_public_key(k).map_err(|e| {
            Failure::usage(anyhow::anyhow!(
                "{}: [audit] trusted_keys: {e}",
                path.display()
            ))
        })?;
    }
    crate::deliver::Policy::from_config(&cfg)
        .map_err(|e| Failure::usage(anyhow::anyhow!("{}: [mail]: {e}", path.display())))?;
    Ok((cfg, tls, master))
}

/// The secret files are private to root or the running user, in folders
/// only they can change (systemd credentials exempt from the owner and
/// folder part); a config file others may write is only a warning.
fn check_files(cfg: &Config, path: &Path, master_key: Option<&Path>) -> Result<(), Failure> {
    use crate::perms::{check_secret_file, writable_by_others};
    if let Some(mode) = writable_by_others(path) {
        eprintln!(
            "kim: warning: the config file {} can be written by group or others (mode {mode:04o}): whoever can change it chooses kim's keys and forces; fix: chmod 0640 {}",
            path.display(),
            path.display()
        );
    }
    let refuse = |section: &str, e: crate::perms::PermError| {
        Failure::usage(anyhow::anyhow!("{}: [{section}]: {e}", path.display()))
    };
    check_secret_file("the server TLS key", &cfg.server.key, false)
        .map_err(|e| refuse("server", e))?;
    let (master, credential) = match master_key {
        Some(p) => (p.to_owned(), false),
        None => (
            cfg.master_key_path().map_err(Failure::usage)?,
            cfg.store.master_key_file.is_none(),
        ),
    };
    check_secret_file("the master key", &master, credential).map_err(|e| refuse("store", e))?;
    if let Some(k) = cfg.signing_key_path().map_err(Failure::usage)? {
        let credential = cfg.audit.signing_key_file.is_none();
        check_secret_file("the audit signing key", &k, credential)
            .map_err(|e| refuse("audit", e))?;
    }
    Ok(())
}

pub fn main(path: &Path, master_key: Option<&Path>, store: bool) -> CliResult {
    let (cfg, tls, _) = load_checked_with(path, master_key)?;
    println!(
        "{}: ok ({} force(s), listen {}, store {})",
        path.display(),
        cfg.forces.len(),
        cfg.server.listen,
        cfg.store.path.display()
    );
    if store {
        store_versions(&cfg.store.path)?;
    }
    let expired = expiry_report(&cfg, &tls, jiff::Timestamp::now().as_second());
    if expired.is_empty() {
        return Ok(());
    }
    Err(Failure::failed(anyhow::anyhow!(
        "{}: {}",
        path.display(),
        expired.join("; ")
    )))
}

/// Prints the store's format version and the kim that last wrote it; a
/// store of a newer format than this kim reads is an error (exit 2).
fn store_versions(store: &Path) -> Result<(), Failure> {
    use crate::store::format::{peek, FORMAT_VERSION, KIM_VERSION};
    match peek(store) {
        Ok(None) => println!("  store: none yet (made at the first start)"),
        Ok(Some(v)) => {
            // Opening it as root may have made sled files: keep the owner.
            crate::store::ownership::keep_store_owner(store).map_err(Failure::failed)?;
            let by = v.written_by.as_deref().unwrap_or("(not recorded)");
            println!(
                "  store: format {} (this kim {KIM_VERSION} reads up to {FORMAT_VERSION}), last written by kim {by}",
                v.format
            );
            if v.format > FORMAT_VERSION {
                return Err(crate::admin::outcome::store_failure(
                    crate::store::StoreError::FormatTooNew {
                        found: v.format,
                        supported: FORMAT_VERSION,
                        kim: KIM_VERSION,
                    },
                ));
            }
        }
        Err(crate::store::StoreError::Locked(_)) => {
            println!("  store: in use by the running daemon (its versions are in its start log)")
        }
        Err(e @ crate::store::StoreError::Corrupt(_)) => {
            return Err(crate::admin::outcome::store_failure(e))
        }
        Err(e) => println!("  store: cannot be read here ({e})"),
    }
    Ok(())
}

/// Prints when each certificate and CRL expires; returns what has expired.
fn expiry_report(cfg: &Config, tls: &tls::TlsMaterial, now: i64) -> Vec<String> {
    let when = |t: i64| {
        let date = jiff::Timestamp::from_second(t)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let days = (t - now) / 86_400;
        if t < now {
            format!("{date} (EXPIRED)")
        } else {
            format!("{date} (in {days} days)")
        }
    };
    let mut expired = Vec::new();
    if let Some(t) = tls.server_not_after {
        println!(
            "  server certificate {}: expires {}",
            cfg.server.cert.display(),
            when(t)
        );
        if t < now {
            expired.push(format!(
                "the server certificate {} has expired",
                cfg.server.cert.display()
            ));
        }
    }
    for (i, (subject, t)) in tls.client_cas.iter().enumerate() {
        println!(
            "  police CA {} #{} ({subject}): expires {}",
            cfg.server.client_ca.display(),
            i + 1,
            when(*t)
        );
        if *t < now {
            expired.push(format!(
                "police CA #{} in {} has expired",
                i + 1,
                cfg.server.client_ca.display()
            ));
        }
    }
    for c in &tls.crls {
        match c.next_update {
            Some(t) => println!("  CRL {}: next update {}", c.path.display(), when(t)),
            None => println!("  CRL {}: no next update", c.path.display()),
        }
    }
    expired.extend(tls.expired_crls());
    expired
}

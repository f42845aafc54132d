//! `kim check-config`: parse and validate the config, check who may read and
//! change the secret files it names (and warn about a config others may
//! write), then load every file (certificates, CRLs, keys) the way `serve`
//! would.

use std::path::Path;

use super::{CliResult, Failure};
use crate::config::Config;
use crate::ingest::tls;
use crate::store::crypto::MasterKey;

/// Loads everything `serve` needs before it binds; any problem is a
/// configuration error (exit 2).
pub fn load_checked(path: &Path) -> Result<(Config, tls::TlsMaterial, MasterKey), Failure> {
    let cfg = Config::load(path).map_err(Failure::usage)?;
    check_files(&cfg, path)?;
    let tls = tls::load(&cfg.server)
        .map_err(|e| Failure::usage(anyhow::anyhow!("{}: [server]: {e}", path.display())))?;
    let key_path = cfg.master_key_path().map_err(Failure::usage)?;
    let master = MasterKey::load(&key_path)
        .map_err(|e| Failure::usage(anyhow::anyhow!("{}: [store]: {e}", path.display())))?;
    if let Some(k) = cfg.signing_key_path().map_err(Failure::usage)? {
        crate::audit::checkpoint::Signer::load(&k)
            .map_err(|e| Failure::usage(anyhow::anyhow!("{}: [audit]: {e}", path.display())))?;
    }
    crate::deliver::Policy::from_config(&cfg)
        .map_err(|e| Failure::usage(anyhow::anyhow!("{}: [mail]: {e}", path.display())))?;
    Ok((cfg, tls, master))
}

/// The secret files are private to root or the running user, in folders
/// only they can change (systemd credentials exempt from the owner and
/// folder part); a config file others may write is only a warning.
fn check_files(cfg: &Config, path: &Path) -> Result<(), Failure> {
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
    let master = cfg.master_key_path().map_err(Failure::usage)?;
    let credential = cfg.store.master_key_file.is_none();
    check_secret_file("the master key", &master, credential).map_err(|e| refuse("store", e))?;
    if let Some(k) = cfg.signing_key_path().map_err(Failure::usage)? {
        let credential = cfg.audit.signing_key_file.is_none();
        check_secret_file("the audit signing key", &k, credential)
            .map_err(|e| refuse("audit", e))?;
    }
    Ok(())
}

pub fn main(path: &Path) -> CliResult {
    let (cfg, _, _) = load_checked(path)?;
    println!(
        "{}: ok ({} force(s), listen {}, store {})",
        path.display(),
        cfg.forces.len(),
        cfg.server.listen,
        cfg.store.path.display()
    );
    Ok(())
}

//! `kim check-config`: parse and validate the config, then load every file
//! it names (certificates, CRLs, master key) the way `serve` would.

use std::path::Path;

use super::{CliResult, Failure};
use crate::config::Config;
use crate::ingest::tls;
use crate::store::crypto::MasterKey;

/// Loads everything `serve` needs before it binds; any problem is a
/// configuration error (exit 2).
pub fn load_checked(
    path: &Path,
) -> Result<(Config, std::sync::Arc<rustls::ServerConfig>, MasterKey), Failure> {
    let cfg = Config::load(path).map_err(Failure::usage)?;
    let tls = tls::server_config(&cfg.server)
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

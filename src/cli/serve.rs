//! `kim serve`: load and check the config, set up logging and the runtime,
//! and run the daemon (`crate::daemon`); its outcome becomes the exit code.

use std::path::Path;

use super::{check_config, CliResult, Failure};

pub fn main(config: &Path) -> CliResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kim")
        .build()
        .map_err(Failure::failed)?;
    // First of all: a SIGHUP from now on reloads, it never ends kim.
    let hangups = rt
        .block_on(async { crate::daemon::hangups() })
        .map_err(Failure::failed)?;
    let (cfg, tls_config, master) = check_config::load_checked(config)?;
    // A socket folder others can write is a configuration error (exit 2),
    // found before the store opens.
    crate::admin::server::AdminServer::check_place(&cfg.admin).map_err(Failure::usage)?;
    let _log = super::init_logging(cfg.log.format, "info");
    rt.block_on(crate::daemon::run(config, cfg, tls_config, master, hangups))
        .map_err(|e| {
            if e.is::<crate::admin::server::AdminSocketError>() {
                return Failure::usage(e);
            }
            match e.downcast::<crate::store::StoreError>() {
                Ok(store) => crate::admin::outcome::store_failure(store),
                Err(other) => Failure::failed(other),
            }
        })
}

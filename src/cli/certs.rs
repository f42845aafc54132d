//! `kim certs dev`: development certificates (see certs/README.md); the
//! hidden `kim dev-init`: a whole development installation (`kim::dev`).

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{CliResult, Failure};
use crate::pki::{write_dev_certs, PkiError};

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// A development CA, a server certificate for localhost and one police
    /// client certificate (relay.kent-police.example).
    Dev {
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn dev(out: &Path) -> CliResult {
    let c = write_dev_certs(out).map_err(|e| match e {
        PkiError::Exists(_) => Failure::usage(e),
        other => Failure::failed(other),
    })?;
    println!(
        "development certificates in {} (never use them in production):",
        c.dir.display()
    );
    for (what, p) in [
        ("dev CA", &c.ca_cert),
        ("dev CA key", &c.ca_key),
        ("server certificate (localhost, 127.0.0.1)", &c.server_cert),
        ("server key", &c.server_key),
        ("police CA bundle (client_ca)", &c.police_ca),
        (
            "police client certificate (relay.kent-police.example)",
            &c.client_cert,
        ),
        ("police client key", &c.client_key),
    ] {
        println!("  {:<56} {}", what, p.display());
    }
    Ok(())
}

pub fn dev_init(out: &Path, smtp_ca: Option<std::path::PathBuf>) -> CliResult {
    let opts = crate::dev::Options {
        mail: smtp_ca.map_or(crate::dev::Mail::File, |ca_file| crate::dev::Mail::Smtp {
            ca_file,
        }),
        ..crate::dev::Options::loopback()
    };
    let dev = crate::dev::install(out, &opts).map_err(Failure::failed)?;
    println!("development installation: {}", dev.config.display());
    Ok(())
}

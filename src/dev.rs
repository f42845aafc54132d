//! Development installations, for `kim demo`, the tests, the benches and the
//! Postfix system test — never for production: the dev certificates
//! (`pki::write_dev_certs`), a master key and a config written from one
//! template. `config/dev.toml` is that template with its defaults
//! (`Options::default()`); callers vary only the listen addresses, the
//! store path, the mail section and what they append.

use std::path::{Path, PathBuf};

use crate::pki::{write_dev_certs, DevCerts, PkiError};
use crate::store::crypto::{write_new_key, CryptoError};

/// Errors from writing a development installation.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Key(#[from] CryptoError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How a development mail section sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mail {
    /// `transport = "file"`: `.eml` files in `outbox` beside the config.
    File,
    /// `transport = "smtp"` to `localhost:25` with STARTTLS, trusting `ca_file`.
    Smtp { ca_file: PathBuf },
    /// A whole `[mail]` section as written.
    Section(String),
}

/// What a development config varies; `Default` is `config/dev.toml`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Comment lines at the top (without `# `).
    pub header: Vec<String>,
    /// `[server] listen`.
    pub listen: String,
    /// The folder holding `server.crt`, `server.key` and `police-ca.crt`.
    pub certs: PathBuf,
    /// `[server] crls` (left out when empty).
    pub crls: Vec<PathBuf>,
    /// `[[forces]]` sections after Kent's.
    pub forces: String,
    /// `[store] path`.
    pub store: PathBuf,
    pub mail: Mail,
    /// `[admin] socket` (no `[admin]` section when `None`).
    pub admin_socket: Option<PathBuf>,
    /// `[metrics] listen` (no `[metrics]` section when `None`).
    pub metrics: Option<String>,
    /// Appended at the end (e.g. `[limits]`, `[delivery]`, `[audit]`).
    pub extra: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            header: vec![
                "A development config: `kim certs dev --out config/certs`, `kim keys init".into(),
                "--out config/master.key`, then `cargo run -- --config config/dev.toml serve`."
                    .into(),
            ],
            listen: "127.0.0.1:8443".into(),
            certs: "certs".into(),
            crls: Vec::new(),
            forces: String::new(),
            store: "store".into(),
            mail: Mail::File,
            admin_socket: Some("admin.sock".into()),
            metrics: None,
            extra: String::new(),
        }
    }
}

impl Options {
    /// The defaults with ports the system picks (`127.0.0.1:0`) for both
    /// the police API and the metrics, and no header: what the demo, the
    /// tests and the benches run.
    pub fn loopback() -> Self {
        Self {
            header: Vec::new(),
            listen: "127.0.0.1:0".into(),
            metrics: Some("127.0.0.1:0".into()),
            ..Self::default()
        }
    }
}

/// The config text for `opts`.
pub fn config(opts: &Options) -> String {
    let mut out = String::new();
    for line in &opts.header {
        out.push_str(&format!("# {line}\n"));
    }
    let cert = |f: &str| opts.certs.join(f).display().to_string();
    out.push_str(&format!(
        "[server]\nlisten = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
        opts.listen,
        cert("server.crt"),
        cert("server.key"),
        cert("police-ca.crt"),
    ));
    if !opts.crls.is_empty() {
        let crls: Vec<String> = opts
            .crls
            .iter()
            .map(|p| format!("\"{}\"", p.display()))
            .collect();
        out.push_str(&format!("crls = [{}]\n", crls.join(", ")));
    }
    out.push_str(
        "\n[[forces]]\nid = \"kent\"\nname = \"Kent Police\"\nclient_names = [\"relay.kent-police.example\"]\n",
    );
    if !opts.forces.is_empty() {
        out.push_str(&format!("\n{}\n", opts.forces.trim()));
    }
    out.push_str(&format!(
        "\n[store]\npath = \"{}\"\nmaster_key_file = \"master.key\"\n\n",
        opts.store.display()
    ));
    const MAIL: &str = "[mail]\nfrom = \"Keep in mind <kim@council.example>\"\nadmin_email = \"safeguarding@council.example\"\n";
    let mail = match &opts.mail {
        Mail::File => MAIL.replace("[mail]\n", "[mail]\ntransport = \"file\"\n") + "file_dir = \"outbox\"\n",
        Mail::Smtp { ca_file } => format!(
            "{}\n[mail.smtp]\nhost = \"localhost\"\nport = 25\ntls = \"starttls\"\nca_file = \"{}\"\n",
            MAIL.replace("[mail]\n", "[mail]\ntransport = \"smtp\"\n"),
            ca_file.display()
        ),
        Mail::Section(text) => format!("{}\n", text.trim()),
    };
    out.push_str(&mail);
    if let Some(socket) = &opts.admin_socket {
        out.push_str(&format!("\n[admin]\nsocket = \"{}\"\n", socket.display()));
    }
    if let Some(listen) = &opts.metrics {
        out.push_str(&format!("\n[metrics]\nlisten = \"{listen}\"\n"));
    }
    if !opts.extra.trim().is_empty() {
        out.push_str(&format!("\n{}\n", opts.extra.trim()));
    }
    out
}

/// A development installation in a folder.
#[derive(Debug)]
pub struct Install {
    /// The dev certificates, in `DIR/certs`.
    pub certs: DevCerts,
    /// `DIR/master.key`.
    pub master_key: PathBuf,
    /// `DIR/kim.toml`.
    pub config: PathBuf,
}

/// Writes into `dir` (made if missing) the dev certificates (`certs/`), a
/// new master key (`master.key`) and `kim.toml` from `opts`; paths in
/// `opts` are relative to `dir`. Refuses to overwrite existing ones.
pub fn install(dir: &Path, opts: &Options) -> Result<Install, DevError> {
    std::fs::create_dir_all(dir).map_err(|source| DevError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let certs = write_dev_certs(&dir.join("certs"))?;
    let master_key = dir.join("master.key");
    write_new_key(&master_key)?;
    let config = dir.join("kim.toml");
    std::fs::write(&config, self::config(opts)).map_err(|source| DevError::Write {
        path: config.clone(),
        source,
    })?;
    Ok(Install {
        certs,
        master_key,
        config,
    })
}

#[cfg(test)]
#[path = "dev_tests.rs"]
mod tests;

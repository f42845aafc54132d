//! Where a finished message goes: lettre's async SMTP transport over rustls
//! (STARTTLS or implicit TLS, always required, the relay's certificate
//! verified against the system roots plus an optional extra CA, an optional
//! login, a connection pool), or `.eml` files in a folder for the demo.
//! Everything before this point is the same code path for both.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailConfig, SmtpTls, Transport as TransportKind};

/// A message accepted by the next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub code: u16,
}

/// A message not accepted. `permanent` is a 5xx refusal: retrying will not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{why}")]
pub struct SendError {
    pub code: Option<u16>,
    pub permanent: bool,
    /// The reply or the connection error, for the admin (no message content).
    pub why: String,
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Accepted, SendError>> + Send + 'a>>;

/// Sends one message (the file name hint is the alert id).
pub trait Transport: Send + Sync {
    fn send<'a>(&'a self, id: &'a str, msg: &'a Message) -> SendFuture<'a>;
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mail.smtp: {0}")]
    Smtp(String),
    #[error("mail.file_dir {path}: {source}")]
    FileDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Builds the transport `[mail]` asks for.
pub fn from_config(
    mail: &MailConfig,
    pool_size: usize,
    timeout: Duration,
) -> Result<Box<dyn Transport>, TransportError> {
    match mail.transport {
        TransportKind::File => {
            let dir = mail
                .file_dir
                .clone()
                .ok_or_else(|| TransportError::Smtp("file_dir is not set".into()))?;
            crate::fsmode::create_dir_all(&dir).map_err(|source| TransportError::FileDir {
                path: dir.clone(),
                source,
            })?;
            tracing::warn!(dir = %dir.display(), "mail.transport = \"file\": alerts, with children's details, are written unencrypted into this folder; for development and the demo only");
            Ok(Box::new(FileTransport { dir }))
        }
        TransportKind::Smtp => {
            let smtp = mail
                .smtp
                .as_ref()
                .ok_or_else(|| TransportError::Smtp("[mail.smtp] is missing".into()))?;
            let mut tls = TlsParameters::builder(smtp.host.clone());
            if let Some(ca) = &smtp.ca_file {
                let pem = std::fs::read(ca).map_err(|source| TransportError::Read {
                    path: ca.clone(),
                    source,
                })?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| TransportError::Smtp(format!("ca_file {}: {e}", ca.display())))?;
                tls = tls.add_root_certificate(cert);
            }
            let tls = tls
                .build_rustls()
                .map_err(|e| TransportError::Smtp(e.to_string()))?;
            let tls = match smtp.tls {
                SmtpTls::Starttls => Tls::Required(tls),
                SmtpTls::Implicit => Tls::Wrapper(tls),
            };
            let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                .port(smtp.port)
                .tls(tls)
                .timeout(Some(timeout))
                .pool_config(PoolConfig::new().max_size(pool_size as u32));
            if let (Some(user), Some(pw)) = (&smtp.username, &smtp.password_file) {
                let password =
                    std::fs::read_to_string(pw).map_err(|source| TransportError::Read {
                        path: pw.clone(),
                        source,
                    })?;
                b = b.credentials(Credentials::new(
                    user.clone(),
                    password.trim_end_matches(['\r', '\n']).to_owned(),
                ));
            }
            Ok(Box::new(SmtpTransport { inner: b.build() }))
        }
    }
}

/// lettre over rustls; TLS is required by construction (`Tls::Required` or
/// `Tls::Wrapper`), so a relay without STARTTLS gets nothing.
pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
}

fn code_of(c: lettre::transport::smtp::response::Code) -> u16 {
    c.to_string().parse().unwrap_or(0)
}

impl Transport for SmtpTransport {
    fn send<'a>(&'a self, _id: &'a str, msg: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            match self.inner.send(msg.clone()).await {
                Ok(resp) => Ok(Accepted {
                    code: code_of(resp.code()),
                }),
                Err(e) => Err(SendError {
                    code: e.status().map(code_of),
                    permanent: e.is_permanent(),
                    why: error_chain(&e),
                }),
            }
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    scrub_addresses(&s).chars().take(300).collect()
}

/// A relay's reply may quote the recipient ("<dsl@school>: Recipient address
/// rejected"); the outbox keeps the reply in the clear, so addresses go.
pub fn scrub_addresses(s: &str) -> String {
    s.split(' ')
        .map(|w| if w.contains('@') { "[address]" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `mail.transport = "file"`: one `.eml` file per message, named by alert
/// id, written atomically (a temporary file renamed into place).
pub struct FileTransport {
    dir: PathBuf,
}

impl FileTransport {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

impl Transport for FileTransport {
    fn send<'a>(&'a self, id: &'a str, msg: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            let bytes = msg.formatted();
            let dir = self.dir.clone();
            let name = format!("{id}.eml");
            let res = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                use std::io::Write;
                let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
                tmp.write_all(&bytes)?;
                tmp.as_file().sync_all()?;
                tmp.persist(dir.join(name)).map_err(|e| e.error)?;
                Ok(())
            })
            .await;
            match res {
                Ok(Ok(())) => Ok(Accepted { code: 250 }),
                Ok(Err(e)) => Err(SendError {
                    code: None,
                    permanent: false,
                    why: format!("writing the .eml file: {e}"),
                }),
                Err(e) => Err(SendError {
                    code: None,
                    permanent: false,
                    why: e.to_string(),
                }),
            }
        })
    }
}

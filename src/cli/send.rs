//! `kim send`: the police side in one command, for a force's integrator and
//! for an operator testing a force's certificate. It posts notifications
//! (one per `.json` file, one per line of a `.jsonl`/`.ndjson` file, paced
//! by `--rate`), asks for a status, withdraws, and with `--wait` polls until
//! every child is delivered, in review or failed — over the same mutual-TLS
//! client as the demo and the benchmarks. Each TLS failure a force meets on
//! its first day has its own message (naming the file, or the certificate's
//! subject and SAN) and its own exit code (see [`exit`]).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Subcommand;
use hyper::Method;
use serde_json::{json, Value};

use crate::admin::outcome::{CliResult, Failure};
use crate::config::HumanDuration;
use crate::police_client::{Answer, ClientError, Connection, PoliceClient};

/// `kim send`'s exit codes, besides 0 (every request answered 2xx).
pub mod exit {
    /// kim answered at least one request with a refusal (4xx other than
    /// 403, or 5xx), or `--wait` ran out of time.
    pub const REFUSED: u8 = 1;
    /// A flag, a file or a certificate/key/CA file is not usable.
    pub const USAGE: u8 = 2;
    /// kim's server certificate is not trusted by `--ca` (or not for the
    /// URL's host name).
    pub const SERVER_UNTRUSTED: u8 = 3;
    /// kim refused our client certificate (another CA, expired, unusable).
    pub const CERT_REFUSED: u8 = 4;
    /// kim refused our client certificate as revoked by its CRL.
    pub const REVOKED: u8 = 5;
    /// kim trusts our certificate but its name is listed for no force (403).
    pub const NOT_LISTED: u8 = 6;
    /// No TCP connection to the URL's host and port.
    pub const UNREACHABLE: u8 = 7;
}

/// Where kim is and who we are: the flags every `kim send` verb takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Conn {
    /// kim's police API, e.g. https://kim.example.gov.uk:8443
    #[arg(long, env = "KIM_SEND_URL")]
    pub url: String,
    /// The force's client certificate (PEM).
    #[arg(long, env = "KIM_SEND_CERT")]
    pub cert: PathBuf,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "KIM_SEND_KEY")]
    pub key: PathBuf,
    /// The CA that issued kim's server certificate (PEM).
    #[arg(long, env = "KIM_SEND_CA")]
    pub ca: PathBuf,
    /// One JSON object per line on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SendArgs {
    #[command(flatten)]
    pub conn: Option<Conn>,
    /// Notification files: one notification per .json file, one per line of
    /// a .jsonl or .ndjson file.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// At most this many notifications per second, e.g. 5/s.
    #[arg(long, value_name = "N/s")]
    pub rate: Option<String>,
    /// After posting, poll each receipt until every child is delivered, in
    /// review, failed or withdrawn.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait polls before giving up (exit 1).
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub wait_timeout: String,
    #[command(subcommand)]
    pub command: Option<SendCommand>,
}

#[derive(Debug, Subcommand)]
pub enum SendCommand {
    /// A notification's status, child by child (no personal data).
    Status {
        receipt: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Withdraw a notification sent in error.
    Withdraw {
        receipt: String,
        /// Why (1-500 characters); the schools already told get a short notice.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// What `kim send FILE…` was asked to do.
#[derive(Debug, Clone)]
pub struct Post {
    pub files: Vec<PathBuf>,
    /// At most this many notifications per second (`N/s`, or `N`).
    pub rate: Option<String>,
    pub wait: bool,
    pub wait_timeout: String,
}

/// kim's URL, resolved.
struct Target {
    host: String,
    addr: SocketAddr,
    base: String,
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure {
        code: exit::USAGE,
        error: anyhow::anyhow!(msg.into()),
    }
}

fn fail(code: u8, msg: impl Into<String>) -> Failure {
    Failure {
        code,
        error: anyhow::anyhow!(msg.into()),
    }
}

/// `https://host[:port][/prefix]` (IPv6 in brackets); port 443 by default.
fn target(url: &str) -> Result<Target, Failure> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| usage(format!("--url {url}: kim is reached over https:// only")))?;
    let (authority, base) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/').to_owned()),
        None => (rest, String::new()),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| usage(format!("--url {url}: unclosed [ in the host")))?;
        (h.to_owned(), after.strip_prefix(':').unwrap_or("443"))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p),
            None => (authority.to_owned(), "443"),
        }
    };
    let port: u16 = port
        .parse()
        .map_err(|_| usage(format!("--url {url}: the port is not a number")))?;
    if host.is_empty() {
        return Err(usage(format!("--url {url}: no host")));
    }
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| {
            fail(
                exit::UNREACHABLE,
                format!("--url {url}: cannot resolve {host}: {e}"),
            )
        })?
        .next()
        .ok_or_else(|| {
            fail(
                exit::UNREACHABLE,
                format!("--url {url}: {host} has no address"),
            )
        })?;
    Ok(Target { host, addr, base })
}

/// The certificate's subject and SAN, for messages ("CN=…; SAN DNS:…").
fn describe_cert(path: &Path) -> String {
    let Ok(certs) = crate::ingest::tls::load_certs("client certificate", path) else {
        return format!("{}", path.display());
    };
    let Ok((_, c)) = x509_parser::parse_x509_certificate(certs[0].as_ref()) else {
        return format!("{}", path.display());
    };
    let sans: Vec<String> = crate::ingest::tls::identities(&certs[0])
        .into_iter()
        .map(|i| match i {
            crate::config::forces::Identity::Dns(d) => format!("DNS:{d}"),
            crate::config::forces::Identity::Uri(u) => format!("URI:{u}"),
        })
        .collect();
    let san = if sans.is_empty() {
        "no DNS or URI SAN".to_owned()
    } else {
        format!("SAN {}", sans.join(", "))
    };
    format!("{} (subject {}; {san})", path.display(), c.subject())
}

/// The rustls error somewhere in an error's causes, if any.
fn rustls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                    return Some(r);
                }
            }
        }
        cur = err.source();
    }
    None
}

/// A client error as the force's integrator needs to read it.
fn explain(e: ClientError, conn: &Conn, t: &Target) -> Failure {
    use rustls::{AlertDescription as A, CertificateError as C, Error as R};
    let ours = || describe_cert(&conn.cert);
    if let ClientError::Tls(e) = &e {
        return usage(format!("{e}"));
    }
    if let ClientError::Config(m) = &e {
        return usage(format!(
            "the client certificate {} / key {} / CA {}: {m}",
            conn.cert.display(),
            conn.key.display(),
            conn.ca.display()
        ));
    }
    match rustls_cause(&e) {
        Some(R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. })) => fail(
            exit::SERVER_UNTRUSTED,
            format!(
                "kim's server certificate is not valid for the name {} in --url: ask the council for the name on it",
                t.host
            ),
        ),
        Some(R::InvalidCertificate(c)) => fail(
            exit::SERVER_UNTRUSTED,
            format!(
                "kim's server certificate is not trusted by --ca {} ({c:?}): is this the CA the council gave you?",
                conn.ca.display()
            ),
        ),
        Some(R::AlertReceived(A::CertificateRevoked)) => fail(
            exit::REVOKED,
            format!("kim refused our client certificate as revoked: {}", ours()),
        ),
        Some(R::AlertReceived(A::CertificateExpired)) => fail(
            exit::CERT_REFUSED,
            format!("kim refused our client certificate as expired (or not yet valid): {}", ours()),
        ),
        Some(R::AlertReceived(a @ (A::UnknownCA | A::BadCertificate | A::UnsupportedCertificate | A::CertificateUnknown | A::AccessDenied | A::CertificateRequired | A::HandshakeFailure | A::DecryptError))) => fail(
            exit::CERT_REFUSED,
            format!(
                "kim refused our client certificate ({a:?}): is it issued by the police CA the council trusts? {}",
                ours()
            ),
        ),
        Some(other) => fail(exit::CERT_REFUSED, format!("TLS with kim failed: {other}")),
        None => match &e {
            ClientError::Io(io) => fail(
                exit::UNREACHABLE,
                format!("cannot connect to {} ({}): {io}", conn.url, t.addr),
            ),
            _ => fail(
                exit::REFUSED,
                format!("kim closed the connection: {e} (is our certificate {} accepted?)", ours()),
            ),
        },
    }
}

/// One request's answer, as printed.
fn report(conn: &Conn, what: &str, a: &Answer) {
    let body = a.json();
    if conn.json {
        println!(
            "{}",
            json!({"request": what, "status": a.status, "body": body})
        );
        return;
    }
    match a.status {
        200..=299 => {
            let receipt = body["receipt_id"].as_str().unwrap_or("-");
            let state = body["status"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    body["children"]
                        .as_array()
                        .map(|c| {
                            c.iter()
                                .map(|c| c["state"].as_str().unwrap_or("?").to_owned())
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .unwrap_or_default()
                });
            println!("{what}: {} {receipt} {state}", a.status);
        }
        _ => {
            println!(
                "{what}: {} {}: {}",
                a.status,
                body["title"].as_str().unwrap_or(""),
                body["detail"].as_str().unwrap_or("")
            );
            for e in body["errors"].as_array().into_iter().flatten() {
                println!(
                    "  {} {}",
                    e["pointer"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                );
            }
        }
    }
}

fn not_listed(conn: &Conn) -> Failure {
    fail(
        exit::NOT_LISTED,
        format!(
            "kim trusts our certificate but its name is listed for no force (403): ask the council to add a name of {} to a force's client_names",
            describe_cert(&conn.cert)
        ),
    )
}

/// The notifications in a file: one per `.json` file, one per non-blank
/// line of a `.jsonl`/`.ndjson` file; each labelled `FILE` or `FILE:LINE`.
fn bodies(path: &Path) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    let text =
        std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let lines = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl" | "ndjson")
    );
    if !lines {
        return Ok(vec![(path.display().to_string(), text)]);
    }
    Ok(text
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .map(|(i, l)| (format!("{}:{}", path.display(), i + 1), l.to_vec()))
        .collect())
}

fn parse_rate(s: &str) -> Result<Duration, Failure> {
    let n: f64 = s
        .trim_end_matches("/s")
        .parse()
        .ok()
        .filter(|n: &f64| *n > 0.0 && n.is_finite())
        .ok_or_else(|| usage(format!("--rate {s}: use N/s with N > 0, e.g. 5/s")))?;
    Ok(Duration::from_secs_f64(1.0 / n))
}

fn client(conn: &Conn, t: &Target) -> Result<PoliceClient, Failure> {
    PoliceClient::new(&conn.ca, Some((&conn.cert, &conn.key)))
        .and_then(|c| c.for_server(&t.host))
        .map_err(|e| explain(e, conn, t))
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::failed)
}

/// One request on the connection (reconnecting once if kim closed it).
async fn request(
    c: &PoliceClient,
    slot: &mut Option<Connection>,
    conn: &Conn,
    t: &Target,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
) -> Result<Answer, Failure> {
    for attempt in 0..2 {
        if slot.is_none() {
            *slot = Some(c.connect(t.addr).await.map_err(|e| explain(e, conn, t))?);
        }
        let live = slot.as_mut().expect("connected above");
        match live.send(method.clone(), path, body).await {
            Ok(a) if a.status == 403 => return Err(not_listed(conn)),
            Ok(a) => return Ok(a),
            Err(e) => {
                *slot = None;
                let tls = rustls_cause(&e).is_some();
                if attempt == 1 || tls {
                    return Err(explain(e, conn, t));
                }
            }
        }
    }
    unreachable!("the loop returns on its second attempt")
}

/// The warning a force's integrator must see: what it sends reaches real
/// schools (its force, or this certificate's name, is not in test mode).
fn warn_unless_test(status: &Value) {
    if status["test"] != Value::Bool(true) {
        eprintln!(
            "kim send: warning: this certificate's force is not in test mode at this kim: \
             its notifications go to real schools' safeguarding leads"
        );
    }
}

/// Every child settled: delivered, in review, failed or withdrawn.
fn settled(status: &Value) -> bool {
    status["children"].as_array().is_some_and(|c| {
        c.iter().all(|c| {
            matches!(
                c["state"].as_str(),
                Some("delivered" | "needs_review" | "failed" | "withdrawn")
            )
        })
    })
}

/// `kim send FILE…`.
pub fn post(conn: &Conn, p: &Post) -> CliResult {
    let t = target(&conn.url)?;
    let pace = p.rate.as_deref().map(parse_rate).transpose()?;
    let wait_for = HumanDuration::parse(&p.wait_timeout)
        .map_err(|e| usage(format!("--wait-timeout: {e}")))?
        .0;
    let mut all = Vec::new();
    for f in &p.files {
        all.extend(bodies(f)?);
    }
    if all.is_empty() {
        return Err(usage("no notification in the files given"));
    }
    let c = client(conn, &t)?;
    runtime()?.block_on(async {
        let mut slot = None;
        let mut refused = 0usize;
        let mut receipts = Vec::new();
        let started = Instant::now();
        for (i, (label, body)) in all.iter().enumerate() {
            if let Some(gap) = pace {
                let due = started + gap.mul_f64(i as f64);
                tokio::time::sleep_until(due.into()).await;
            }
            let path = format!("{}/v1/notifications", t.base);
            let a = request(&c, &mut slot, conn, &t, Method::POST, &path, Some(body)).await?;
            report(conn, label, &a);
            match a.json()["receipt_id"].as_str() {
                Some(r) if a.status < 300 => {
                    if receipts.is_empty() {
                        let path = format!("{}/v1/notifications/{r}", t.base);
                        let s = request(&c, &mut slot, conn, &t, Method::GET, &path, None).await?;
                        warn_unless_test(&s.json());
                    }
                    receipts.push(r.to_owned());
                }
                _ => refused += 1,
            }
        }
        if p.wait {
            let deadline = Instant::now() + wait_for;
            for r in &receipts {
                let path = format!("{}/v1/notifications/{r}", t.base);
                loop {
                    let a = request(&c, &mut slot, conn, &t, Method::GET, &path, None).await?;
                    if a.status == 200 && settled(&a.json()) {
                        report(conn, r, &a);
                        break;
                    }
                    if Instant::now() >= deadline {
                        report(conn, r, &a);
                        return Err(fail(
                            exit::REFUSED,
                            format!("--wait: {r} not settled after {}", p.wait_timeout),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        if refused > 0 {
            return Err(fail(
                exit::REFUSED,
                format!("kim refused {refused} of {} notifications", all.len()),
            ));
        }
        Ok(())
    })
}

/// `kim send status RECEIPT`.
pub fn status(conn: &Conn, receipt: &str) -> CliResult {
    let path = format!("/v1/notifications/{receipt}");
    let a = one(conn, Method::GET, &path, None, receipt)?;
    warn_unless_test(&a.json());
    Ok(())
}

/// `kim send withdraw RECEIPT --reason TEXT`.
pub fn withdraw(conn: &Conn, receipt: &str, reason: &str) -> CliResult {
    let body = serde_json::to_vec(&json!({ "reason": reason })).map_err(Failure::failed)?;
    one(
        conn,
        Method::POST,
        &format!("/v1/notifications/{receipt}/withdraw"),
        Some(&body),
        receipt,
    )
    .map(drop)
}

fn one(
    conn: &Conn,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
    label: &str,
) -> Result<Answer, Failure> {
    let t = target(&conn.url)?;
    let c = client(conn, &t)?;
    let path = format!("{}{path}", t.base);
    runtime()?.block_on(async {
        let mut slot = None;
        let a = request(&c, &mut slot, conn, &t, method, &path, body).await?;
        report(conn, label, &a);
        if a.status < 300 {
            Ok(a)
        } else {
            Err(fail(exit::REFUSED, format!("kim answered {}", a.status)))
        }
    })
}

#[cfg(test)]
#[path = "send_tests.rs"]
mod tests;

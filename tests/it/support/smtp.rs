//! A real SMTP server for the tests: mailin-embedded over rustls with the
//! dev certificate. It offers STARTTLS and, like a relay configured with
//! `smtpd_tls_security_level = encrypt`, refuses MAIL before it (530).
//! Scripted replies at the end of DATA give 4xx/5xx answers; a stall makes
//! a send hang (to catch kim in `sending`).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::{response, AuthMechanism, Handler, Response, Server, SslConfig};

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// STARTTLS was in force when it arrived.
    pub tls: bool,
    /// When the server had the whole message (the end of DATA, before any
    /// stall): a resend after a crash arrives after the kill.
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        // Unfold continuation lines first (long headers are folded).
        let head = self.data.split("\r\n\r\n").next()?.replace("\r\n ", " ");
        head.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    }
}

#[derive(Default)]
pub struct Shared {
    pub received: Vec<Received>,
    /// Replies to give to RCPT, in order, before answering 250.
    pub script: VecDeque<(u16, String)>,
    /// Refuse every message to these recipients with this reply.
    pub refuse_to: Vec<(String, u16, String)>,
    /// MAIL commands seen without TLS (should stay 0).
    pub plaintext_mail: u32,
    /// Hold the reply to DATA this long (once).
    pub stall_once: Option<Duration>,
    pub data_ends: u32,
    /// When set, MAIL needs AUTH PLAIN with these credentials first.
    pub require_auth: Option<(String, String)>,
    /// AUTH attempts with wrong credentials.
    pub bad_auth: u32,
}

#[derive(Clone)]
struct H {
    shared: Arc<Mutex<Shared>>,
    require_tls: bool,
    helos: u32,
    authed: bool,
    from: String,
    to: Vec<String>,
    buf: Vec<u8>,
}

impl Handler for H {
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        self.helos += 1;
        response::OK
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        // After STARTTLS the client greets again: two greetings mean TLS.
        if self.require_tls && self.helos < 2 {
            self.shared.lock().unwrap().plaintext_mail += 1;
            return Response::custom(530, "5.7.0 Must issue a STARTTLS command first".into());
        }
        if self.shared.lock().unwrap().require_auth.is_some() && !self.authed {
            return Response::custom(530, "5.7.0 Authentication required".into());
        }
        self.from = from.to_owned();
        self.to.clear();
        self.buf.clear();
        response::OK
    }

    // Refusals come at RCPT: mailin mishandles a non-250 reply to the end
    // of DATA (it reads the client's next command as more data).
    fn rcpt(&mut self, to: &str) -> Response {
        let mut s = self.shared.lock().unwrap();
        if let Some((_, code, text)) = s
            .refuse_to
            .iter()
            .find(|(r, _, _)| to.contains(r.as_str()))
            .cloned()
        {
            return Response::custom(code, text);
        }
        if let Some((code, text)) = s.script.pop_front() {
            return Response::custom(code, text);
        }
        self.to.push(to.to_owned());
        response::OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        let mut s = self.shared.lock().unwrap();
        if s.require_auth
            .as_ref()
            .is_some_and(|(u, p)| u == user && p == password)
        {
            self.authed = true;
            response::AUTH_OK
        } else {
            s.bad_auth += 1;
            response::INVALID_CREDENTIALS
        }
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let at = Instant::now();
        let stall = {
            let mut s = self.shared.lock().unwrap();
            s.data_ends += 1;
            s.stall_once.take()
        };
        if let Some(d) = stall {
            std::thread::sleep(d);
        }
        let mut s = self.shared.lock().unwrap();
        s.received.push(Received {
            from: self.from.clone(),
            to: self.to.clone(),
            data: String::from_utf8_lossy(&self.buf).into_owned(),
            tls: self.helos >= 2,
            at,
        });
        response::OK
    }
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    pub shared: Arc<Mutex<Shared>>,
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpServer {
    /// Starts a server on `port` (0: any) that offers STARTTLS with `cert`
    /// and `key` when given, and requires it.
    pub fn start(port: u16, tls: Option<(&Path, &Path)>) -> Self {
        Self::start_with_login(port, tls, None)
    }

    /// As `start`, and when `login` is given the server offers AUTH PLAIN
    /// (after STARTTLS) and requires those credentials before MAIL.
    pub fn start_with_login(
        port: u16,
        tls: Option<(&Path, &Path)>,
        login: Option<(&str, &str)>,
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let shared = Arc::new(Mutex::new(Shared {
            require_auth: login.map(|(u, p)| (u.to_owned(), p.to_owned())),
            ..Shared::default()
        }));
        let handler = H {
            shared: shared.clone(),
            require_tls: tls.is_some(),
            helos: 0,
            authed: false,
            from: String::new(),
            to: Vec::new(),
            buf: Vec::new(),
        };
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let addr = listener.local_addr().unwrap();
        let ssl = match tls {
            Some((cert, key)) => SslConfig::SelfSigned {
                cert_path: cert.display().to_string(),
                key_path: key.display().to_string(),
            },
            None => SslConfig::None,
        };
        let mut server = Server::new(handler);
        server
            .with_name("mx.test.example")
            .with_ssl(ssl)
            .unwrap()
            .with_num_threads(8)
            .with_tcp_listener(listener);
        if login.is_some() {
            server.with_auth(AuthMechanism::Plain);
        }
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Self { addr, shared }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    /// Waits up to `limit` for at least `n` messages.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let r = self.received();
            if r.len() >= n || start.elapsed() > limit {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The `[mail]` section for kim to use this server on `port`, trusting `ca`.
pub fn mail_config(port: u16, ca: &Path) -> String {
    format!(
        r#"[mail]
transport = "smtp"
from = "Keep in mind <kim@council.example>"
admin_email = "safeguarding@council.example"

[mail.smtp]
host = "localhost"
port = {port}
tls = "starttls"
ca_file = "{}"
"#,
        ca.display()
    )
}

//! The TOML configuration (DESIGN §4b): types, loading, and validation.
//! Unknown keys are errors, relative paths resolve against the config file's
//! folder, and every error names the file and the key at fault.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A problem with the configuration. Each variant names the file; `Invalid`
/// also names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// A duration written as `"90s"`, `"30m"`, `"24h"`, `"7d"` or `"500ms"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{s}` has no unit (use ms, s, m, h or d)"))?;
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a duration like \"90s\", \"30m\", \"24h\""))?;
        let secs = match unit {
            "ms" => return Ok(Self(Duration::from_millis(n))),
            "s" => n,
            "m" => n.saturating_mul(60),
            "h" => n.saturating_mul(3600),
            "d" => n.saturating_mul(86_400),
            _ => return Err(format!("`{s}` has an unknown unit (use ms, s, m, h or d)")),
        };
        Ok(Self(Duration::from_secs(secs)))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    #[serde(default)]
    pub forces: Vec<ForceConfig>,
    pub store: StoreConfig,
    pub mail: MailConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub alert: AlertConfig,
    #[serde(default)]
    pub matching: MatchingConfig,
    #[serde(default)]
    pub retention: Reserved,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// The file this was loaded from (not a key).
    #[serde(skip)]
    pub source: PathBuf,
}

/// A section that DESIGN §4b names but whose keys a later release defines.
/// It may be present and empty; any key in it is an error, so a setting
/// never seems to apply when it does not.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reserved {}

/// `[delivery]`: retries, escalation and the school-day deadline (DESIGN §7).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// An alert not delivered after this also goes to the deputy DSL, and
    /// the admin mailbox is told (without the child's details).
    pub escalate_after: HumanDuration,
    /// Retrying stops after this; the alert is `failed` and the admin told.
    pub give_up_after: HumanDuration,
    /// The first retry waits this long; each further one twice as long.
    pub retry_initial: HumanDuration,
    /// No wait between retries is longer than this.
    pub retry_max: HumanDuration,
    /// One SMTP conversation may take this long before it counts as failed.
    pub send_timeout: HumanDuration,
    /// Alerts sent at the same time (and the SMTP pool's size).
    pub concurrency: usize,
    /// When the school day starts (Europe/London), "HH:MM".
    pub school_day_start: jiff::civil::Time,
    /// Dates (YYYY-MM-DD) on which schools are closed besides weekends
    /// (bank holidays, the local authority's holidays).
    pub closures: Vec<jiff::civil::Date>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            escalate_after: HumanDuration(Duration::from_secs(30 * 60)),
            give_up_after: HumanDuration(Duration::from_secs(24 * 3600)),
            retry_initial: HumanDuration(Duration::from_secs(30)),
            retry_max: HumanDuration(Duration::from_secs(15 * 60)),
            send_timeout: HumanDuration(Duration::from_secs(60)),
            concurrency: 8,
            school_day_start: jiff::civil::time(8, 0, 0, 0),
            closures: Vec::new(),
        }
    }
}

impl DeliveryConfig {
    /// The calendar that decides each alert's deadline.
    pub fn calendar(&self) -> crate::calendar::SchoolCalendar {
        crate::calendar::SchoolCalendar::new(self.school_day_start, &self.closures)
    }
}

/// `[alert]`: what the local data-sharing agreement lets reach the DSL
/// beyond the fixed allow-list (DESIGN §6). Each is on by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// Include the police's `summary_for_school`.
    pub summary_for_school: bool,
    /// Include what the child said (`voice_of_child`).
    pub voice_of_child: bool,
    /// Include the officer's name, phone and email.
    pub officer_contact: bool,
    /// Who the DSL may call besides the officer (e.g. the local authority's
    /// safeguarding front door), printed in the guidance paragraph.
    pub local_contact: Option<String>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            summary_for_school: true,
            voice_of_child: true,
            officer_contact: true,
            local_contact: None,
        }
    }
}

/// `[audit]`: signed checkpoints of the hash chain (DESIGN §9).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The Ed25519 signing key (PKCS#8, `kim keys signing-init`), mode 0400…
    pub signing_key_file: Option<PathBuf>,
    /// …or the name of a systemd credential holding it.
    pub signing_key_credential: Option<String>,
    /// A checkpoint after this many events…
    pub checkpoint_every: u64,
    /// …or after this long, if the chain moved.
    pub checkpoint_interval: HumanDuration,
    /// Every checkpoint is also appended here (one JSON line), to ship off the host.
    pub checkpoint_file: Option<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            signing_key_file: None,
            signing_key_credential: None,
            checkpoint_every: 1000,
            checkpoint_interval: HumanDuration(Duration::from_secs(300)),
            checkpoint_file: None,
        }
    }
}

/// `[matching]`: how children are matched to schools (DESIGN §5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchingConfig {
    /// Jaro-Winkler similarity both names must reach (after normalisation)
    /// when they are not equal. Higher is stricter.
    pub name_threshold: f64,
}

impl Default for MatchingConfig {
    fn default() -> Self {
        Self {
            name_threshold: 0.92,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
    #[serde(default)]
    pub crls: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForceConfig {
    pub id: String,
    pub name: String,
    pub client_names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub path: PathBuf,
    #[serde(default)]
    pub master_key_file: Option<PathBuf>,
    #[serde(default)]
    pub master_key_credential: Option<String>,
    /// sled's page cache in MiB (notifications, outbox, audit; the roll is
    /// in its own files, cached by the OS). RSS grows up to about this much.
    #[serde(default = "default_cache_mb")]
    pub cache_mb: u64,
}

fn default_cache_mb() -> u64 {
    512
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Smtp,
    File,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub transport: Transport,
    pub from: String,
    pub admin_email: String,
    #[serde(default)]
    pub file_dir: Option<PathBuf>,
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Implicit,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    pub tls: SmtpTls,
    #[serde(default, deserialize_with = "empty_path_is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

fn default_smtp_port() -> u16 {
    587
}

fn empty_path_is_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.filter(|s| !s.is_empty()).map(PathBuf::from))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default = "default_admin_socket")]
    pub socket: PathBuf,
    /// OS users admitted on the socket (root and the daemon's user always are).
    #[serde(default)]
    pub users: Vec<String>,
    /// OS groups whose members are admitted.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Give the socket this group and mode 0660 (default: 0600, owner only).
    #[serde(default)]
    pub group: Option<String>,
    /// The OS user `kim serve` runs as (the unit's `User=kim`). The CLI
    /// talks only to a daemon running as root, as itself, or as this user
    /// (default: the owner of `[store] path`); the socket's folder must
    /// belong to one of them.
    #[serde(default)]
    pub daemon_user: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            socket: default_admin_socket(),
            users: Vec::new(),
            groups: Vec::new(),
            group: None,
            daemon_user: None,
        }
    }
}

fn default_admin_socket() -> PathBuf {
    PathBuf::from("/run/kim/admin.sock")
}

/// Bounds on the police listener. Every one has a safe default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most authenticated police connections served at once; further ones
    /// (handshake done) wait for a free slot.
    pub max_connections: usize,
    /// Most TLS handshakes in progress at once; when full, the oldest one
    /// that has sent nothing is closed to admit the newcomer.
    pub max_handshakes: usize,
    /// Most TLS handshakes in progress from one source address (IPv4) or /64
    /// (IPv6); the source's own oldest silent one is closed beyond it.
    pub max_handshakes_per_source: usize,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: HumanDuration,
    /// Time allowed to receive a request's headers.
    pub header_timeout: HumanDuration,
    /// Time allowed to receive a request's body.
    pub body_timeout: HumanDuration,
    /// An idle keep-alive connection is closed after this.
    pub idle_timeout: HumanDuration,
    /// On SIGTERM, in-flight requests get this long to finish.
    pub shutdown_grace: HumanDuration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 512,
            max_handshakes: 256,
            max_handshakes_per_source: 32,
            handshake_timeout: HumanDuration(Duration::from_secs(3)),
            header_timeout: HumanDuration(Duration::from_secs(10)),
            body_timeout: HumanDuration(Duration::from_secs(30)),
            idle_timeout: HumanDuration(Duration::from_secs(120)),
            shutdown_grace: HumanDuration(Duration::from_secs(20)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (journald adds the timestamp).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
}

impl Config {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates `text` as if read from `path` (relative paths
    /// resolve against `path`'s folder).
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        cfg.source = path.to_owned();
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        cfg.resolve_paths(&base);
        cfg.validate()?;
        Ok(cfg)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.server.cert);
        fix(&mut self.server.key);
        fix(&mut self.server.client_ca);
        self.server.crls.iter_mut().for_each(fix);
        fix(&mut self.store.path);
        if let Some(p) = self.store.master_key_file.as_mut() {
            fix(p);
        }
        if let Some(p) = self.mail.file_dir.as_mut() {
            fix(p);
        }
        if let Some(smtp) = self.mail.smtp.as_mut() {
            if let Some(p) = smtp.ca_file.as_mut() {
                fix(p);
            }
            if let Some(p) = smtp.password_file.as_mut() {
                fix(p);
            }
        }
        fix(&mut self.admin.socket);
        if let Some(p) = self.audit.signing_key_file.as_mut() {
            fix(p);
        }
        if let Some(p) = self.audit.checkpoint_file.as_mut() {
            fix(p);
        }
    }

    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.source.clone(),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.forces.is_empty() {
            return Err(self.invalid(
                "forces",
                "at least one [[forces]] table is needed, or no police system can connect",
            ));
        }
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        for (i, f) in self.forces.iter().enumerate() {
            let valid_id = !f.id.is_empty()
                && f.id.len() <= 32
                && f.id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !valid_id {
                return Err(self.invalid(
                    &format!("forces[{i}].id"),
                    "must be 1-32 characters of a-z, 0-9, - and _",
                ));
            }
            if !ids.insert(f.id.as_str()) {
                return Err(self.invalid(&format!("forces[{i}].id"), "is listed twice"));
            }
            if f.client_names.is_empty() {
                return Err(self.invalid(
                    &format!("forces[{i}].client_names"),
                    "must list at least one certificate name",
                ));
            }
            for n in &f.client_names {
                if n.trim().is_empty() {
                    return Err(
                        self.invalid(&format!("forces[{i}].client_names"), "has an empty name")
                    );
                }
                if !names.insert(n.to_ascii_lowercase()) {
                    return Err(self.invalid(
                        &format!("forces[{i}].client_names"),
                        format!("`{n}` is listed for more than one force"),
                    ));
                }
            }
        }
        match (
            &self.store.master_key_file,
            &self.store.master_key_credential,
        ) {
            (None, None) => {
                return Err(self.invalid(
                    "store.master_key_file",
                    "set master_key_file or master_key_credential",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    "store.master_key_credential",
                    "set only one of master_key_file and master_key_credential",
                ))
            }
            (None, Some(name)) if name.is_empty() || name.contains('/') => {
                return Err(self.invalid(
                    "store.master_key_credential",
                    "must be a credential name without '/'",
                ))
            }
            _ => {}
        }
        match self.mail.transport {
            Transport::File if self.mail.file_dir.is_none() => {
                return Err(self.invalid("mail.file_dir", "is required when transport = \"file\""))
            }
            Transport::Smtp if self.mail.smtp.is_none() => {
                return Err(self.invalid("mail.smtp", "is required when transport = \"smtp\""))
            }
            _ => {}
        }
        if let Some(smtp) = &self.mail.smtp {
            if smtp.host.trim().is_empty() {
                return Err(self.invalid("mail.smtp.host", "must not be empty"));
            }
            if smtp.username.is_some() != smtp.password_file.is_some() {
                return Err(self.invalid(
                    "mail.smtp.password_file",
                    "username and password_file go together",
                ));
            }
        }
        // One email rule for the whole of kim (`fields::Email`).
        if crate::fields::Email::parse(&self.mail.admin_email).is_err() {
            return Err(self.invalid("mail.admin_email", "must be an email address"));
        }
        if crate::fields::Mailbox::parse(&self.mail.from).is_err() {
            return Err(self.invalid("mail.from", "must contain an email address"));
        }
        if !(64..=65536).contains(&self.store.cache_mb) {
            return Err(self.invalid("store.cache_mb", "must be between 64 and 65536"));
        }
        if self.audit.signing_key_file.is_some() && self.audit.signing_key_credential.is_some() {
            return Err(self.invalid(
                "audit.signing_key_credential",
                "set only one of signing_key_file and signing_key_credential",
            ));
        }
        if self
            .audit
            .signing_key_credential
            .as_deref()
            .is_some_and(|n| n.is_empty() || n.contains('/'))
        {
            return Err(self.invalid(
                "audit.signing_key_credential",
                "must be a credential name without '/'",
            ));
        }
        if self.audit.checkpoint_every == 0 {
            return Err(self.invalid("audit.checkpoint_every", "must be at least 1"));
        }
        if self.audit.checkpoint_interval.0.is_zero() {
            return Err(self.invalid("audit.checkpoint_interval", "must be more than zero"));
        }
        let d = &self.delivery;
        for (key, v) in [
            ("delivery.escalate_after", d.escalate_after),
            ("delivery.give_up_after", d.give_up_after),
            ("delivery.retry_initial", d.retry_initial),
            ("delivery.retry_max", d.retry_max),
            ("delivery.send_timeout", d.send_timeout),
        ] {
            if v.0.is_zero() {
                return Err(self.invalid(key, "must be more than zero"));
            }
        }
        if d.retry_max.0 < d.retry_initial.0 {
            return Err(self.invalid("delivery.retry_max", "must not be less than retry_initial"));
        }
        if d.concurrency == 0 || d.concurrency > 64 {
            return Err(self.invalid("delivery.concurrency", "must be between 1 and 64"));
        }
        if let Some(c) = &self.alert.local_contact {
            if c.len() > 200 || c.chars().any(char::is_control) {
                return Err(self.invalid(
                    "alert.local_contact",
                    "must be at most 200 characters on one line",
                ));
            }
        }
        let t = self.matching.name_threshold;
        if !(0.8..=1.0).contains(&t) {
            return Err(self.invalid(
                "matching.name_threshold",
                "must be between 0.8 and 1.0 (lower would match different children)",
            ));
        }
        let l = &self.limits;
        if l.max_connections == 0 {
            return Err(self.invalid("limits.max_connections", "must be at least 1"));
        }
        if l.max_handshakes == 0 {
            return Err(self.invalid("limits.max_handshakes", "must be at least 1"));
        }
        if l.max_handshakes_per_source == 0 {
            return Err(self.invalid("limits.max_handshakes_per_source", "must be at least 1"));
        }
        for (key, d) in [
            ("limits.handshake_timeout", l.handshake_timeout),
            ("limits.header_timeout", l.header_timeout),
            ("limits.body_timeout", l.body_timeout),
            ("limits.idle_timeout", l.idle_timeout),
        ] {
            if d.0.is_zero() {
                return Err(self.invalid(key, "must be more than zero"));
            }
        }
        Ok(())
    }

    /// The force whose certificate carries one of `identities` (SAN values),
    /// compared as [`crate::ingest::tls::Identity::matches`] says. A
    /// certificate that names more than one force gets none (logged).
    pub fn force_for<'a>(
        &'a self,
        identities: &[crate::ingest::tls::Identity],
    ) -> Option<&'a ForceConfig> {
        use crate::ingest::tls::{match_force, ForceMatch};
        match match_force(&self.forces, identities) {
            ForceMatch::One(f) => Some(f),
            ForceMatch::None => None,
            ForceMatch::Ambiguous(fs) => {
                let forces: Vec<&str> = fs.iter().map(|f| f.id.as_str()).collect();
                let names: Vec<&str> = fs.iter().map(|f| f.name.as_str()).collect();
                tracing::warn!(
                    ?forces,
                    ?names,
                    "client certificate names more than one force; refused (403)"
                );
                None
            }
        }
    }

    /// Where the master key comes from, resolved (systemd credentials live in
    /// `$CREDENTIALS_DIRECTORY`).
    /// Where the audit signing key comes from, if one is configured.
    pub fn signing_key_path(&self) -> Result<Option<PathBuf>, ConfigError> {
        if let Some(p) = &self.audit.signing_key_file {
            return Ok(Some(p.clone()));
        }
        let Some(name) = self.audit.signing_key_credential.as_deref() else {
            return Ok(None);
        };
        match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(dir) => Ok(Some(PathBuf::from(dir).join(name))),
            None => Err(self.invalid(
                "audit.signing_key_credential",
                "CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=)",
            )),
        }
    }

    pub fn master_key_path(&self) -> Result<PathBuf, ConfigError> {
        if let Some(p) = &self.store.master_key_file {
            return Ok(p.clone());
        }
        let name = self.store.master_key_credential.as_deref().unwrap_or("");
        match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(dir) => Ok(PathBuf::from(dir).join(name)),
            None => Err(self.invalid(
                "store.master_key_credential",
                "CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=)",
            )),
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
pub(crate) mod tests;

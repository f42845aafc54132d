//! The configuration's TOML shape: one struct per table, with the defaults
//! of optional keys. Unknown keys are refused by serde
//! (`deny_unknown_fields`).

use super::*;

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
    pub review: ReviewConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
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
    /// When the morning summary goes to `[mail] admin_email` on school days
    /// (Europe/London), "HH:MM"; empty: no summary.
    pub summary_at: String,
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
            summary_at: "07:15".into(),
        }
    }
}

impl DeliveryConfig {
    /// `summary_at` as a time of day; `None` when empty (no summary) or
    /// not `HH:MM` (refused by validation).
    pub fn summary_time(&self) -> Option<jiff::civil::Time> {
        let s = self.summary_at.trim();
        let (h, m) = s.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        jiff::civil::Time::new(h.parse().ok()?, m.parse().ok()?, 0, 0).ok()
    }

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
    /// Public keys (`.pub` files of `kim keys signing-init`) whose
    /// checkpoints `kim audit verify` also accepts: earlier signing keys.
    pub trusted_keys: Vec<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            signing_key_file: None,
            signing_key_credential: None,
            checkpoint_every: 1000,
            checkpoint_interval: HumanDuration(Duration::from_secs(300)),
            checkpoint_file: None,
            trusted_keys: Vec::new(),
        }
    }
}

/// `[review]`: who is told when children wait for a human, and how often.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// Addresses told of children entering review (empty: `[mail] admin_email`).
    pub notify: Vec<String>,
    /// One notice per this window; `0s`: one notice per child.
    pub digest_every: HumanDuration,
    /// On a waiting child's deadline day, a reminder at this time (UK time,
    /// "HH:MM"); another at the deadline itself.
    pub remind_at: jiff::civil::Time,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            notify: Vec::new(),
            digest_every: HumanDuration(Duration::from_secs(120)),
            remind_at: jiff::civil::time(6, 30, 0, 0),
        }
    }
}

/// `[retention]`: how long a notification's details are kept once nothing
/// more will happen to it (issue 14, DESIGN §8).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// A notification whose every child reached a final state this many
    /// days ago is purged (its details shredded; identifiers stay).
    pub notification_days: u32,
    /// Finished outbox records are deleted this many days after they
    /// finished (default: `notification_days`).
    pub alert_days: Option<u32>,
    /// The daily purge runs at this time (UK time, "HH:MM").
    pub run_at: jiff::civil::Time,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            notification_days: 30,
            alert_days: None,
            run_at: jiff::civil::time(2, 0, 0, 0),
        }
    }
}

impl RetentionConfig {
    pub fn notification_after(&self) -> Duration {
        Duration::from_secs(u64::from(self.notification_days) * 86_400)
    }

    pub fn alert_after(&self) -> Duration {
        Duration::from_secs(u64::from(self.alert_days.unwrap_or(self.notification_days)) * 86_400)
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
    /// How often the CRL files are checked for changes (and re-read when
    /// they changed), without a reload.
    #[serde(default = "default_crl_refresh")]
    pub crl_refresh: HumanDuration,
    /// HTTP(S) CRL distribution points kim fetches itself every
    /// `crl_refresh`; the last good copy of each is kept in the store
    /// folder's `crl/` subfolder and used after a restart.
    #[serde(default)]
    pub crl_urls: Vec<String>,
    /// A CRL whose nextUpdate is this close gets a warning and one notice
    /// a day to `[mail] admin_email`.
    #[serde(default = "default_expiry_warning_crl")]
    pub expiry_warning_crl: HumanDuration,
    /// The same for the server certificate and each police CA (notAfter).
    #[serde(default = "default_expiry_warning_cert")]
    pub expiry_warning_cert: HumanDuration,
}

pub(super) fn default_expiry_warning_crl() -> HumanDuration {
    HumanDuration(Duration::from_secs(48 * 3600))
}

pub(super) fn default_expiry_warning_cert() -> HumanDuration {
    HumanDuration(Duration::from_secs(21 * 86_400))
}

pub(super) fn default_crl_refresh() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForceConfig {
    pub id: String,
    pub name: String,
    pub client_names: Vec<String>,
    /// Test mode for the whole force: everything its notifications cause
    /// is addressed to `[mail] test_recipient` only, marked TEST.
    #[serde(default)]
    pub test: bool,
    /// More certificate names of this force that act in test mode (the
    /// force's `client_names` stay live unless `test = true`).
    #[serde(default)]
    pub test_client_names: Vec<String>,
}

impl ForceConfig {
    /// Whether any of this force's names is in test mode.
    pub fn has_test_mode(&self) -> bool {
        self.test || !self.test_client_names.is_empty()
    }
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

pub(super) fn default_cache_mb() -> u64 {
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
    /// Where everything caused by a force (or name) in test mode goes,
    /// instead of schools and admins. Required when any is in test mode.
    #[serde(default)]
    pub test_recipient: Option<String>,
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

pub(super) fn default_smtp_port() -> u16 {
    587
}

pub(super) fn empty_path_is_none<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<PathBuf>, D::Error> {
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

pub(super) fn default_admin_socket() -> PathBuf {
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
            max_handshakes: 512,
            max_handshakes_per_source: 128,
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

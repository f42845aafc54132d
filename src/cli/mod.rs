//! The command line (DESIGN §4c): clap definitions, logging set-up, and the
//! mapping of outcomes to exit codes (0 success, 1 a check failed or the
//! operation failed, 2 usage or configuration error).

pub mod alerts;
pub mod backup;
pub mod certs;
pub mod check_config;
pub mod demo;
pub mod journal;
pub mod keys;
pub mod retention;
pub mod send;
pub mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use crate::admin::outcome::{describe, CliResult, Failure};
use crate::admin::Request;
pub use certs::CertsCommand;
pub use keys::KeysCommand;
use send::{SendArgs, SendCommand};

/// `kim --version`: the package version and the git commit it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("KIM_GIT_COMMIT"), ")");

/// kim, the keep-in-mind relay.
#[derive(Debug, Parser)]
#[command(name = "kim", version = VERSION, about, long_about = None)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "KIM_CONFIG",
        default_value = "/etc/kim/kim.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: the police HTTPS listener and the stages behind it.
    #[command(
        long_about = "Run the daemon: the police HTTPS listener and the stages behind it.\n\n\
SIGTERM or SIGINT: stop accepting, drain in-flight requests, flush, exit 0.\n\
SIGHUP (systemctl reload kim): re-read the config and every file it names (server certificate and key, \
client_ca, crls) and apply it without dropping a connection; a bad file or a key that cannot change \
live ([server] listen, [store], the master key, ...) refuses the whole reload and the old config stays. \
SIGHUP never stops kim. CRL files are also re-read when they change on disk, every [server] crl_refresh."
    )]
    Serve,
    /// Validate the configuration (and the files it names) without starting.
    #[command(
        long_about = "Validate the configuration and every file it names (modes and owners of secrets, \
certificates, keys, CRLs) the way serve and a reload do (a reload also refuses keys that cannot change \
live), and print when each certificate and CRL expires. Exit 0 if all is well, 1 if a certificate or CRL has expired, 2 on a configuration error."
    )]
    CheckConfig {
        /// The file to check (defaults to --config).
        file: Option<PathBuf>,
        /// Read the master key from FILE instead of the config's master_key_file or
        /// master_key_credential (e.g. to check a config that uses a systemd credential
        /// outside systemd).
        #[arg(long, value_name = "FILE")]
        master_key: Option<PathBuf>,
        /// Also print the store's format version and the kim version that
        /// last wrote it (opens the store when the daemon is stopped; a
        /// store of a newer format than this kim reads: exit 2).
        #[arg(long)]
        store: bool,
    },
    /// Key management: the master key and the audit signing key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Certificates for development and tests.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Everything end to end in a temporary folder: dev certificates, a key,
    /// the daemon, sample notifications from a police client over mTLS.
    Demo {
        /// Keep the demo folder afterwards instead of deleting it.
        #[arg(long)]
        keep: bool,
    },
    /// A development installation in OUT: dev certificates, a master key
    /// and kim.toml from the `kim::dev` template (for the system tests).
    #[command(hide = true)]
    DevInit {
        #[arg(long)]
        out: PathBuf,
        /// Mail over SMTP to localhost:25 with STARTTLS, trusting this CA
        /// (default: .eml files in OUT/outbox).
        #[arg(long)]
        smtp_ca: Option<PathBuf>,
    },
    /// The school directory (urn,name,dsl_name,dsl_email,deputy_email,phone).
    #[command(subcommand)]
    Schools(SchoolsCommand),
    /// The roll of children (pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn).
    #[command(subcommand)]
    Roll(RollCommand),
    /// Children the matching stage sent to a human.
    #[command(subcommand)]
    Review(ReviewCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The accept journal (notifications acknowledged, not yet in the store).
    #[command(subcommand)]
    Journal(JournalCommand),
    /// The police side in one command: post notifications to a kim over
    /// mutual TLS with a force's certificate, follow their status, withdraw.
    ///
    /// `kim send --url URL --cert CRT --key KEY --ca CA FILE…` posts each
    /// `.json` file (or each line of a `.jsonl`/`.ndjson` file) and prints
    /// the status code and receipt; `--wait` then polls until every child is
    /// delivered, in review or failed. Exit codes: 0 every answer 2xx, 1 kim
    /// refused one (or --wait ran out), 2 a flag or file is not usable,
    /// 3 kim's server certificate is not trusted by --ca, 4 kim refused our
    /// certificate, 5 our certificate is revoked, 6 our certificate is listed
    /// for no force (403), 7 no connection.
    Send(Box<SendArgs>),
    /// The delivery queue: list, show, retry and flush alerts (like postqueue).
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// Retention: purge (and shred) what has been kept long enough.
    #[command(subcommand)]
    Retention(retention::RetentionCommand),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff) to stdout: `kim man > kim.1`.
    Man,
    /// A notification's state; --reveal shows the children's details (audited).
    Status {
        receipt: String,
        /// Show the children's names and dates of birth (recorded in the audit).
        #[arg(long)]
        reveal: bool,
        #[arg(long)]
        json: bool,
    },
    /// What kim did over a period: figures for the safeguarding partnership.
    #[command(
        long_about = "What kim did over a period, for the safeguarding partnership: \
notifications and children received (per force, per day), children matched automatically or after \
review (per admin), review reasons, outcomes (delivered, dismissed, withdrawn, failed, still waiting), \
deadline met/missed, receipt-to-delivery time (p50, p95, max), per school (URN and name) children \
notified, alerts delivered and deadline misses, escalations and withdrawals; the headline (children \
kept in mind, schools told, share before the school day), outcomes per day, a receipt-to-delivery \
histogram against the deadline, each deadline miss's cause (arrived too late, kim down, waited in \
review, relay refused or unreachable, other) and review entry-to-decision times.\n\n\
--html FILE writes the same figures as one self-contained HTML page (inline SVG charts; no script, \
font, image or link) that prints on A4 and reads on a phone; FILE must not exist.\n\n\
The cohort is the notifications received in the period (UK dates, both ends included), followed \
through every later event. The audit chain is verified first: if it is broken the report is refused \
(exit 1) naming the first bad event. Figures come from the audit events and the school directory \
only (no sealed payload is opened), so no output holds personal data. Runs through the daemon \
when it is up, on the store otherwise. Exit 2 for a bad date or force."
    )]
    Report {
        /// First day (YYYY-MM-DD, UK date; default: the first day of last full month).
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// Last day, included (YYYY-MM-DD, UK date; default: today with --from,
        /// else the last day of last full month).
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// Only notifications from this force (its id in the config).
        #[arg(long, value_name = "ID")]
        force: Option<String>,
        /// One JSON document.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// CSV rows: figure,key,value.
        #[arg(long)]
        csv: bool,
        /// Also write the report as one self-contained HTML page (charts,
        /// per-school table; no script or external reference; prints on A4,
        /// reads on a phone) to FILE, created new (never overwritten); the
        /// headline is printed unless --json or --csv is given.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Copy the store into DIR at a consistent point, with a manifest.
    #[command(long_about = backup::BACKUP_ABOUT)]
    Backup(backup::BackupArgs),
    /// Put a backup in place as a store (daemon stopped), checked first.
    #[command(long_about = backup::RESTORE_ABOUT)]
    Restore(backup::RestoreArgs),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain and check every signed checkpoint (stored
    /// and in `[audit] checkpoint_file`); exit 1 naming the first bad event.
    /// With --file, check an export instead (no config or store needed).
    Verify {
        /// An export made by `kim audit export`.
        #[arg(long, requires = "public_key")]
        file: Option<PathBuf>,
        /// A signing key's public half (the `.pub` file of `kim keys
        /// signing-init`). Give it more than once to trust the keys of
        /// earlier years: a checkpoint signed by any of them verifies, and
        /// a key change must be linked (the new key's first checkpoint names
        /// the old key's last). Without --file, trusted besides the
        /// configured signing key and `[audit] trusted_keys`.
        #[arg(long)]
        public_key: Vec<PathBuf>,
    },
    /// Write every event and checkpoint as JSON lines (never overwrites).
    Export {
        #[arg(long)]
        out: PathBuf,
    },
    /// List audit events (identifiers only).
    List {
        /// Only events newer than this, e.g. 24h, 30m, 7d.
        #[arg(long)]
        since: Option<String>,
        /// Only events about this receipt.
        #[arg(long)]
        receipt: Option<String>,
        /// Only events about this school URN.
        #[arg(long)]
        school: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// With the daemon stopped: apply every journaled notification that
    /// still opens, keep damaged segments in journal/damaged/ (never
    /// deleted), audit `journal_damaged` and tell the admin mailbox which
    /// references each force must re-send. Needed when `kim serve` refuses
    /// to start because the journal is damaged (exit 2).
    Salvage,
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// The children waiting for a decision (identifiers and reasons only;
    /// --reveal adds each child's details, recorded in the audit).
    ///
    /// The longest waiting first, each with how long it has waited and its
    /// deadline (08:00 UK time on the next school day after receipt, as an
    /// alert would have; PASSED once it has gone). --json adds `deadline`
    /// and `age_seconds` to each item.
    List {
        #[arg(long)]
        json: bool,
        /// Show each child's names, date of birth, postcode and the police's
        /// school hint, to decide (an `admin_access` audit event).
        #[arg(long)]
        reveal: bool,
    },
    /// Decide the school of child INDEX of RECEIPT: by the school's URN, or
    /// with --pupil by one of the candidate pupils `kim review show` lists
    /// (the child goes to that pupil's school; the pupil id is audited).
    Assign {
        receipt: String,
        index: u32,
        /// The school's URN (or use --pupil).
        #[arg(required_unless_present = "pupil", conflicts_with = "pupil")]
        urn: Option<String>,
        /// A candidate pupil's id from `kim review show` (instead of URN).
        #[arg(long)]
        pupil: Option<String>,
    },
    /// The police's details of child INDEX of RECEIPT beside each candidate
    /// pupil kim weighed or found as a near miss (audited `admin_access`).
    #[command(long_about = "Show the police's details of child INDEX of RECEIPT \
(names, date of birth, postcode, school hint) beside each candidate pupil the \
matching stage kept for it: the pupils it weighed and the near misses it must \
never auto-match (same names with a date of birth a day/month swap, one day, \
one month, one year or one digit away; same date of birth with a name just \
under the threshold). Per candidate: pupil id, names, date of birth, school \
(URN and name), postcode, and how each field compares: name_score, dob \
(same, day_month_swapped, one_day, one_month, one_year, one_digit, differs), \
postcode (same, differs, unknown), hint (agrees, conflicts, none); and the \
reason kim did not decide. Recorded in the audit as admin_access.")]
    Show {
        receipt: String,
        index: u32,
        #[arg(long)]
        json: bool,
    },
    /// Decide that kim will not notify a school for this child.
    Dismiss {
        receipt: String,
        index: u32,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SchoolsCommand {
    /// Replace the school directory with a CSV file (atomic: any bad row rejects it all).
    Import { file: PathBuf },
    /// List the school directory.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RollCommand {
    /// Replace the roll with a CSV file (atomic: any bad row rejects it all).
    Import { file: PathBuf },
    /// Pupil counts per school (no personal data).
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Search the roll by family name (audited `admin_access`, at most 50 rows).
    #[command(long_about = "Search the sealed roll through its family-name blind \
index (never by decrypting the whole roll): pupils whose normalised family \
name is NAME (with --dob, also family names similar within \
[matching] name_threshold), whose given or known-as name, with --given, \
agrees within that threshold (among names with the same first letter), born \
on --dob if given. At most 50 rows. Recorded in the audit as admin_access \
(counts only). A roll imported by an older kim has no family-name index: \
re-import it.")]
    Find {
        /// The family name to look for.
        #[arg(long)]
        family: String,
        /// A given or known-as name.
        #[arg(long)]
        given: Option<String>,
        /// A date of birth, YYYY-MM-DD.
        #[arg(long)]
        dob: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// Sets up tracing to stderr: text (journald adds timestamps) or JSON lines.
/// Lines are written by a logging thread (never dropped: a full queue makes
/// the caller wait), so request handlers do not each pay a write to the
/// journal's pipe. Keep the returned guard alive until exit: dropping it
/// writes what is queued.
#[must_use = "dropping the guard stops the logging thread"]
pub fn init_logging(
    format: crate::config::LogFormat,
    default_filter: &str,
) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("KIM_LOG")
        .unwrap_or_else(|_| EnvFilter::new(default_filter))
        // lettre logs whole messages (a child's details) at debug level:
        // never below info, whatever KIM_LOG asks for.
        .add_directive("lettre=info".parse().expect("a valid directive"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("kim-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false);
    let _ = match format {
        crate::config::LogFormat::Text => builder.try_init(),
        crate::config::LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    guard
}

/// Runs an admin verb through the daemon's socket, or on the store when no
/// daemon runs. `build` gets a function that makes paths absolute (the
/// daemon does not share this shell's working directory).
fn admin(
    config: &std::path::Path,
    build: impl FnOnce(&dyn Fn(&std::path::Path) -> PathBuf) -> Request,
) -> CliResult {
    let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    crate::admin::client::run(config, build(&absolute))
}

/// The manual page: kim(1) with every subcommand's usage and options.
pub fn man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let cmd = <Cli as clap::CommandFactory>::command();
    clap_mangen::Man::new(cmd.clone()).render(out)?;
    // One section per subcommand (and sub-subcommand), as clap_mangen
    // renders only the top level.
    fn walk(
        cmd: &clap::Command,
        prefix: &str,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("{prefix} {}", sub.get_name());
            writeln!(out, ".SH \"{}\"", name.trim().to_uppercase())?;
            let mut sub = sub.clone().bin_name(name.trim().to_owned());
            let help = sub.render_long_help().to_string();
            for line in help.lines() {
                let line = line.replace('\\', "\\\\");
                let line = if line.starts_with('.') || line.starts_with('\'') {
                    format!("\\&{line}")
                } else {
                    line
                };
                writeln!(out, "{line}")?;
                writeln!(out, ".br")?;
            }
            walk(&sub, &name, out)?;
        }
        Ok(())
    }
    walk(&cmd, "kim", out)
}

pub fn main() -> ExitCode {
    // Before anything reads a key or a child's details: no core dumps.
    if let Err(e) = crate::hardening::no_core_dumps() {
        eprintln!("kim: {e}");
        return ExitCode::from(1);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve => serve::main(&cli.config),
        Command::CheckConfig {
            file,
            master_key,
            store,
        } => check_config::main(
            file.as_deref().unwrap_or(&cli.config),
            master_key.as_deref(),
            store,
        ),
        Command::Keys(KeysCommand::Init { out }) => keys::init(&out),
        Command::Keys(KeysCommand::SigningInit { out }) => keys::signing_init(&out),
        Command::Keys(KeysCommand::Rotate) => keys::rotate(&cli.config),
        Command::Certs(CertsCommand::Dev { out }) => certs::dev(&out),
        Command::Journal(JournalCommand::Salvage) => journal::salvage(&cli.config),
        Command::Demo { keep } => demo::main(keep),
        Command::Alerts(cmd) => alerts::run(&cli.config, cmd),
        Command::Retention(cmd) => retention::run(&cli.config, cmd),
        Command::DevInit { out, smtp_ca } => certs::dev_init(&out, smtp_ca),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "kim", &mut std::io::stdout());
            Ok(())
        }
        Command::Send(args) => match (args.command, args.conn) {
            (Some(SendCommand::Status { receipt, conn }), _) => send::status(&conn, &receipt),
            (
                Some(SendCommand::Withdraw {
                    receipt,
                    reason,
                    conn,
                }),
                _,
            ) => send::withdraw(&conn, &receipt, &reason),
            (None, Some(conn)) => send::post(
                &conn,
                &send::Post {
                    files: args.files,
                    rate: args.rate,
                    wait: args.wait,
                    wait_timeout: args.wait_timeout,
                },
            ),
            (None, None) => Err(Failure::usage(anyhow::anyhow!(
                "kim send needs --url, --cert, --key and --ca"
            ))),
        },
        Command::Man => {
            man(&mut std::io::stdout()).map_err(|e| Failure::failed(anyhow::Error::from(e)))
        }
        Command::Schools(SchoolsCommand::Import { file }) => {
            admin(&cli.config, |f| Request::SchoolsImport { file: f(&file) })
        }
        Command::Schools(SchoolsCommand::List { json }) => {
            admin(&cli.config, |_| Request::SchoolsList { json })
        }
        Command::Roll(RollCommand::Import { file }) => {
            admin(&cli.config, |f| Request::RollImport { file: f(&file) })
        }
        Command::Roll(RollCommand::Stats { json }) => {
            admin(&cli.config, |_| Request::RollStats { json })
        }
        Command::Review(ReviewCommand::List { json, reveal }) => {
            admin(&cli.config, |_| Request::ReviewList { json, reveal })
        }
        Command::Audit(AuditCommand::Verify {
            file: Some(file),
            public_key,
        }) => crate::admin::verbs::audit::verify_file(&file, &public_key),
        Command::Audit(AuditCommand::Verify { public_key, .. }) => {
            match crate::admin::verbs::audit::verify_request(&public_key) {
                Ok(req) => admin(&cli.config, move |_| req),
                Err(e) => Err(e),
            }
        }
        Command::Audit(AuditCommand::Export { out }) => {
            admin(&cli.config, |f| Request::AuditExport { out: f(&out) })
        }
        Command::Status {
            receipt,
            reveal,
            json,
        } => admin(&cli.config, |_| Request::Status {
            receipt,
            reveal,
            json,
        }),
        Command::Audit(AuditCommand::List {
            since,
            receipt,
            school,
            json,
        }) => admin(&cli.config, |_| Request::AuditList {
            since,
            receipt,
            school,
            json,
        }),
        Command::Review(ReviewCommand::Assign {
            receipt,
            index,
            urn,
            pupil,
        }) => match (urn, pupil) {
            (_, Some(pupil)) => admin(&cli.config, |_| Request::ReviewAssignPupil {
                receipt,
                index,
                pupil,
            }),
            (urn, None) => admin(&cli.config, |_| Request::ReviewAssign {
                receipt,
                index,
                urn: urn.unwrap_or_default(),
            }),
        },
        Command::Review(ReviewCommand::Show {
            receipt,
            index,
            json,
        }) => admin(&cli.config, |_| Request::ReviewShow {
            receipt,
            index,
            json,
        }),
        Command::Roll(RollCommand::Find {
            family,
            given,
            dob,
            json,
        }) => admin(&cli.config, |_| Request::RollFind {
            family,
            given,
            dob,
            json,
        }),
        Command::Report {
            from,
            to,
            force,
            json,
            csv,
            html,
        } => admin(&cli.config, |abs| Request::Report {
            from,
            to,
            force,
            json,
            csv,
            html: html.as_deref().map(abs),
        }),
        Command::Backup(a) => admin(&cli.config, |f| Request::Backup { out: f(&a.out) }),
        Command::Restore(a) => crate::backup::restore::main(&cli.config, &a.dir, &a.to),
        Command::Review(ReviewCommand::Dismiss {
            receipt,
            index,
            reason,
        }) => admin(&cli.config, |_| Request::ReviewDismiss {
            receipt,
            index,
            reason,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("kim: {}", describe(&f.error));
            ExitCode::from(f.code)
        }
    }
}

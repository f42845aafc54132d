//! What an admin verb works with ([`Ctx`]): the store (opened by the CLI,
//! or the daemon's own), the config, the admin it acts for, the file the
//! CLI opened for it, and the text it answers with (`say!`, `say_part!`),
//! printed by the CLI or sent back over the admin socket.

/// `println!` into a verb's answer.
macro_rules! say {
    ($ctx:expr) => {
        $ctx.out.push('\n')
    };
    ($ctx:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($ctx.out, $($arg)*);
    }};
}

/// `print!` into a verb's answer.
macro_rules! say_part {
    ($ctx:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($ctx.out, $($arg)*);
    }};
}

use super::outcome::Failure;
use crate::audit::Actor;

/// What an admin verb works with; see the module's documentation.
pub struct Ctx<'a> {
    pub store: &'a crate::store::Store,
    pub cfg: &'a crate::config::Config,
    pub actor: Actor,
    pub out: String,
    /// The file an import reads or an export writes, opened by the CLI with
    /// its user's rights (and passed over the socket to a running daemon,
    /// which never opens an admin's paths itself).
    pub file: Option<std::fs::File>,
}

impl Ctx<'_> {
    /// Answers with `value` as one pretty JSON document (`--json`).
    pub fn say_json<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Failure> {
        let text = serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?;
        say!(self, "{text}");
        Ok(())
    }

    /// Tells the admin that a `--reveal` was audited, and as whom.
    pub fn say_reveal_audited(&mut self) {
        let actor = self.actor.clone();
        say!(self, "(this reveal was recorded in the audit as {actor})");
    }

    /// The file the CLI opened for this request.
    pub fn take_file(&mut self, path: &std::path::Path) -> Result<std::fs::File, Failure> {
        self.file.take().ok_or_else(|| no_file(path))
    }
}

/// No open file came with a request that names `path`.
pub fn no_file(path: &std::path::Path) -> Failure {
    Failure::usage(anyhow::anyhow!(
        "no open file came with the request for {} (is the CLI the same version as the daemon?)",
        path.display()
    ))
}

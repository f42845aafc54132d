//! Loading the configuration: reading and parsing the file, resolving
//! relative paths against its folder, and the derived look-ups (the force of
//! a certificate, the key files) the daemon asks for.

use super::*;

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
        super::placeholders::check(text, path)?;
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
        for p in &mut self.audit.trusted_keys {
            fix(p);
        }
    }

    pub(super) fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.source.clone(),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// The force whose certificate carries one of `identities` (SAN values),
    /// compared as [`forces::Identity::matches`](super::forces::Identity::matches) says. A
    /// certificate that names more than one force gets none (logged).
    pub fn force_for<'a>(
        &'a self,
        identities: &[super::forces::Identity],
    ) -> Option<&'a ForceConfig> {
        use super::forces::{match_force, ForceMatch};
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

    /// As [`force_for`](Self::force_for), with whether the certificate acts
    /// in test mode ([`forces::is_test`](super::forces::is_test)).
    pub fn force_and_mode_for<'a>(
        &'a self,
        identities: &[super::forces::Identity],
    ) -> Option<(&'a ForceConfig, bool)> {
        self.force_for(identities)
            .map(|f| (f, super::forces::is_test(f, identities)))
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

//! Validating a parsed configuration: every rule across keys (forces,
//! listeners, paths, durations, limits), each error naming the file and the
//! key at fault.

use super::*;

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.retention.notification_days == 0 {
            return Err(self.invalid(
                "retention.notification_days",
                "must be at least 1 (a notification is never purged while any child waits)",
            ));
        }
        if self.retention.alert_days == Some(0) {
            return Err(self.invalid("retention.alert_days", "must be at least 1"));
        }
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
            for (key, list) in [
                ("client_names", &f.client_names),
                ("test_client_names", &f.test_client_names),
            ] {
                for n in list {
                    if n.trim().is_empty() {
                        return Err(
                            self.invalid(&format!("forces[{i}].{key}"), "has an empty name")
                        );
                    }
                    if !names.insert(n.to_ascii_lowercase()) {
                        return Err(self.invalid(
                            &format!("forces[{i}].{key}"),
                            format!("`{n}` is listed more than once (names are unique across all forces, live and test)"),
                        ));
                    }
                }
            }
        }
        match (
            self.forces.iter().find(|f| f.has_test_mode()),
            &self.mail.test_recipient,
        ) {
            (Some(f), None) => {
                return Err(self.invalid(
                    "mail.test_recipient",
                    format!(
                        "is required when a force is in test mode (force `{}` has test = true or test_client_names), or its test notifications would reach schools",
                        f.id
                    ),
                ))
            }
            (_, Some(r)) if crate::fields::Email::parse(r).is_err() => {
                return Err(self.invalid("mail.test_recipient", "must be an email address"))
            }
            _ => {}
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
        self.more_than_zero([
            ("delivery.escalate_after", d.escalate_after),
            ("delivery.give_up_after", d.give_up_after),
            ("delivery.retry_initial", d.retry_initial),
            ("delivery.retry_max", d.retry_max),
            ("delivery.send_timeout", d.send_timeout),
        ])?;
        if d.retry_max.0 < d.retry_initial.0 {
            return Err(self.invalid("delivery.retry_max", "must not be less than retry_initial"));
        }
        if d.concurrency == 0 || d.concurrency > 64 {
            return Err(self.invalid("delivery.concurrency", "must be between 1 and 64"));
        }
        if !d.summary_at.trim().is_empty() && d.summary_time().is_none() {
            return Err(self.invalid(
                "delivery.summary_at",
                "must be a time of day as \"HH:MM\" (Europe/London), or \"\" for no morning summary",
            ));
        }
        if let Some(c) = &self.alert.local_contact {
            if c.len() > 200 || c.chars().any(char::is_control) {
                return Err(self.invalid(
                    "alert.local_contact",
                    "must be at most 200 characters on one line",
                ));
            }
        }
        if self.review.remind_at >= d.school_day_start {
            return Err(self.invalid(
                "review.remind_at",
                "must be earlier than [delivery] school_day_start (the deadline), or the reminder would come too late",
            ));
        }
        let t = self.matching.name_threshold;
        if !(0.8..=1.0).contains(&t) {
            return Err(self.invalid(
                "matching.name_threshold",
                "must be between 0.8 and 1.0 (lower would match different children)",
            ));
        }
        if self.server.crl_refresh.0 < Duration::from_millis(100) {
            return Err(self.invalid("server.crl_refresh", "must be at least 100ms"));
        }
        for u in &self.server.crl_urls {
            if let Err(why) = crate::ingest::crl_fetch::check_url(u) {
                return Err(self.invalid("server.crl_urls", &why));
            }
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
        self.more_than_zero([
            ("limits.handshake_timeout", l.handshake_timeout),
            ("limits.header_timeout", l.header_timeout),
            ("limits.body_timeout", l.body_timeout),
            ("limits.idle_timeout", l.idle_timeout),
        ])
    }

    /// The first of `durations` that is zero, as an error naming its key.
    fn more_than_zero<const N: usize>(
        &self,
        durations: [(&str, HumanDuration); N],
    ) -> Result<(), ConfigError> {
        match durations.iter().find(|(_, d)| d.0.is_zero()) {
            Some((key, _)) => Err(self.invalid(key, "must be more than zero")),
            None => Ok(()),
        }
    }
}

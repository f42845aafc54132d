//! Who an audit event names as its actor: [`Actor`], the one place where
//! `system`, `force:ID` and `admin:NAME` (`admin:uidN` for a uid without a
//! name) are spelled. Stored events keep the actor as this string.

use std::borrow::Cow;

/// The actor of an audit event, rendered the way the audit stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor(Cow<'static, str>);

impl Actor {
    /// kim itself: its stages, its start and stop.
    pub const SYSTEM: Actor = Actor(Cow::Borrowed("system"));

    /// A police force, by its configured id: `force:ID`.
    pub fn force(id: &str) -> Self {
        Self(Cow::Owned(format!("force:{id}")))
    }

    /// An admin by OS user: `admin:NAME`, or `admin:uidN` when the uid
    /// has no name.
    pub fn admin(uid: u32, name: Option<&str>) -> Self {
        Self(Cow::Owned(match name {
            Some(n) => format!("admin:{n}"),
            None => format!("admin:uid{uid}"),
        }))
    }

    /// The admin acting as OS user `uid`, named as the user database names
    /// it (the CLI for its own user, the daemon for a socket's peer).
    pub fn os_user(uid: u32) -> Self {
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid));
        match user {
            Ok(Some(u)) => Self::admin(uid, Some(&u.name)),
            _ => Self::admin(uid, None),
        }
    }

    /// The admin running this process.
    pub fn current_user() -> Self {
        Self::os_user(nix::unistd::getuid().as_raw())
    }

    /// The string stored in the event.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Actor {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[path = "actor_tests.rs"]
mod tests;

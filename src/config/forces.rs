//! Which configured force a client certificate acts for: its identities
//! (SAN dNSName and URI values) against `[[forces]] client_names`. DNS names
//! compare case-insensitively, URIs by RFC 3986's rules; a certificate that
//! names two forces acts for none. A force, or some of its names
//! (`test_client_names`), may be in test mode (`is_test`). (Reading the identities out of a
//! certificate is `ingest::tls`'s job.)

use super::ForceConfig;

/// One identity a client certificate claims: a SAN dNSName or URI value.
/// The two kinds never match each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Dns(String),
    Uri(String),
}

impl From<&str> for Identity {
    /// A `[[forces]] client_names` entry: a URI if it has a scheme
    /// (`spiffe://…`), else a DNS name.
    fn from(s: &str) -> Self {
        if s.contains("://") {
            Self::Uri(s.to_owned())
        } else {
            Self::Dns(s.to_owned())
        }
    }
}

impl Identity {
    /// Whether this identity is the configured `client_name`. DNS names
    /// compare case-insensitively (RFC 4343). URIs (RFC 3986 §6.2.2.1):
    /// scheme and host case-insensitively; user info, port, path, query and
    /// fragment exactly (`…/DURHAM` is not `…/durham`).
    pub fn matches(&self, client_name: &str) -> bool {
        match (self, Identity::from(client_name)) {
            (Self::Dns(a), Self::Dns(b)) => a.eq_ignore_ascii_case(&b),
            (Self::Uri(a), Self::Uri(b)) => match (uri_parts(a), uri_parts(&b)) {
                (Some(x), Some(y)) => {
                    x.scheme.eq_ignore_ascii_case(y.scheme)
                        && x.userinfo == y.userinfo
                        && x.hostport.eq_ignore_ascii_case(y.hostport)
                        && x.rest == y.rest
                }
                // Not a URI kim can take apart: only the identical text.
                _ => *a == b,
            },
            _ => false,
        }
    }
}

/// A URI cut where RFC 3986 says case matters and where it does not.
struct UriParts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    /// Host and port (a port is digits: case-insensitive comparison is exact for it).
    hostport: &'a str,
    /// Path, query and fragment: compared exactly.
    rest: &'a str,
}

fn uri_parts(uri: &str) -> Option<UriParts<'_>> {
    let (scheme, after) = uri.split_once("://")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    Some(UriParts {
        scheme,
        userinfo,
        hostport,
        rest,
    })
}

/// Which configured force a certificate's identities name.
#[derive(Debug)]
pub enum ForceMatch<'a> {
    /// No force lists any of them.
    None,
    /// Exactly one force.
    One(&'a ForceConfig),
    /// More than one force: the certificate is refused (a certificate never
    /// acts for two forces, and list order must not pick one).
    Ambiguous(Vec<&'a ForceConfig>),
}

fn names_any(names: &[String], identities: &[Identity]) -> bool {
    names
        .iter()
        .any(|n| identities.iter().any(|id| id.matches(n)))
}

/// The forces whose `client_names` or `test_client_names` one of
/// `identities` matches.
pub fn match_force<'a>(forces: &'a [ForceConfig], identities: &[Identity]) -> ForceMatch<'a> {
    let mut hits: Vec<&ForceConfig> = forces
        .iter()
        .filter(|f| {
            names_any(&f.client_names, identities) || names_any(&f.test_client_names, identities)
        })
        .collect();
    match hits.len() {
        0 => ForceMatch::None,
        1 => ForceMatch::One(hits.remove(0)),
        _ => ForceMatch::Ambiguous(hits),
    }
}

/// Whether a certificate with `identities`, acting for `force`, is in test
/// mode: the force has `test = true`, or one of the identities is one of
/// its `test_client_names` (a certificate carrying both a live and a test
/// name is in test mode: the safe side, nothing reaches a school).
pub fn is_test(force: &ForceConfig, identities: &[Identity]) -> bool {
    force.test || names_any(&force.test_client_names, identities)
}

//! A client certificate's identities (SAN dNSName and URI) and the force
//! they act for. Any DER: no panic; a force is only ever chosen by an
//! identity that matches one of its names; each identity matches its own
//! text (DNS names in any ASCII case).
#![no_main]

use kim::config::forces::{match_force, ForceMatch, Identity};
use kim::ingest::tls::{identities, not_after, seconds_to_expiry};
use libfuzzer_sys::fuzz_target;
use rustls_pki_types::CertificateDer;

fuzz_target!(|data: &[u8]| {
    let cert = CertificateDer::from(data);
    let ids = identities(&cert);
    let _ = (not_after(&cert), seconds_to_expiry(&cert));
    for id in &ids {
        match id {
            Identity::Dns(s) if !s.contains("://") => {
                assert!(id.matches(s));
                assert!(id.matches(&s.to_ascii_uppercase()));
            }
            Identity::Uri(s) if s.contains("://") => assert!(id.matches(s)),
            _ => {}
        }
    }
    let forces = &kim_fuzz::config().forces;
    match match_force(forces, &ids) {
        ForceMatch::None => {}
        ForceMatch::One(f) => assert!(
            f.client_names
                .iter()
                .chain(&f.test_client_names)
                .any(|n| ids.iter().any(|id| id.matches(n))),
            "a force chosen without a matching name"
        ),
        ForceMatch::Ambiguous(fs) => assert!(fs.len() > 1),
    }
    if ids.is_empty() {
        assert!(matches!(match_force(forces, &ids), ForceMatch::None));
    }
});

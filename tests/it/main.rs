//! Integration tests: the real `kim` binary, real certificates, real
//! rustls clients (and curl), a real sled directory.

mod activation;
mod admin;
mod admin_group;
mod admin_socket;
mod alerts;
mod api;
mod audit;
mod candidates;
mod cli;
mod delivery;
mod disk;
mod durability;
mod flood;
mod fuzz_regressions;
mod hardening;
mod journal;
mod limits;
mod matching;
mod openapi;
mod privacy;
mod readiness;
mod reload;
mod reload_pki;
mod report;
mod review;
mod review_deadline;
mod roll;
mod send;
mod support;
mod test_mode;
mod tls;

//! Integration tests: the real `kim` binary, real certificates, real
//! rustls clients (and curl), a real sled directory.

mod admin;
mod admin_socket;
mod api;
mod audit;
mod candidates;
mod cli;
mod delivery;
mod disk;
mod durability;
mod flood;
mod hardening;
mod journal;
mod limits;
mod matching;
mod privacy;
mod review;
mod roll;
mod support;
mod tls;

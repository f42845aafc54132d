//! kim, the keep-in-mind relay: police domestic-abuse notifications in over
//! mutual TLS, stored encrypted, matched to the child's school, and sent to
//! the school's Designated Safeguarding Lead.
//!
//! # Layout
//! Data flows one way, each step through the store (DESIGN §2):
//! `ingest` (HTTPS + mTLS, validation) → `store` (sealed sled trees, audit
//! chain) → matching → alert → deliver. `config` loads and checks the TOML,
//! `fields` holds the one rule per outside field (URN, email, names,
//! postcode, phone, dates, forbidden characters), `audit` defines the
//! hash-chained events, `metrics` the Prometheus text,
//! `hardening` makes the process non-dumpable, `perms` checks who owns
//! secret files and the admin socket's folder, `fsmode` gives kim's files
//! 0600 and folders 0700, `lograte` rate-limits errors that repeat in a
//! loop, `pki` makes development certificates, `police_client` is a real mTLS
//! client for the demo, tests and benchmarks, and `cli` holds one module per
//! subcommand group.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod admin;
pub mod alert;
pub mod audit;
pub mod backup;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod deliver;
pub mod dev;
pub mod fields;
pub mod fsmode;
#[doc(hidden)]
pub mod fuzz_api;
pub mod hardening;
pub mod heartbeat;
pub mod import;
pub mod ingest;
pub mod lograte;
pub mod matching;
pub mod metrics;
#[cfg(test)]
mod mutation;
pub mod normalise;
pub mod perms;
pub mod pki;
pub mod police_client;
pub mod report;
pub mod retention;
pub mod store;

//! CSV import contracts (DESIGN §4): the school directory and the pupil roll.
//! Whole files are parsed and validated atomically; any bad row rejects the
//! file, and every bad row is reported as `line N: column: why`, never quoting
//! personal data.

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::hash::BuildHasher;
use std::io::{self, Read, Seek, SeekFrom};

use csv::ByteRecord;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::fields::{
    self, CodeError, DateError, Email, EmailError, Line, PersonName, Phone, Postcode, TextError,
    Urn, UrnError,
};

mod keylog;
mod reader;
mod roll;
mod rules;
mod schools;

use keylog::*;
use reader::*;
pub use roll::{parse_roll, parse_roll_each};
use rules::*;
pub use schools::parse_schools;

/// At most this many problems are listed; one `… and N more` entry follows.
pub const MAX_REPORTED_PROBLEMS: usize = 1000;

const SCHOOL_HEADER: [&str; 6] = [
    "urn",
    "name",
    "dsl_name",
    "dsl_email",
    "deputy_email",
    "phone",
];
const ROLL_HEADER: [&str; 7] = [
    "pupil_id",
    "given_name",
    "family_name",
    "other_names",
    "date_of_birth",
    "postcode",
    "school_urn",
];

/// One problem in an import file. `why` names the rule broken and never
/// contains a submitted value.
///
/// The overflow entry that ends a capped list has `line == 0`, an empty
/// `column`, and displays as just its `why` (`… and N more`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub column: String,
    pub why: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.why)
        } else {
            write!(f, "line {}: {}: {}", self.line, self.column, self.why)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file was rejected ({} problem(s)); nothing was imported:\n{}", .0.len(), display_list(.0))]
    Rejected(Vec<RowError>),
}

fn display_list(problems: &[RowError]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str("  ");
        out.push_str(&p.to_string());
    }
    out
}

/// A row of the school directory.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct School {
    pub urn: String,
    pub name: String,
    pub dsl_name: String,
    pub dsl_email: String,
    pub deputy_email: Option<String>,
    pub phone: Option<String>,
}

impl fmt::Debug for School {
    /// Only the URN and the school's name: DSL names and emails are personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("School")
            .field("urn", &self.urn)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A row of the pupil roll.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pupil {
    pub pupil_id: String,
    pub given_name: String,
    pub family_name: String,
    pub other_names: Vec<String>,
    pub date_of_birth: Date,
    pub postcode: Option<String>,
    pub school_urn: String,
}

impl fmt::Debug for Pupil {
    /// Only the school's URN: everything else identifies a child.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pupil")
            .field("school_urn", &self.school_urn)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;

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

/// Parses and validates a whole school directory file
/// (`urn,name,dsl_name,dsl_email,deputy_email,phone`).
///
/// The file is read into memory first (a directory is small); see
/// [`parse_roll_each`] for how repeats are found.
///
/// # Errors
/// [`ImportError::Rejected`] listing every problem if any row (or the header,
/// or an empty file) breaks the contract; [`ImportError::Io`] if reading fails.
pub fn parse_schools(input: impl Read) -> Result<Vec<School>, ImportError> {
    let mut schools = Vec::new();
    parse_file(
        in_memory(input)?,
        &SCHOOL_HEADER,
        "urn",
        |first| format!("duplicate urn, first on line {first}"),
        |line, fields, p, keys| {
            let [urn, name, dsl_name, dsl_email, deputy_email, phone] = *fields;
            let urn = check(p, line, "urn", urn, valid_urn);
            let name = check(p, line, "name", name, |s| required_text(s, 200));
            let dsl_name = check(p, line, "dsl_name", dsl_name, |s| required_text(s, 100));
            let dsl_email = check(p, line, "dsl_email", dsl_email, required_email);
            let deputy_email = check(p, line, "deputy_email", deputy_email, optional_email);
            let phone = check(p, line, "phone", phone, optional_phone);

            if let Some(urn) = urn {
                keys.push(urn, line);
            }

            if !p.is_empty() {
                // The file is rejected: stop holding rows.
                if schools.capacity() > 0 {
                    schools = Vec::new();
                }
                return Ok::<_, ImportError>(());
            }
            if let (
                Some(urn),
                Some(name),
                Some(dsl_name),
                Some(dsl_email),
                Some(deputy_email),
                Some(phone),
            ) = (urn, name, dsl_name, dsl_email, deputy_email, phone)
            {
                schools.push(School {
                    urn: urn.to_owned(),
                    name: name.to_owned(),
                    dsl_name: dsl_name.to_owned(),
                    dsl_email: dsl_email.to_owned(),
                    deputy_email: deputy_email.map(str::to_owned),
                    phone: phone.map(str::to_owned),
                });
            }
            Ok(())
        },
    )?;
    Ok(schools)
}

/// Parses and validates a whole pupil roll
/// (`pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn`).
/// `known_urns` is the school directory; `today` bounds dates of birth.
///
/// For small rolls and tests: the file and every pupil are held in memory.
/// A national roll goes through [`parse_roll_each`], which this wraps.
///
/// # Errors
/// As [`parse_schools`].
pub fn parse_roll(
    input: impl Read,
    known_urns: &HashSet<String>,
    today: Date,
) -> Result<Vec<Pupil>, ImportError> {
    let mut pupils = Vec::new();
    parse_roll_each(in_memory(input)?, known_urns, today, |p| {
        pupils.push(p);
        Ok::<_, ImportError>(())
    })?;
    Ok(pupils)
}

/// Streams a pupil roll: validates every row and hands each valid pupil to
/// `sink` as soon as it is read, holding only about 16 bytes per row (to find
/// repeated `pupil_id`s). Returns the number of pupils read.
///
/// The contract is the caller's to keep: `Ok` means the WHOLE file is valid
/// and every pupil went to `sink`, once, in file order. Any `Err` means the
/// file must be rejected whole, and the pupils already handed over must be
/// thrown away: `sink` is called only while no problem has been found so
/// far, but a repeated `pupil_id` is only known once the whole file has
/// been read (both rows will have gone to `sink` by then).
///
/// Repeats are found from a keyed 64-bit hash of each `pupil_id` (random
/// per call, so a file cannot steer it) with its line. Rows whose hashes
/// collide are then compared exactly, on a second pass over `input` that
/// reads only those rows' ids again, so a repeat is never missed and two
/// different ids are never reported as one. That pass only happens when a
/// hash repeats: in practice, when the file really has a repeated id.
///
/// # Errors
/// `E::from(`[`ImportError::Rejected`]`)` listing every problem (as
/// [`parse_schools`]), `E::from(`[`ImportError::Io`]`)` if reading fails or
/// the file changed between the two passes, or the first error `sink`
/// returns (reading stops there).
pub fn parse_roll_each<E: From<ImportError>>(
    input: impl Read + Seek,
    known_urns: &HashSet<String>,
    today: Date,
    mut sink: impl FnMut(Pupil) -> Result<(), E>,
) -> Result<u64, E> {
    parse_file(
        input,
        &ROLL_HEADER,
        "pupil_id",
        |first| format!("duplicate (first on line {first})"),
        |line, fields, p, keys| {
            let [pupil_id, given_name, family_name, other_names, date_of_birth, postcode, school_urn] =
                *fields;
            let pupil_id = check(p, line, "pupil_id", pupil_id, valid_pupil_id);
            let given_name = check(p, line, "given_name", given_name, |s| required_text(s, 100));
            let family_name = check(p, line, "family_name", family_name, |s| {
                required_text(s, 100)
            });
            let other_names = check(p, line, "other_names", other_names, valid_other_names);
            let date_of_birth = check(p, line, "date_of_birth", date_of_birth, |s| {
                valid_date_of_birth(s, today)
            });
            let postcode = check(p, line, "postcode", postcode, optional_postcode);
            let school_urn = check(p, line, "school_urn", school_urn, |s| {
                let urn = valid_urn(s)?;
                if known_urns.contains(urn) {
                    Ok(urn)
                } else {
                    Err("no school with this urn in the school directory".into())
                }
            });

            if let Some(id) = pupil_id {
                keys.push(id, line);
            }

            if !p.is_empty() {
                return Ok(());
            }
            if let (
                Some(pupil_id),
                Some(given_name),
                Some(family_name),
                Some(other_names),
                Some(date_of_birth),
                Some(postcode),
                Some(school_urn),
            ) = (
                pupil_id,
                given_name,
                family_name,
                other_names,
                date_of_birth,
                postcode,
                school_urn,
            ) {
                sink(Pupil {
                    pupil_id: pupil_id.to_owned(),
                    given_name: given_name.to_owned(),
                    family_name: family_name.to_owned(),
                    other_names,
                    date_of_birth,
                    postcode: postcode.map(str::to_owned),
                    school_urn: school_urn.to_owned(),
                })?;
            }
            Ok(())
        },
    )
}

/// Reads all of a small input, so it can be read twice (see [`KeyLog`]).
fn in_memory(mut input: impl Read) -> Result<io::Cursor<Vec<u8>>, ImportError> {
    let mut buf = Vec::new();
    input.read_to_end(&mut buf)?;
    Ok(io::Cursor::new(buf))
}

/// One import file, start to end: reads every row (see [`read_file`]), with
/// `row` validating it and logging its key (column 0, `key_column`), then
/// finds repeated keys. Returns the number of data rows.
fn parse_file<const N: usize, R: Read + Seek, E: From<ImportError>>(
    input: R,
    header: &[&str; N],
    key_column: &str,
    repeat_why: impl Fn(u64) -> String,
    mut row: impl FnMut(u64, &[Option<&str>; N], &mut Problems, &mut KeyLog) -> Result<(), E>,
) -> Result<u64, E> {
    debug_assert_eq!(header[0], key_column, "the key is the first column");
    let mut keys = KeyLog::default();
    let (mut problems, rows, input) = read_file(input, header, |line, fields, p| {
        row(line, fields, p, &mut keys)
    })?;
    let repeats = keys.repeats(input, header)?;
    problems.add_repeats(repeats, key_column, repeat_why);
    problems.into_result()?;
    Ok(rows)
}

// ---------------------------------------------------------------------------
// Reading

/// Why a field broke its rule. Never contains the field's value.
type Why = Cow<'static, str>;

const REQUIRED: &str = "required, but empty";
const CONTROL: &str = "contains a control character";

/// The problems found so far: the first [`MAX_REPORTED_PROBLEMS`] kept, all counted.
#[derive(Default)]
struct Problems {
    list: Vec<RowError>,
    total: u64,
}

impl Problems {
    fn add(&mut self, line: u64, column: &str, why: impl Into<Why>) {
        self.total += 1;
        if self.list.len() < MAX_REPORTED_PROBLEMS {
            self.list.push(RowError {
                line,
                column: column.to_owned(),
                why: why.into().into_owned(),
            });
        }
    }

    fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Adds repeats found after the read, keeping the list in line order:
    /// on its line, a repeat follows only a `row` problem (the key column is
    /// the first column; a row with an invalid key logs no key).
    fn add_repeats(&mut self, repeats: Vec<(u64, u64)>, column: &str, why: impl Fn(u64) -> String) {
        if repeats.is_empty() {
            return;
        }
        self.total += repeats.len() as u64;
        let mut earlier = std::mem::take(&mut self.list).into_iter().peekable();
        let mut repeats = repeats.into_iter().peekable();
        while self.list.len() < MAX_REPORTED_PROBLEMS {
            let repeat_next = match (earlier.peek(), repeats.peek()) {
                (Some(e), Some(&(line, _))) => {
                    e.line > line || (e.line == line && e.column != "row")
                }
                (None, Some(_)) => true,
                (_, None) => false,
            };
            let next = if repeat_next {
                repeats.next().map(|(line, first)| RowError {
                    line,
                    column: column.to_owned(),
                    why: why(first),
                })
            } else {
                earlier.next()
            };
            match next {
                Some(e) => self.list.push(e),
                None => break,
            }
        }
    }

    fn into_result(mut self) -> Result<(), ImportError> {
        if self.is_empty() {
            return Ok(());
        }
        let listed = self.list.len() as u64;
        if self.total > listed {
            self.list.push(RowError {
                line: 0,
                column: String::new(),
                why: format!("… and {} more", self.total - listed),
            });
        }
        Err(ImportError::Rejected(self.list))
    }
}

/// Runs `validate` on a field that was valid UTF-8 (`None` was already
/// reported as a row problem), recording at most one problem for the column.
fn check<'a, T>(
    p: &mut Problems,
    line: u64,
    column: &str,
    field: Option<&'a str>,
    validate: impl FnOnce(&'a str) -> Result<T, Why>,
) -> Option<T> {
    match validate(field?) {
        Ok(v) => Some(v),
        Err(why) => {
            p.add(line, column, why);
            None
        }
    }
}

/// Reads the whole file: checks the header, counts columns, decodes UTF-8 per
/// field, and hands each data row (with the line it starts on) to `row`,
/// stopping at the first error `row` returns. Returns the problems found, the
/// number of data rows, and `input` (to be read again if need be).
fn read_file<const N: usize, R: Read, E: From<ImportError>>(
    input: R,
    header: &[&str; N],
    mut row: impl FnMut(u64, &[Option<&str>; N], &mut Problems) -> Result<(), E>,
) -> Result<(Problems, u64, R), E> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(64 * 1024)
        .from_reader(LineTracker::new(input));
    let mut record = ByteRecord::new();
    let mut problems = Problems::default();

    if !next_record(&mut rdr, &mut record)? {
        problems.add(1, "file", "empty (no header row)");
        return Ok((problems, 0, rdr.into_inner().inner));
    }
    let header_line = record_line(&mut rdr, &record);
    if !header_matches(&record, header) {
        problems.add(
            header_line,
            "header",
            format!("expected \"{}\"", header.join(",")),
        );
        return Ok((problems, 0, rdr.into_inner().inner));
    }

    let mut rows = 0u64;
    while next_record(&mut rdr, &mut record)? {
        rows += 1;
        let line = record_line(&mut rdr, &record);
        if record.len() != N {
            problems.add(
                line,
                "row",
                format!("expected {N} columns, found {}", record.len()),
            );
            continue;
        }
        let mut fields: [Option<&str>; N] = [None; N];
        let mut utf8 = true;
        for (slot, raw) in fields.iter_mut().zip(record.iter()) {
            *slot = std::str::from_utf8(raw).ok();
            utf8 &= slot.is_some();
        }
        if !utf8 {
            problems.add(line, "row", "not valid UTF-8");
        }
        row(line, &fields, &mut problems)?;
    }
    if rows == 0 {
        problems.add(1, "file", "no rows");
    }
    Ok((problems, rows, rdr.into_inner().inner))
}

fn next_record<R: Read>(
    rdr: &mut csv::Reader<R>,
    record: &mut ByteRecord,
) -> Result<bool, ImportError> {
    rdr.read_byte_record(record)
        .map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(e) => ImportError::Io(e),
            // Unreachable with byte records and `flexible(true)`; the kind's
            // details could quote the file, so they are not passed on.
            _ => ImportError::Io(io::Error::other("malformed CSV")),
        })
}

fn header_matches<const N: usize>(record: &ByteRecord, header: &[&str; N]) -> bool {
    record.len() == N
        && record
            .iter()
            .zip(header)
            .enumerate()
            .all(|(i, (got, want))| {
                let got = if i == 0 {
                    got.strip_prefix(b"\xef\xbb\xbf").unwrap_or(got)
                } else {
                    got
                };
                got == want.as_bytes()
            })
}

/// The physical line a record starts on.
///
/// `csv::Position::line()` is the line count where the *read* started, which
/// lags behind with CRLF endings (the `\n` is consumed by the next read) and
/// after blank lines (skipped inside the next read). So [`LineTracker`] notes
/// where every line's content starts, and the record's content starts at the
/// first such point at or after the read's starting byte (everything in
/// between is `\r`/`\n`).
fn record_line<R: Read>(rdr: &mut csv::Reader<LineTracker<R>>, record: &ByteRecord) -> u64 {
    let Some(pos) = record.position() else {
        return 1; // read_byte_record always sets it
    };
    rdr.get_mut()
        .line_at_or_after(pos.byte())
        .unwrap_or(pos.line())
}

/// Passes bytes through, noting `(byte offset, line)` for every byte that is
/// not `\r`/`\n` but follows one (or starts the file). `\r\n`, `\n` and a
/// lone `\r` each end a line. Entries behind the parser are dropped, so this
/// holds only about the CSV reader's buffer's worth.
struct LineTracker<R> {
    inner: R,
    offset: u64,
    line: u64,
    after_break: bool,
    after_cr: bool,
    starts: VecDeque<(u64, u64)>,
}

impl<R> LineTracker<R> {
    fn new(inner: R) -> Self {
        LineTracker {
            inner,
            offset: 0,
            line: 1,
            after_break: true,
            after_cr: false,
            starts: VecDeque::new(),
        }
    }

    fn scan(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            if !self.after_break {
                match bytes[i..].iter().position(|&b| b == b'\n' || b == b'\r') {
                    Some(n) => i += n,
                    None => break,
                }
            }
            match bytes[i] {
                b'\n' => {
                    if !self.after_cr {
                        self.line += 1;
                    }
                    self.after_cr = false;
                    self.after_break = true;
                }
                b'\r' => {
                    self.line += 1;
                    self.after_cr = true;
                    self.after_break = true;
                }
                _ => {
                    self.starts.push_back((self.offset + i as u64, self.line));
                    self.after_cr = false;
                    self.after_break = false;
                }
            }
            i += 1;
        }
        self.offset += bytes.len() as u64;
    }

    fn line_at_or_after(&mut self, byte: u64) -> Option<u64> {
        while self.starts.front().is_some_and(|&(at, _)| at < byte) {
            self.starts.pop_front();
        }
        self.starts.front().map(|&(_, line)| line)
    }
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scan(&buf[..n]);
        Ok(n)
    }
}

/// Every key (pupil_id, urn) logged with the line it is on, for finding
/// repeats once the whole file has been read: 16 bytes per row, whatever
/// the keys' length.
///
/// A `HashMap<String, u64>` probed per row cost half the parse time of a
/// 9 M-row roll (an allocation per key, and a cache miss per probe into a
/// table of hundreds of MB); keeping the keys themselves cost their length
/// again per row. So only a keyed 64-bit hash of each key is kept (random
/// per process, so the file cannot steer it). One sort at the end brings
/// equal hashes together; rows whose hashes collide are read again from
/// the file and their keys compared exactly, so a hash collision can never
/// pass for a repeat, nor hide one.
#[derive(Default)]
struct KeyLog<S = RandomState> {
    hasher: S,
    entries: Vec<KeyEntry>,
}

#[derive(Clone, Copy)]
struct KeyEntry {
    hash: u64,
    line: u64,
}

impl<S: BuildHasher> KeyLog<S> {
    fn push(&mut self, key: &str, line: u64) {
        self.entries.push(KeyEntry {
            hash: self.hasher.hash_one(key),
            line,
        });
    }

    /// `(line, first line)` for every repeat of an earlier key, in line
    /// order. `input` is the file the keys came from, read to its end; it
    /// is read again (keys only) if any two hashes are equal.
    fn repeats<const N: usize, R: Read + Seek>(
        self,
        mut input: R,
        header: &[&str; N],
    ) -> Result<Vec<(u64, u64)>, ImportError> {
        let KeyLog {
            hasher,
            mut entries,
        } = self;
        entries.sort_unstable_by_key(|e| (e.hash, e.line));
        // Rows whose hash is shared, as (line, group); each group's hash.
        let mut wanted: Vec<(u64, usize)> = Vec::new();
        let mut group_hash: Vec<u64> = Vec::new();
        for run in entries.chunk_by(|a, b| a.hash == b.hash) {
            if run.len() > 1 {
                wanted.extend(run.iter().map(|e| (e.line, group_hash.len())));
                group_hash.push(run[0].hash);
            }
        }
        drop(entries);
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        wanted.sort_unstable();

        // Second pass: per group, each distinct key with the line it first
        // appears on (usually one key: a real repeat).
        let mut distinct: Vec<Vec<(Box<str>, u64)>> = vec![Vec::new(); group_hash.len()];
        let mut repeats = Vec::new();
        let mut next = wanted.iter().peekable();
        let changed = || {
            ImportError::Io(io::Error::other(
                "the file changed while it was being imported",
            ))
        };
        input.seek(SeekFrom::Start(0))?;
        read_file(input, header, |line, fields, _| {
            let Some(&&(want, group)) = next.peek() else {
                return Ok(());
            };
            if want > line {
                return Ok(());
            }
            next.next();
            let key = match fields[0] {
                Some(key) if want == line && hasher.hash_one(key) == group_hash[group] => key,
                _ => return Err(changed()),
            };
            let seen = &mut distinct[group];
            match seen.iter().find(|(k, _)| **k == *key) {
                Some(&(_, first)) => repeats.push((line, first)),
                None => seen.push((key.into(), line)),
            }
            Ok(())
        })?;
        if next.peek().is_some() {
            return Err(changed());
        }
        repeats.sort_unstable();
        Ok(repeats)
    }
}

// ---------------------------------------------------------------------------
// Field rules: the shared ones in `crate::fields`, worded here as
// `line N: column: why`. Each returns the value to store, or why it is refused.

fn too_long(max: usize) -> Why {
    format!("too long (at most {max} characters)").into()
}

/// A refused character of any class reads "contains a control character".
fn forbidden(s: &str) -> Result<(), Why> {
    fields::check_line(s).map_err(|_| Why::from(CONTROL))
}

/// A required one-line text field (names): trimmed, 1..=max characters.
fn required_text(s: &str, max: usize) -> Result<&str, Why> {
    Line::parse(s, max)
        .map(|l| l.as_str())
        .map_err(|e| match e {
            TextError::Empty => REQUIRED.into(),
            TextError::Forbidden(_) => CONTROL.into(),
            TextError::Blank => "only whitespace".into(),
            TextError::TooLong { max } => too_long(max),
        })
}

/// A DfE Unique Reference Number: 6 or 7 ASCII digits.
fn valid_urn(s: &str) -> Result<&str, Why> {
    Urn::parse(s).map(|u| u.as_str()).map_err(|e| match e {
        UrnError::Empty => REQUIRED.into(),
        UrnError::Shape => "must be 6 or 7 digits (a DfE URN)".into(),
    })
}

fn required_email(s: &str) -> Result<&str, Why> {
    Email::parse(s).map(|e| e.as_str()).map_err(|e| match e {
        EmailError::Empty => REQUIRED.into(),
        EmailError::Forbidden(_) => CONTROL.into(),
        EmailError::TooLong => too_long(fields::MAX_EMAIL_CHARS),
        EmailError::Invalid => "not a valid email address".into(),
    })
}

fn optional_email(s: &str) -> Result<Option<&str>, Why> {
    forbidden(s)?;
    if s.trim().is_empty() {
        Ok(None)
    } else {
        required_email(s).map(Some)
    }
}

/// Trimmed; empty is `None`; otherwise a [`fields::Phone`] or [`fields::Postcode`].
fn optional_code<'a, T>(
    s: &'a str,
    parse: impl FnOnce(&'a str) -> Result<T, CodeError>,
    chars: &'static str,
) -> Result<Option<&'a str>, Why> {
    forbidden(s)?;
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match parse(t) {
        Ok(_) => Ok(Some(t)),
        Err(CodeError::TooLong { max }) => Err(too_long(max)),
        Err(CodeError::NoDigit) => Err("must contain at least one digit".into()),
        // Empty and blank cannot happen once trimmed.
        Err(CodeError::BadChars | CodeError::Empty | CodeError::Blank) => Err(chars.into()),
    }
}

/// Up to 30 characters of digits, spaces, `+ ( ) -`, with at least one digit.
fn optional_phone(s: &str) -> Result<Option<&str>, Why> {
    optional_code(s, Phone::parse, "may contain only digits, spaces, + ( ) -")
}

/// Up to 10 ASCII letters, digits and spaces; trimmed.
fn optional_postcode(s: &str) -> Result<Option<&str>, Why> {
    optional_code(
        s,
        Postcode::parse,
        "may contain only letters, digits and spaces",
    )
}

/// The local authority's record key: 1..=64 of `A-Z a-z 0-9 - _ .`, case-sensitive.
fn valid_pupil_id(s: &str) -> Result<&str, Why> {
    if s.is_empty() {
        return Err(REQUIRED.into());
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("may contain only A-Z a-z 0-9 - _ .".into());
    }
    if s.len() > 64 {
        return Err(too_long(64));
    }
    Ok(s)
}

/// `;`-separated, each trimmed, empty items dropped, at most 10 person names.
fn valid_other_names(s: &str) -> Result<Vec<String>, Why> {
    forbidden(s)?;
    let items = || s.split(';').map(str::trim).filter(|n| !n.is_empty());
    let count = items().count();
    if count > 10 {
        return Err("too many names (at most 10)".into());
    }
    if items().any(|n| PersonName::parse(n).is_err()) {
        return Err("a name is too long (at most 100 characters each)".into());
    }
    // Exact capacity: 9 M rolls hold a lot of these.
    let mut names = Vec::with_capacity(count);
    names.extend(items().map(str::to_owned));
    Ok(names)
}

/// The email rule, for the tests that list addresses.
#[cfg(test)]
fn is_valid_email(s: &str) -> bool {
    Email::parse(s).is_ok()
}

/// `YYYY-MM-DD`, a real date, not after `today`.
fn valid_date_of_birth(s: &str, today: Date) -> Result<Date, Why> {
    let date = fields::parse_date(s).map_err(|e| match e {
        DateError::Empty => Why::from(REQUIRED),
        DateError::Shape => "not a date in the form YYYY-MM-DD".into(),
        DateError::Impossible => "impossible date (must be YYYY-MM-DD)".into(),
    })?;
    if date > today {
        return Err("in the future".into());
    }
    Ok(date)
}

// ---------------------------------------------------------------------------

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;

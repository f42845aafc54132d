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
// Field rules. Each returns the value to store, or why it is refused.

/// Control characters (Cc), line/paragraph separators, and bidi
/// embedding/override/isolate controls (which can disguise text).
fn has_control(s: &str) -> bool {
    if s.is_ascii() {
        return s.bytes().any(|b| b < 0x20 || b == 0x7f);
    }
    s.chars().any(|c| {
        c.is_control()
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            )
    })
}

fn too_long(max: usize) -> Why {
    format!("too long (at most {max} characters)").into()
}

/// A required free-text field (names): trimmed, 1..=max characters.
fn required_text(s: &str, max: usize) -> Result<&str, Why> {
    if s.is_empty() {
        return Err(REQUIRED.into());
    }
    if has_control(s) {
        return Err(CONTROL.into());
    }
    let t = s.trim();
    if t.is_empty() {
        return Err("only whitespace".into());
    }
    if t.len() > max && t.chars().count() > max {
        return Err(too_long(max));
    }
    Ok(t)
}

/// A DfE Unique Reference Number: 6 or 7 ASCII digits.
fn valid_urn(s: &str) -> Result<&str, Why> {
    if s.is_empty() {
        return Err(REQUIRED.into());
    }
    if (6..=7).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s)
    } else {
        Err("must be 6 or 7 digits (a DfE URN)".into())
    }
}

fn required_email(s: &str) -> Result<&str, Why> {
    if s.is_empty() {
        return Err(REQUIRED.into());
    }
    if has_control(s) {
        return Err(CONTROL.into());
    }
    if s.len() > 254 {
        return Err(too_long(254));
    }
    if is_valid_email(s) {
        Ok(s)
    } else {
        Err("not a valid email address".into())
    }
}

fn optional_email(s: &str) -> Result<Option<&str>, Why> {
    if has_control(s) {
        Err(CONTROL.into())
    } else if s.trim().is_empty() {
        Ok(None)
    } else {
        required_email(s).map(Some)
    }
}

/// One `@`; the local part an RFC 5322 dot-atom (ASCII); the domain two or
/// more non-empty labels of ASCII letters, digits and inner hyphens.
fn is_valid_email(s: &str) -> bool {
    const ATEXT_SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(&b))
        });
    let domain_ok = domain.contains('.')
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    local_ok && domain_ok
}

/// Up to 30 characters of digits, spaces, `+ ( ) -`, with at least one digit.
fn optional_phone(s: &str) -> Result<Option<&str>, Why> {
    if has_control(s) {
        return Err(CONTROL.into());
    }
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_digit() || b" +()-".contains(&b))
    {
        return Err("may contain only digits, spaces, + ( ) -".into());
    }
    if t.len() > 30 {
        return Err(too_long(30));
    }
    if !t.bytes().any(|b| b.is_ascii_digit()) {
        return Err("must contain at least one digit".into());
    }
    Ok(Some(t))
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

/// `;`-separated, each trimmed, empty items dropped, at most 10 of at most 100 characters.
fn valid_other_names(s: &str) -> Result<Vec<String>, Why> {
    if has_control(s) {
        return Err(CONTROL.into());
    }
    let items = || s.split(';').map(str::trim).filter(|n| !n.is_empty());
    let count = items().count();
    if count > 10 {
        return Err("too many names (at most 10)".into());
    }
    if items().any(|n| n.len() > 100 && n.chars().count() > 100) {
        return Err("a name is too long (at most 100 characters each)".into());
    }
    // Exact capacity: 9 M rolls hold a lot of these.
    let mut names = Vec::with_capacity(count);
    names.extend(items().map(str::to_owned));
    Ok(names)
}

/// `YYYY-MM-DD`, a real date, not after `today`.
fn valid_date_of_birth(s: &str, today: Date) -> Result<Date, Why> {
    if s.is_empty() {
        return Err(REQUIRED.into());
    }
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err("not a date in the form YYYY-MM-DD".into());
    }
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0i16, |n, d| n * 10 + i16::from(d - b'0'));
    // Month and day are two digits, so they fit in i8; the error (which would
    // quote the date) is dropped.
    let date = Date::new(num(0..4), num(5..7) as i8, num(8..10) as i8)
        .map_err(|_| Why::from("impossible date (must be YYYY-MM-DD)"))?;
    if date > today {
        return Err("in the future".into());
    }
    Ok(date)
}

/// Up to 10 ASCII letters, digits and spaces; trimmed.
fn optional_postcode(s: &str) -> Result<Option<&str>, Why> {
    if has_control(s) {
        return Err(CONTROL.into());
    }
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') {
        return Err("may contain only letters, digits and spaces".into());
    }
    if t.len() > 10 {
        return Err(too_long(10));
    }
    Ok(Some(t))
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const SH: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n";
    const RH: &str =
        "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n";

    fn today() -> Date {
        Date::new(2025, 6, 1).unwrap()
    }

    fn urns() -> HashSet<String> {
        ["100001", "1000002"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn roll(body: &str) -> Result<Vec<Pupil>, ImportError> {
        parse_roll(format!("{RH}{body}").as_bytes(), &urns(), today())
    }

    fn schools(body: &str) -> Result<Vec<School>, ImportError> {
        parse_schools(format!("{SH}{body}").as_bytes())
    }

    fn rejected<T: fmt::Debug>(r: Result<T, ImportError>) -> Vec<RowError> {
        match r {
            Err(ImportError::Rejected(list)) => list,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    /// The problems as `line: column: why` strings.
    fn lines<T: fmt::Debug>(r: Result<T, ImportError>) -> Vec<String> {
        rejected(r).iter().map(ToString::to_string).collect()
    }

    fn only<T: fmt::Debug>(r: Result<T, ImportError>) -> RowError {
        let list = rejected(r);
        assert_eq!(list.len(), 1, "{list:?}");
        list.into_iter().next().unwrap()
    }

    fn at(e: &RowError) -> (u64, &str) {
        (e.line, e.column.as_str())
    }

    const GOOD_PUPIL: &str = "P1,Ann,Lee,,2015-03-04,AB1 2CD,100001\n";

    #[test]
    fn valid_school_file_parses() {
        let data = "\u{feff}urn,name,dsl_name,dsl_email,deputy_email,phone\r\n\
                    100001,\"St Mary's, \"\"Upper\"\" School\",Jo Bloggs,jo@stmarys.sch.uk,,\r\n\
                    1000002,Oak Academy,  Sam  Smith ,s.smith+dsl@oak.example.org,deputy@oak.example.org,+44 (0)20 7946-0000\r\n";
        let got = parse_schools(data.as_bytes()).unwrap();
        assert_eq!(
            got,
            vec![
                School {
                    urn: "100001".into(),
                    name: "St Mary's, \"Upper\" School".into(),
                    dsl_name: "Jo Bloggs".into(),
                    dsl_email: "jo@stmarys.sch.uk".into(),
                    deputy_email: None,
                    phone: None,
                },
                School {
                    urn: "1000002".into(),
                    name: "Oak Academy".into(),
                    dsl_name: "Sam  Smith".into(),
                    dsl_email: "s.smith+dsl@oak.example.org".into(),
                    deputy_email: Some("deputy@oak.example.org".into()),
                    phone: Some("+44 (0)20 7946-0000".into()),
                },
            ]
        );
    }

    #[test]
    fn valid_roll_parses() {
        let data = "\u{feff}pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\r\n\
                    A-1_b.2,\"Smith, Jr\",\"O\"\"Brien\",\"Amy; Mia ;\",2015-03-04,AB1 2CD,100001\r\n\
                    X9,Ζωή,王,Иван; Łucja,2025-06-01,,1000002\r\n";
        let got = parse_roll(data.as_bytes(), &urns(), today()).unwrap();
        assert_eq!(
            got,
            vec![
                Pupil {
                    pupil_id: "A-1_b.2".into(),
                    given_name: "Smith, Jr".into(),
                    family_name: "O\"Brien".into(),
                    other_names: vec!["Amy".into(), "Mia".into()],
                    date_of_birth: Date::new(2015, 3, 4).unwrap(),
                    postcode: Some("AB1 2CD".into()),
                    school_urn: "100001".into(),
                },
                Pupil {
                    pupil_id: "X9".into(),
                    given_name: "Ζωή".into(),
                    family_name: "王".into(),
                    other_names: vec!["Иван".into(), "Łucja".into()],
                    date_of_birth: today(),
                    postcode: None,
                    school_urn: "1000002".into(),
                },
            ]
        );
    }

    #[test]
    fn wrong_header_is_rejected() {
        let e = only(parse_schools(
            "urn,name,dsl_email\n100001,A,b@c.de\n".as_bytes(),
        ));
        assert_eq!(
            e.to_string(),
            r#"line 1: header: expected "urn,name,dsl_name,dsl_email,deputy_email,phone""#
        );
        let e = only(parse_roll(SH.as_bytes(), &urns(), today()));
        assert_eq!(
            e.to_string(),
            r#"line 1: header: expected "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn""#
        );
        // Case and order matter.
        let e = only(parse_schools(
            "URN,name,dsl_name,dsl_email,deputy_email,phone\n".as_bytes(),
        ));
        assert_eq!(at(&e), (1, "header"));
    }

    #[test]
    fn wrong_column_count_is_rejected() {
        let e = only(roll(&format!("{GOOD_PUPIL}P2,Ann,Lee,,2015-03-04\n")));
        assert_eq!(e.to_string(), "line 3: row: expected 7 columns, found 5");
        let e = only(schools("100001,A,B,c@d.ef,,,extra\n"));
        assert_eq!(e.to_string(), "line 2: row: expected 6 columns, found 7");
    }

    #[test]
    fn non_utf8_is_rejected() {
        let mut data = format!("{RH}{GOOD_PUPIL}").into_bytes();
        data.extend_from_slice(b"P2,An\xffn,Lee,,2015-03-04,,100001\n");
        let e = only(parse_roll(&data[..], &urns(), today()));
        assert_eq!(e.to_string(), "line 3: row: not valid UTF-8");

        // A non-UTF-8 header is a wrong header.
        let e = only(parse_schools(
            &b"urn\xff,name,dsl_name,dsl_email,deputy_email,phone\n"[..],
        ));
        assert_eq!(at(&e), (1, "header"));
    }

    #[test]
    fn other_columns_of_a_non_utf8_row_are_still_checked() {
        let data = [RH.as_bytes(), b"P1,\xff,Lee,,2015-02-30,,100001\n"].concat();
        assert_eq!(
            lines(parse_roll(&data[..], &urns(), today())),
            [
                "line 2: row: not valid UTF-8",
                "line 2: date_of_birth: impossible date (must be YYYY-MM-DD)"
            ]
        );
    }

    #[test]
    fn bad_email_is_rejected() {
        let e = only(schools("100001,A,B,not-an-email,,\n"));
        assert_eq!(
            e.to_string(),
            "line 2: dsl_email: not a valid email address"
        );
        let e = only(schools("100001,A,B,a@b.cd,x@y,\n"));
        assert_eq!(
            e.to_string(),
            "line 2: deputy_email: not a valid email address"
        );
        let long = format!("{}@example.org", "a".repeat(250));
        let e = only(schools(&format!("100001,A,B,{long},,\n")));
        assert_eq!(
            e.to_string(),
            "line 2: dsl_email: too long (at most 254 characters)"
        );
    }

    #[test]
    fn missing_email_is_rejected() {
        let e = only(schools("100001,A,B,,,\n"));
        assert_eq!(e.to_string(), "line 2: dsl_email: required, but empty");
    }

    #[test]
    fn email_rules() {
        for good in [
            "a@b.cd",
            "first.last+tag@sub.example.co.uk",
            "x_y-z@a-b.org",
            "o'neil@school.sch.uk",
        ] {
            assert!(is_valid_email(good), "{good}");
        }
        for bad in [
            "",
            "a",
            "@b.cd",
            "a@",
            "a@b",
            "a@@b.cd",
            "a@b@c.de",
            "a b@c.de",
            "a@b .cd",
            "a@.b.cd",
            "a@b..cd",
            "a@b.cd.",
            ".a@b.cd",
            "a..b@c.de",
            "a@-b.cd",
            "a@b-.cd",
            "a,b@c.de",
            "<a@b.cd>",
            "a@b_c.de",
            "ä@b.cd",
            "a@b\u{a0}.cd",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_school_urn_is_rejected() {
        let e = only(roll("P1,Ann,Lee,,2015-03-04,,999999\n"));
        assert_eq!(
            e.to_string(),
            "line 2: school_urn: no school with this urn in the school directory"
        );
        let e = only(roll("P1,Ann,Lee,,2015-03-04,,12345\n"));
        assert_eq!(
            e.to_string(),
            "line 2: school_urn: must be 6 or 7 digits (a DfE URN)"
        );
    }

    #[test]
    fn impossible_date_is_rejected() {
        let e = only(roll(
            "P1,Ann,Lee,,2015-03-04,,100001\nP2,Ann,Lee,,2014-02-30,,100001\n",
        ));
        assert_eq!(
            e.to_string(),
            "line 3: date_of_birth: impossible date (must be YYYY-MM-DD)"
        );
        for bad in ["2015-13-01", "2015-00-10", "2015-04-31", "2015-01-00"] {
            let e = only(roll(&format!("P1,Ann,Lee,,{bad},,100001\n")));
            assert_eq!(
                e.to_string(),
                "line 2: date_of_birth: impossible date (must be YYYY-MM-DD)",
                "{bad}"
            );
        }
        for bad in [
            "2015-3-4",
            "04/03/2015",
            "2015-03-04T00:00",
            "2015_03_04",
            " 2015-03-04",
            "２０１５-03-04",
        ] {
            let e = only(roll(&format!("P1,Ann,Lee,,{bad},,100001\n")));
            assert_eq!(
                e.to_string(),
                "line 2: date_of_birth: not a date in the form YYYY-MM-DD",
                "{bad}"
            );
        }
        // Leap day is real.
        assert!(roll("P1,Ann,Lee,,2016-02-29,,100001\n").is_ok());
    }

    #[test]
    fn future_date_is_rejected() {
        let e = only(roll("P1,Ann,Lee,,2025-06-02,,100001\n"));
        assert_eq!(e.to_string(), "line 2: date_of_birth: in the future");
    }

    #[test]
    fn duplicate_pupil_id_is_rejected() {
        let e = only(roll(
            "P1,Ann,Lee,,2015-03-04,,100001\nP2,Bob,Lee,,2015-03-04,,100001\nP1,Cat,Lee,,2015-03-04,,100001\n",
        ));
        assert_eq!(
            e.to_string(),
            "line 4: pupil_id: duplicate (first on line 2)"
        );
        // Case-sensitive: p1 is a different key.
        assert!(roll("P1,Ann,Lee,,2015-03-04,,100001\np1,Bob,Lee,,2015-03-04,,100001\n").is_ok());
    }

    #[test]
    fn duplicate_urn_is_rejected() {
        let e = only(schools(
            "100001,A,B,a@b.cd,,\n100002,A,B,a@b.cd,,\n100001,C,D,c@d.ef,,\n",
        ));
        assert_eq!(e.to_string(), "line 4: urn: duplicate urn, first on line 2");
    }

    #[test]
    fn empty_required_fields_are_rejected() {
        assert_eq!(
            lines(roll(",,   ,,,,\n")),
            [
                "line 2: pupil_id: required, but empty",
                "line 2: given_name: required, but empty",
                "line 2: family_name: only whitespace",
                "line 2: date_of_birth: required, but empty",
                "line 2: school_urn: required, but empty",
            ]
        );
        assert_eq!(
            lines(schools(",,,,,\n")),
            [
                "line 2: urn: required, but empty",
                "line 2: name: required, but empty",
                "line 2: dsl_name: required, but empty",
                "line 2: dsl_email: required, but empty",
            ]
        );
    }

    #[test]
    fn empty_file_is_rejected() {
        for data in ["", "\u{feff}", "\n\r\n"] {
            let e = only(parse_schools(data.as_bytes()));
            assert_eq!(e.to_string(), "line 1: file: empty (no header row)");
            let e = only(parse_roll(data.as_bytes(), &urns(), today()));
            assert_eq!(e.to_string(), "line 1: file: empty (no header row)");
        }
    }

    #[test]
    fn header_without_rows_is_rejected() {
        let e = only(parse_roll(format!("{RH}\n").as_bytes(), &urns(), today()));
        assert_eq!(e.to_string(), "line 1: file: no rows");
        let e = only(parse_schools(SH.trim_end().as_bytes()));
        assert_eq!(e.to_string(), "line 1: file: no rows");
    }

    #[test]
    fn multi_line_quoted_field_shifts_line_numbers() {
        let body = "P1,\"Ann\nMarie\",Lee,,2015-03-04,,100001\n\
                    P2,\"Bob\",\"Lee\",\"a;\nb;\nc\",2015-03-04,,100001\n\
                    P3,Cat,Lee,,2015-02-30,,100001\n";
        assert_eq!(
            lines(roll(body)),
            [
                "line 2: given_name: contains a control character",
                "line 4: other_names: contains a control character",
                "line 7: date_of_birth: impossible date (must be YYYY-MM-DD)",
            ]
        );
    }

    #[test]
    fn line_numbers_survive_crlf_cr_and_blank_lines() {
        let bad = "P9,Ann,Lee,,2015-02-30,,100001";
        let bad2 = "P8,Ann,Lee,,2015-02-30,,100001";
        let good = "P1,Ann,Lee,,2015-03-04,,100001";
        let data = format!("{}\r\n{good}\r\n\r\n{bad}\r\n\n\n{bad2}\r\n", RH.trim_end());
        let got: Vec<_> = rejected(parse_roll(data.as_bytes(), &urns(), today()))
            .iter()
            .map(|e| e.line)
            .collect();
        assert_eq!(got, [4, 7]);

        // Leading blank lines move the header too.
        let data = format!("\n\n{RH}{bad}\n");
        let got: Vec<_> = rejected(parse_roll(data.as_bytes(), &urns(), today()))
            .iter()
            .map(|e| e.line)
            .collect();
        assert_eq!(got, [4]);

        // Last row without a final newline.
        let data = format!("{RH}{good}\n{bad}");
        assert_eq!(
            rejected(parse_roll(data.as_bytes(), &urns(), today()))[0].line,
            3
        );

        // Old Mac line ends: a lone CR ends a line too.
        let data = format!("{}\r{good}\r\r{bad}\r{bad2}", RH.trim_end());
        let got: Vec<_> = rejected(parse_roll(data.as_bytes(), &urns(), today()))
            .iter()
            .map(|e| e.line)
            .collect();
        assert_eq!(got, [4, 5]);
    }

    /// Hands out one byte per read: the line tracker and BOM handling must not
    /// depend on how the input is chunked.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn chunking_does_not_matter() {
        let data = format!(
            "\u{feff}{}\r\n\r\nP1,\"A\r\nB\",Lee,,2015-03-04,,100001\r\nP2,Ann,Lee,,2015-02-30,,100001\r\n",
            RH.trim_end()
        );
        let want = lines(parse_roll(data.as_bytes(), &urns(), today()));
        assert_eq!(
            want,
            [
                "line 3: given_name: contains a control character",
                "line 5: date_of_birth: impossible date (must be YYYY-MM-DD)"
            ]
        );
        assert_eq!(
            lines(parse_roll(Trickle(data.as_bytes()), &urns(), today())),
            want
        );
    }

    #[test]
    fn many_bad_rows_are_all_reported() {
        let mut body = String::new();
        for i in 0..50 {
            body.push_str(GOOD_PUPIL.replace("P1", &format!("G{i}")).as_str());
            body.push_str(&format!("B{i},,Lee,,2015-02-30,AB1 2CD,999999\n"));
        }
        let list = rejected(roll(&body));
        assert_eq!(list.len(), 150);
        for (i, row) in list.chunks(3).enumerate() {
            let line = 3 + 2 * i as u64;
            assert_eq!(
                row.iter().map(at).collect::<Vec<_>>(),
                [
                    (line, "given_name"),
                    (line, "date_of_birth"),
                    (line, "school_urn")
                ]
            );
        }
    }

    #[test]
    fn one_problem_per_column_per_row() {
        // A pupil_id that is both malformed and repeated gets one problem.
        let e = rejected(roll(
            "P!,Ann,Lee,,2015-03-04,,100001\nP!,Ann,Lee,,2015-03-04,,100001\n",
        ));
        assert_eq!(
            e.iter().map(at).collect::<Vec<_>>(),
            [(2, "pupil_id"), (3, "pupil_id")]
        );
    }

    #[test]
    fn repeats_are_listed_in_line_order() {
        // Repeats are found after the read and merged in: after a row's
        // `row` problem, before its other columns.
        let mut data = format!("{RH}P1,Ann,Lee,,2015-03-04,,100001\n").into_bytes();
        data.extend_from_slice(b"P1,A\xffn,Lee,,2015-02-30,,100001\n");
        data.extend_from_slice(b"P2,Ann,,,2015-03-04,,100001\n");
        data.extend_from_slice(b"P1,Ann,Lee,,2015-03-04,,100001\n");
        data.extend_from_slice(b"P2,Ann,Lee,,2015-03-04,,100001\n");
        assert_eq!(
            lines(parse_roll(&data[..], &urns(), today())),
            [
                "line 3: row: not valid UTF-8",
                "line 3: pupil_id: duplicate (first on line 2)",
                "line 3: date_of_birth: impossible date (must be YYYY-MM-DD)",
                "line 4: family_name: required, but empty",
                "line 5: pupil_id: duplicate (first on line 2)",
                "line 6: pupil_id: duplicate (first on line 4)",
            ]
        );
    }

    #[test]
    fn capped_list_with_repeats_keeps_the_first_problems() {
        // 1,200 rows with one pupil_id and an impossible date: 1,199 repeats
        // + 1,200 dates; the first 1,000 by line are listed.
        let body = "P1,Ann,Lee,,2015-02-30,,100001\n".repeat(1200);
        let list = rejected(roll(&body));
        assert_eq!(list.len(), MAX_REPORTED_PROBLEMS + 1);
        assert_eq!(
            list[..4].iter().map(at).collect::<Vec<_>>(),
            [
                (2, "date_of_birth"),
                (3, "pupil_id"),
                (3, "date_of_birth"),
                (4, "pupil_id")
            ]
        );
        assert_eq!(at(&list[999]), (502, "pupil_id"));
        assert_eq!(list[1000].to_string(), "… and 1399 more");
    }

    #[test]
    fn problem_list_is_capped() {
        let body = "P1,Ann,Lee,,2015-02-30,,100001\n"
            .repeat(1500)
            .replace("P1,", ",");
        let list = rejected(roll(&body));
        // Each row: pupil_id required + impossible date = 3000 problems.
        assert_eq!(list.len(), MAX_REPORTED_PROBLEMS + 1);
        assert_eq!(list[999].line, 501);
        assert_eq!(
            list[1000],
            RowError {
                line: 0,
                column: String::new(),
                why: "… and 2000 more".into()
            }
        );
        let shown = ImportError::Rejected(list).to_string();
        assert!(shown.ends_with("\n  … and 2000 more"), "{shown}");
    }

    #[test]
    fn other_field_rules() {
        let row = |f: &str| roll(&format!("{f}\n"));
        let one = |f: &str| only(row(f)).to_string();
        assert_eq!(
            one("P1,Ann,Lee,a;b;c;d;e;f;g;h;i;j;k,2015-03-04,,100001"),
            "line 2: other_names: too many names (at most 10)"
        );
        assert!(row("P1,Ann,Lee,a;b;c;d;e;f;g;h;i;j;;  ;,2015-03-04,,100001").is_ok());
        let long = "x".repeat(101);
        assert_eq!(
            one(&format!("P1,Ann,Lee,a;{long},2015-03-04,,100001")),
            "line 2: other_names: a name is too long (at most 100 characters each)"
        );
        assert_eq!(
            one(&format!("P1,{long},Lee,,2015-03-04,,100001")),
            "line 2: given_name: too long (at most 100 characters)"
        );
        assert!(row(&format!("P1,{},Lee,,2015-03-04,,100001", "é".repeat(100))).is_ok());
        assert_eq!(
            one("P1,Ann,Lee,,2015-03-04,AB1-2CD,100001"),
            "line 2: postcode: may contain only letters, digits and spaces"
        );
        assert_eq!(
            one("P1,Ann,Lee,,2015-03-04,AB12 3CDEFG,100001"),
            "line 2: postcode: too long (at most 10 characters)"
        );
        assert_eq!(
            one("P 1,Ann,Lee,,2015-03-04,,100001"),
            "line 2: pupil_id: may contain only A-Z a-z 0-9 - _ ."
        );
        assert_eq!(
            one(&format!("{},Ann,Lee,,2015-03-04,,100001", "p".repeat(65))),
            "line 2: pupil_id: too long (at most 64 characters)"
        );
        assert_eq!(
            one("P1,Ann\u{202e},Lee,,2015-03-04,,100001"),
            "line 2: given_name: contains a control character"
        );
        assert_eq!(
            one("P1,Ann\tB,Lee,,2015-03-04,,100001"),
            "line 2: given_name: contains a control character"
        );

        let one = |f: &str| only(schools(&format!("{f}\n"))).to_string();
        assert_eq!(
            one("10001,A,B,a@b.cd,,"),
            "line 2: urn: must be 6 or 7 digits (a DfE URN)"
        );
        assert_eq!(
            one("10000001,A,B,a@b.cd,,"),
            "line 2: urn: must be 6 or 7 digits (a DfE URN)"
        );
        assert_eq!(
            one(&format!("100001,{},B,a@b.cd,,", "n".repeat(201))),
            "line 2: name: too long (at most 200 characters)"
        );
        assert_eq!(
            one("100001,A,B,a@b.cd,,01234 x"),
            "line 2: phone: may contain only digits, spaces, + ( ) -"
        );
        assert_eq!(
            one(&format!("100001,A,B,a@b.cd,,{}", "1".repeat(31))),
            "line 2: phone: too long (at most 30 characters)"
        );
        assert_eq!(
            one("100001,A,B,a@b.cd,,()"),
            "line 2: phone: must contain at least one digit"
        );
        assert_eq!(
            one("100001,A\u{7},B,a@b.cd,,"),
            "line 2: name: contains a control character"
        );
        // Whitespace-only optional fields are empty, but control characters
        // are refused even there.
        assert_eq!(schools("100001,A,B,a@b.cd, , \n").unwrap()[0].phone, None);
        assert_eq!(
            one("100001,A,B,a@b.cd,\t,"),
            "line 2: deputy_email: contains a control character"
        );
        assert_eq!(
            only(roll("P1,Ann,Lee,,2015-03-04,\t,100001\n")).to_string(),
            "line 2: postcode: contains a control character"
        );
    }

    #[test]
    fn rows_round_trip_through_serde() {
        let pupils = roll("P1,Ann,Lee,Amy;Mia,2015-03-04,AB1 2CD,100001\n").unwrap();
        let json = serde_json::to_string(&pupils).unwrap();
        assert!(json.contains(r#""date_of_birth":"2015-03-04""#), "{json}");
        assert_eq!(serde_json::from_str::<Vec<Pupil>>(&json).unwrap(), pupils);
        let schools = schools("100001,A,B,a@b.cd,,\n").unwrap();
        let json = serde_json::to_string(&schools).unwrap();
        assert_eq!(serde_json::from_str::<Vec<School>>(&json).unwrap(), schools);
    }

    #[test]
    fn errors_never_quote_personal_data() {
        let data = "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
                    PID-SECRET-1,Zebediah,Quixotic-Marsh,Zebediah,2031-02-30,QX9 7ZZ,100001\n\
                    PID-SECRET-1,Zebediah\u{1},Quixotic-Marsh\u{1},Zebediah\u{1},2031-02-28,QX9 7ZZ!,QX9 7ZZ\n\
                    PID-SECRET-1!,Zebediah,Quixotic-Marsh,Zebediah,2031-2-1,QX9 7ZZ QX9,999999\n\
                    PID-SECRET-1,Zebediah,Quixotic-Marsh\n";
        let roll_err = parse_roll(data.as_bytes(), &urns(), today()).unwrap_err();
        let schools_err = parse_schools(
            "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
             100001,Quixotic School,Zebediah Quixotic-Marsh,zeb@@x,zeb@@x,QX9 7ZZ\n\
             100001,Quixotic School,Zebediah Quixotic-Marsh,zeb@x.org,zeb@,2031\u{1}\n"
                .as_bytes(),
        )
        .unwrap_err();
        let header_err = parse_roll(
            "Zebediah,Quixotic,2031,QX9,zeb@,PID-SECRET\n".as_bytes(),
            &urns(),
            today(),
        )
        .unwrap_err();
        let mut reported = 0;
        for err in [roll_err, schools_err, header_err] {
            if let ImportError::Rejected(list) = &err {
                reported += list.len();
            }
            for shown in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
                for secret in ["Zebediah", "Quixotic", "2031", "QX9", "zeb@", "PID-SECRET"] {
                    assert!(!shown.contains(secret), "{secret} leaked into {shown}");
                }
            }
        }
        assert_eq!(reported, 20);
    }

    #[test]
    fn debug_shows_no_personal_data() {
        let pupil = Pupil {
            pupil_id: "PID-SECRET-1".into(),
            given_name: "Zebediah".into(),
            family_name: "Quixotic-Marsh".into(),
            other_names: vec!["Zebediah".into()],
            date_of_birth: Date::new(2015, 3, 4).unwrap(),
            postcode: Some("QX9 7ZZ".into()),
            school_urn: "100001".into(),
        };
        assert_eq!(
            format!("{pupil:?}"),
            r#"Pupil { school_urn: "100001", .. }"#
        );
        let school = School {
            urn: "100001".into(),
            name: "Oak Academy".into(),
            dsl_name: "Zebediah".into(),
            dsl_email: "zeb@x.org".into(),
            deputy_email: Some("zeb@y.org".into()),
            phone: Some("0123".into()),
        };
        assert_eq!(
            format!("{school:?}"),
            r#"School { urn: "100001", name: "Oak Academy", .. }"#
        );
    }

    #[test]
    fn read_errors_are_io_errors() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"))
            }
        }
        assert!(
            matches!(parse_schools(Broken), Err(ImportError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe)
        );
        let e = parse_roll(Broken, &urns(), today()).unwrap_err();
        assert_eq!(e.to_string(), "cannot read the file: gone");
    }

    #[test]
    fn rejection_message_lists_every_problem() {
        let err = roll("P1,,Lee,,2015-03-04,,100001\nP2,Ann,Lee,,2015-03-04,,1\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the file was rejected (2 problem(s)); nothing was imported:\n  \
             line 2: given_name: required, but empty\n  \
             line 3: school_urn: must be 6 or 7 digits (a DfE URN)"
        );
    }

    /// Every key of one length hashes alike: collisions on demand.
    #[derive(Default)]
    struct LenHasher(u64);

    impl std::hash::Hasher for LenHasher {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0 += bytes.len() as u64;
        }
    }

    fn colliding_log(ids: &[&str]) -> KeyLog<std::hash::BuildHasherDefault<LenHasher>> {
        let mut keys = KeyLog::<std::hash::BuildHasherDefault<LenHasher>>::default();
        for (i, id) in ids.iter().enumerate() {
            keys.push(id, i as u64 + 2);
        }
        keys
    }

    fn roll_of(ids: &[&str]) -> Vec<u8> {
        let mut data = RH.to_owned();
        for id in ids {
            data.push_str(&format!("{id},Ann,Lee,,2015-03-04,,100001\n"));
        }
        data.into_bytes()
    }

    #[test]
    fn colliding_hashes_are_compared_exactly() {
        // AA, BB and CC share a hash; only real repeats are reported, each
        // with the line its key first appeared on.
        let ids = ["AA", "BB", "AA", "CC", "BB", "AA", "DDD", "DDD"];
        let repeats = colliding_log(&ids)
            .repeats(io::Cursor::new(roll_of(&ids)), &ROLL_HEADER)
            .unwrap();
        assert_eq!(repeats, [(4, 2), (6, 3), (7, 2), (9, 8)]);

        // No collision at all: the file is not read again.
        let repeats = colliding_log(&["A", "BB", "CCC"])
            .repeats(io::Cursor::new(Vec::new()), &ROLL_HEADER)
            .unwrap();
        assert!(repeats.is_empty());
    }

    #[test]
    fn a_file_that_changes_between_the_passes_is_an_io_error() {
        let ids = ["AA", "BB", "AA"];
        for changed in [&["AA", "BBB", "AA"][..], &["AA", "BB"], &["AA", "BB", "A"]] {
            let err = colliding_log(&ids)
                .repeats(io::Cursor::new(roll_of(changed)), &ROLL_HEADER)
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "cannot read the file: the file changed while it was being imported"
            );
        }
    }

    #[derive(Debug)]
    enum SinkError {
        Import(ImportError),
        Full,
    }

    impl From<ImportError> for SinkError {
        fn from(e: ImportError) -> Self {
            Self::Import(e)
        }
    }

    fn each(
        body: &str,
        mut sink: impl FnMut(Pupil) -> Result<(), SinkError>,
    ) -> Result<u64, SinkError> {
        let data = format!("{RH}{body}");
        parse_roll_each(
            io::Cursor::new(data.as_bytes()),
            &urns(),
            today(),
            &mut sink,
        )
    }

    #[test]
    fn parse_roll_each_streams_pupils_in_file_order() {
        let mut seen = Vec::new();
        let body = "P1,Ann,Lee,,2015-03-04,,100001\nP2,Bo,Ng,,2015-03-04,,100001\nP3,Cy,Oh,,2015-03-04,,1000002\n";
        let n = each(body, |p| {
            seen.push(p.pupil_id);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 3);
        assert_eq!(seen, ["P1", "P2", "P3"]);

        // The sink's error ends the read and is handed back.
        let mut calls = 0;
        let r = each(body, |_| {
            calls += 1;
            if calls == 2 {
                Err(SinkError::Full)
            } else {
                Ok(())
            }
        });
        assert!(matches!(r, Err(SinkError::Full)), "{r:?}");
        assert_eq!(calls, 2);
    }

    #[test]
    fn parse_roll_each_stops_feeding_at_the_first_problem_and_still_reports_all() {
        let mut seen = Vec::new();
        let body = "P1,Ann,Lee,,2015-03-04,,100001\nP2,Bo,Ng,,2015-02-30,,100001\nP3,Cy,Oh,,2015-03-04,,1\nP4,Di,Ma,,2015-03-04,,100001\n";
        let r = each(body, |p| {
            seen.push(p.pupil_id);
            Ok(())
        });
        assert_eq!(seen, ["P1"]);
        match r {
            Err(SinkError::Import(ImportError::Rejected(list))) => assert_eq!(
                list.iter().map(at).collect::<Vec<_>>(),
                [(3, "date_of_birth"), (4, "school_urn")]
            ),
            other => panic!("{other:?}"),
        }

        // A repeat is only known at the end: every row went to the sink,
        // and the file is still rejected.
        let mut seen = Vec::new();
        let body = "P1,Ann,Lee,,2015-03-04,,100001\nP2,Bo,Ng,,2015-03-04,,100001\nP1,Cy,Oh,,2015-03-04,,100001\n";
        let r = each(body, |p| {
            seen.push(p.pupil_id);
            Ok(())
        });
        assert_eq!(seen, ["P1", "P2", "P1"]);
        match r {
            Err(SinkError::Import(e)) => assert_eq!(
                lines::<()>(Err(e)),
                ["line 4: pupil_id: duplicate (first on line 2)"]
            ),
            other => panic!("{other:?}"),
        }
    }

    /// A generated roll of `rows` valid pupils across 2,000 schools.
    fn generated_roll(rows: usize) -> (Vec<u8>, HashSet<String>) {
        let urns: HashSet<String> = (0..2000).map(|i| format!("{}", 100_000 + i)).collect();
        let mut data = RH.as_bytes().to_vec();
        for i in 0..rows {
            let line = format!(
                "LA{i:09},Given{},Family-{},\"Amy; Mia\",{:04}-{:02}-{:02},AB{} {}CD,{}\n",
                i % 997,
                i % 7919,
                2008 + i % 14,
                1 + i % 12,
                1 + i % 28,
                i % 99,
                i % 9,
                100_000 + i % 2000
            );
            data.extend_from_slice(line.as_bytes());
        }
        (data, urns)
    }

    #[test]
    fn generated_roll_parses() {
        let (data, urns) = generated_roll(5_000);
        let pupils = parse_roll(&data[..], &urns, today()).unwrap();
        assert_eq!(pupils.len(), 5_000);
        assert_eq!(pupils[4_999].pupil_id, "LA000004999");
    }

    /// Throughput check, not a timed assertion:
    /// `cargo test --release -- --ignored --nocapture roll_throughput`.
    #[test]
    #[ignore = "throughput report; run in release"]
    fn roll_throughput() {
        let rows = 1_000_000;
        let (data, urns) = generated_roll(rows);
        let start = std::time::Instant::now();
        let pupils = parse_roll(&data[..], &urns, today()).unwrap();
        let took = start.elapsed().as_secs_f64();
        assert_eq!(pupils.len(), rows);
        eprintln!(
            "{rows} rows, {:.1} MB in {took:.3} s: {:.2} M rows/s, {:.0} MB/s",
            data.len() as f64 / 1e6,
            rows as f64 / took / 1e6,
            data.len() as f64 / took / 1e6
        );
    }
}

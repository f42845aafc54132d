//! Reading a CSV import: the header check, records with their true line
//! numbers, collecting every problem as `line N: column: why` (capped), and
//! the in-memory / two-pass plumbing both imports share.

use super::*;

/// Reads all of a small input, so it can be read twice (see [`KeyLog`]).
pub(super) fn in_memory(mut input: impl Read) -> Result<io::Cursor<Vec<u8>>, ImportError> {
    let mut buf = Vec::new();
    input.read_to_end(&mut buf)?;
    Ok(io::Cursor::new(buf))
}

/// One import file, start to end: reads every row (see [`read_file`]), with
/// `row` validating it and logging its key (column 0, `key_column`), then
/// finds repeated keys. Returns the number of data rows.
pub(super) fn parse_file<const N: usize, R: Read + Seek, E: From<ImportError>>(
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

/// Why a field broke its rule. Never contains the field's value.
pub(super) type Why = Cow<'static, str>;

pub(super) const REQUIRED: &str = "required, but empty";
pub(super) const CONTROL: &str = "contains a control character";

/// The problems found so far: the first [`MAX_REPORTED_PROBLEMS`] kept, all counted.
#[derive(Default)]
pub(super) struct Problems {
    list: Vec<RowError>,
    total: u64,
}

impl Problems {
    pub(super) fn add(&mut self, line: u64, column: &str, why: impl Into<Why>) {
        self.total += 1;
        if self.list.len() < MAX_REPORTED_PROBLEMS {
            self.list.push(RowError {
                line,
                column: column.to_owned(),
                why: why.into().into_owned(),
            });
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Adds repeats found after the read, keeping the list in line order:
    /// on its line, a repeat follows only a `row` problem (the key column is
    /// the first column; a row with an invalid key logs no key).
    pub(super) fn add_repeats(
        &mut self,
        repeats: Vec<(u64, u64)>,
        column: &str,
        why: impl Fn(u64) -> String,
    ) {
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

    pub(super) fn into_result(mut self) -> Result<(), ImportError> {
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
pub(super) fn check<'a, T>(
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
pub(super) fn read_file<const N: usize, R: Read, E: From<ImportError>>(
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

pub(super) fn next_record<R: Read>(
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

pub(super) fn header_matches<const N: usize>(record: &ByteRecord, header: &[&str; N]) -> bool {
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
pub(super) fn record_line<R: Read>(
    rdr: &mut csv::Reader<LineTracker<R>>,
    record: &ByteRecord,
) -> u64 {
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
pub(super) struct LineTracker<R> {
    inner: R,
    offset: u64,
    line: u64,
    after_break: bool,
    after_cr: bool,
    starts: VecDeque<(u64, u64)>,
}

impl<R> LineTracker<R> {
    pub(super) fn new(inner: R) -> Self {
        LineTracker {
            inner,
            offset: 0,
            line: 1,
            after_break: true,
            after_cr: false,
            starts: VecDeque::new(),
        }
    }

    pub(super) fn scan(&mut self, bytes: &[u8]) {
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

    pub(super) fn line_at_or_after(&mut self, byte: u64) -> Option<u64> {
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

//! Delimited text with a header row. Values stay the strings they are in the file:
//! `007` stays `"007"`, an empty field is `""`.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead};
use std::ops::Range;

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};

use super::{count_newlines, Raw, ReadError, MAX_RAW};
use crate::canonical::{write_str, write_valid_str, TextError};
use crate::limits::{Limits, Size};

/// Reads records with `csv_core` directly: the record buffers are reused from record
/// to record, and line numbers are counted here, exactly, whatever the line endings,
/// blank lines or quoted newlines (the `csv` crate's positions lag behind on CRLF).
pub struct CsvRecords {
    input: Input,
    core: Reader,
    /// The current record: all field bytes back to back, and each field's end.
    fields: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
    delimiter: u8,
    /// The line the input is positioned on, 1-based.
    line: u64,
    /// Bytes a record may have, and fields.
    max_bytes: usize,
    max_fields: usize,
    /// The current record's bytes after its first line, kept while they fit in
    /// `max_bytes`: a quote left open to the end of the file hands them back.
    tail: Vec<u8>,
    /// Each column's `"name":` prefix, escaped once for the whole file.
    keys: Vec<Vec<u8>>,
    names: Vec<String>,
    /// Column indices in the canonical (sorted by name) order.
    order: Vec<usize>,
    /// Column indices in the order jsonb keeps keys: shortest first, then bytewise.
    jsonb_order: Vec<usize>,
    /// Where each column's value is in the canonical JSON last written, in file order.
    values: Vec<Range<usize>>,
    /// A headerless file's first record, read to count its columns: its line.
    unread: Option<u64>,
}

/// The file's bytes, with the bytes of a record given back read first.
struct Input {
    inner: Box<dyn BufRead + Send>,
    replay: Vec<u8>,
    at: usize,
}

impl Input {
    fn fill(&mut self) -> io::Result<&[u8]> {
        if self.at < self.replay.len() {
            return Ok(&self.replay[self.at..]);
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        if self.at < self.replay.len() {
            self.at += n;
            if self.at == self.replay.len() {
                self.replay.clear();
                self.at = 0;
            }
        } else {
            self.inner.consume(n);
        }
    }

    /// Reads `bytes` before the rest of the file. Only at the end of the file, where
    /// any bytes given back before have been read.
    fn give_back(&mut self, bytes: &mut Vec<u8>) {
        std::mem::swap(&mut self.replay, bytes);
        self.at = 0;
        bytes.clear();
    }
}

/// Why a record was read past without keeping its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TooLarge {
    Bytes,
    Fields,
}

impl CsvRecords {
    /// Reads the header row, or with `header` false names the columns `column_1`…
    /// after the first record, which is then the first one returned.
    pub fn new(
        mut input: Box<dyn BufRead + Send>,
        delimiter: u8,
        header: bool,
        limits: &Limits,
    ) -> Result<Self, ReadError> {
        let bom = input
            .fill_buf()
            .map_err(|e| ReadError::from_io(e, 1))?
            .starts_with(b"\xef\xbb\xbf");
        if bom {
            input.consume(3);
        }
        let mut reader = Self {
            input: Input {
                inner: input,
                replay: Vec::new(),
                at: 0,
            },
            core: ReaderBuilder::new().delimiter(delimiter).build(),
            fields: vec![0; 4096],
            ends: vec![0; 64],
            len: 0,
            delimiter,
            line: 1,
            max_bytes: limits.record_bytes,
            max_fields: limits.columns,
            tail: Vec::new(),
            keys: Vec::new(),
            names: Vec::new(),
            order: Vec::new(),
            jsonb_order: Vec::new(),
            values: Vec::new(),
            unread: None,
        };
        let first = reader.read_record().map_err(|e| match e {
            ReadError::Record { line, reason, .. } => ReadError::Malformed {
                line,
                reason: format!("the first row cannot be read: {reason}"),
            },
            other => other,
        })?;
        if let Some(line) = first {
            if header {
                reader.names = column_names(&reader)?;
            } else {
                reader.names = (1..=reader.len).map(|i| format!("column_{i}")).collect();
                reader.unread = Some(line);
            }
        }
        for name in &reader.names {
            let mut key = Vec::with_capacity(name.len() + 3);
            write_str(&mut key, name.as_bytes()).map_err(|e| header_error(name, e))?;
            key.push(b':');
            reader.keys.push(key);
        }
        let names = &reader.names;
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by(|&a, &b| names[a].cmp(&names[b]));
        let mut jsonb_order = order.clone();
        jsonb_order.sort_by_key(|&i| (names[i].len(), names[i].as_bytes()));
        reader.order = order;
        reader.jsonb_order = jsonb_order;
        reader.values = vec![0..0; reader.names.len()];
        Ok(reader)
    }

    /// The column names, in file order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The lines read so far.
    pub fn lines(&self) -> u64 {
        self.line - 1
    }

    /// Where each column's value (a JSON string) is in the canonical JSON of the record
    /// last returned, in file order: keys are read off it without parsing the JSON.
    pub fn values(&self) -> &[Range<usize>] {
        &self.values
    }

    /// Writes the record last returned, whose canonical JSON is `json`, with its keys in
    /// the order PostgreSQL's jsonb keeps them (see [`crate::jsonb_order`]), from the
    /// columns' order found once for the file.
    pub fn write_jsonb_order(&self, json: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.push(b'{');
        for (n, &i) in self.jsonb_order.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&self.keys[i]);
            out.extend_from_slice(&json[self.values[i].clone()]);
        }
        out.push(b'}');
    }

    /// The record last returned: its fields' bytes end to end (each valid UTF-8), and
    /// where each field ends.
    pub fn record(&self) -> (&[u8], &[usize]) {
        let ends = &self.ends[..self.len];
        (&self.fields[..ends.last().copied().unwrap_or(0)], ends)
    }

    fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.fields[start..self.ends[i]]
    }

    /// Reads the next record into the reused buffers; returns the line it starts on.
    ///
    /// A record is read in bounded memory whatever it holds: past the limits of bytes
    /// or fields it is read to its end without keeping its fields, and rejected. A
    /// quote left open makes the parser run to the end of the file: that record (odd
    /// quotes, more than one line, ended by the end of the file) is rejected with the
    /// line the quote opened on, and when its bytes were kept, reading goes on at the
    /// line after that one, so the rows a stray quote swallowed still load.
    fn read_record(&mut self) -> Result<Option<u64>, ReadError> {
        self.skip_blank_lines()?;
        let start = self.line;
        let (mut out, mut end, mut size) = (0, 0, 0);
        let mut quotes = 0u64;
        let mut too_large = None;
        let mut preview = Vec::new();
        let mut keep_tail = true;
        self.tail.clear();
        loop {
            let input = self
                .input
                .fill()
                .map_err(|e| ReadError::from_io(e, self.line))?;
            let at_eof = input.is_empty();
            let (result, read, wrote, ended) =
                self.core
                    .read_record(input, &mut self.fields[out..], &mut self.ends[end..]);
            let consumed = &input[..read];
            let first_line = self.line == start;
            for &b in consumed {
                self.line += u64::from(b == b'\n');
                quotes += u64::from(b == b'"');
            }
            if keep_tail && self.line > start {
                let after = if first_line {
                    memchr::memchr(b'\n', consumed).map_or(read, |at| at + 1)
                } else {
                    0
                };
                if self.tail.len() + (read - after) > self.max_bytes {
                    keep_tail = false;
                    self.tail = Vec::new();
                } else {
                    self.tail.extend_from_slice(&consumed[after..]);
                }
            }
            self.input.consume(read);
            size += read;
            if too_large.is_none() && size > self.max_bytes {
                too_large = Some(TooLarge::Bytes);
            }
            match too_large {
                // Past a bound the fields are dropped as they come.
                Some(_) => {
                    if preview.is_empty() {
                        preview = self.joined(out + wrote, end + ended);
                    }
                    (out, end) = (0, 0);
                }
                None => (out, end) = (out + wrote, end + ended),
            }
            match result {
                ReadRecordResult::InputEmpty => {}
                // Fields are never longer than the bytes they came from: a record within
                // the bound fits in as many bytes.
                ReadRecordResult::OutputFull if too_large.is_none() => {
                    let grown = (self.fields.len() * 2).min(self.max_bytes.max(4096) + 1);
                    self.fields.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull
                    if too_large.is_none() && self.ends.len() > self.max_fields =>
                {
                    too_large = Some(TooLarge::Fields);
                    preview = self.joined(out, end);
                    (out, end) = (0, 0);
                }
                ReadRecordResult::OutputEndsFull if too_large.is_none() => {
                    let grown = (self.ends.len() * 2).min(self.max_fields + 1);
                    self.ends.resize(grown, 0);
                }
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {}
                ReadRecordResult::Record => {
                    self.len = end;
                    let runaway = at_eof && quotes % 2 == 1 && self.line > start;
                    if runaway && keep_tail {
                        return Err(self.recover(start));
                    }
                    let lines = (self.line - start).max(1);
                    return match too_large {
                        _ if runaway => Err(ReadError::Record {
                            line: start,
                            lines,
                            reason: format!(
                                "unclosed quote: the quoted field opened on line {start} runs \
                                 to the end of the file ({lines} lines, more than {} to read \
                                 again)",
                                Size(self.max_bytes as u64)
                            ),
                            raw: Raw::cut(&preview, size as u64),
                        }),
                        Some(kind) => {
                            let reason = match kind {
                                TooLarge::Bytes => format!(
                                    "record of {size} bytes over {lines} line(s), more than \
                                     the {} a record may have (BRONZE_MAX_RECORD_BYTES)",
                                    Size(self.max_bytes as u64)
                                ),
                                TooLarge::Fields => format!(
                                    "record of more than {} fields (BRONZE_MAX_COLUMNS)",
                                    self.max_fields
                                ),
                            };
                            Err(ReadError::Record {
                                line: start,
                                lines,
                                reason,
                                raw: Raw::cut(&preview, size as u64),
                            })
                        }
                        None => Ok(Some(start)),
                    };
                }
                ReadRecordResult::End => return Ok(None),
            }
        }
    }

    /// A quote opened on line `start` ran to the end of the file: that line is the bad
    /// record, and the lines after it, kept in `tail`, are read again as records.
    fn recover(&mut self, start: u64) -> ReadError {
        let first = self.joined(self.ends[..self.len].last().copied().unwrap_or(0), self.len);
        let first_line = match memchr::memchr(b'\n', &first) {
            Some(at) => &first[..at],
            None => &first[..],
        };
        let raw = Raw::of(first_line.strip_suffix(b"\r").unwrap_or(first_line));
        self.input.give_back(&mut self.tail);
        self.core.reset();
        self.line = start + 1;
        ReadError::Record {
            line: start,
            lines: 1,
            reason: format!(
                "unclosed quote: the quote opened on line {start} runs to the end of the \
                 file; line {start} is rejected and reading goes on at line {}",
                start + 1
            ),
            raw,
        }
    }

    /// The first `fields` fields (their bytes up to `bytes`), joined by the delimiter
    /// as they were read, cut to what a reject keeps.
    fn joined(&self, bytes: usize, fields: usize) -> Vec<u8> {
        let mut raw = Vec::with_capacity(bytes.min(MAX_RAW) + fields.min(MAX_RAW));
        let mut start = 0;
        for (i, &end) in self.ends[..fields].iter().enumerate() {
            if raw.len() >= MAX_RAW {
                return raw;
            }
            if i > 0 {
                raw.push(self.delimiter);
            }
            let end = end.min(bytes);
            raw.extend_from_slice(&self.fields[start.min(end)..end]);
            start = end;
        }
        // A field still being read when the bound was met.
        if start < bytes && raw.len() < MAX_RAW {
            if fields > 0 {
                raw.push(self.delimiter);
            }
            raw.extend_from_slice(&self.fields[start..bytes.min(start + MAX_RAW)]);
        }
        raw
    }

    /// Blank lines are not records; skipping them here keeps the count of lines exact.
    fn skip_blank_lines(&mut self) -> Result<(), ReadError> {
        loop {
            let buf = self
                .input
                .fill()
                .map_err(|e| ReadError::from_io(e, self.line))?;
            let blank = buf
                .iter()
                .take_while(|&&b| b == b'\n' || b == b'\r')
                .count();
            let all_blank = blank == buf.len();
            self.line += count_newlines(&buf[..blank]);
            self.input.consume(blank);
            if !all_blank || blank == 0 {
                return Ok(());
            }
        }
    }

    /// Reads the next record as canonical JSON into `out`; returns its line, or `None` at the end.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>, ReadError> {
        let Some(line) = self.next_record()? else {
            return Ok(None);
        };
        let valid = self.valid_utf8();
        self.write_json(line, valid, out)?;
        Ok(Some(line))
    }

    /// Reads the next record without writing its JSON, for a reader of its fields
    /// alone ([`CsvRecords::record`]: inference): the same records and the same
    /// rejects as [`CsvRecords::next_into`], whose JSON writer (into `scratch`) runs
    /// only to name the fault of a record with one.
    pub fn next_fields(&mut self, scratch: &mut Vec<u8>) -> Result<Option<u64>, ReadError> {
        let Some(line) = self.next_record()? else {
            return Ok(None);
        };
        let valid = self.valid_utf8();
        let (bytes, _) = self.record();
        if valid && memchr::memchr(0, bytes).is_none() {
            return Ok(Some(line));
        }
        scratch.clear();
        self.write_json(line, valid, scratch)?;
        Ok(Some(line))
    }

    /// Reads the next record, rejected if it has not as many fields as the header.
    fn next_record(&mut self) -> Result<Option<u64>, ReadError> {
        let next = match self.unread.take() {
            Some(line) => Some(line),
            None => self.read_record()?,
        };
        let Some(line) = next else {
            return Ok(None);
        };
        if self.len != self.keys.len() {
            let reason = format!(
                "expected {} fields as in the header, found {}",
                self.keys.len(),
                self.len
            );
            return Err(self.reject(line, reason));
        }
        Ok(Some(line))
    }

    /// One UTF-8 check for the record, valid only if every field ends on a character
    /// boundary too (`\xC3` and `\xA9` are each invalid, `é` together); a failing
    /// record is checked field by field, to name the column.
    fn valid_utf8(&self) -> bool {
        let (bytes, ends) = self.record();
        std::str::from_utf8(bytes)
            .is_ok_and(|text| ends.iter().all(|&end| text.is_char_boundary(end)))
    }

    /// Writes the record just read, on `line`, as canonical JSON; `valid` if its UTF-8
    /// is known good. A field JSON cannot hold rejects the record.
    fn write_json(&mut self, line: u64, valid: bool, out: &mut Vec<u8>) -> Result<(), ReadError> {
        out.push(b'{');
        for (n, &i) in self.order.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&self.keys[i]);
            let start = out.len();
            let written = if valid {
                write_valid_str(out, self.field(i))
            } else {
                write_str(out, self.field(i))
            };
            if let Err(e) = written {
                let reason = format!("column {:?}: {e}", self.names[i]);
                return Err(self.reject(line, reason));
            }
            self.values[i] = start..out.len();
        }
        out.push(b'}');
        Ok(())
    }
}

impl CsvRecords {
    /// A record-level error, with the fields as read joined by the delimiter.
    fn reject(&self, line: u64, reason: String) -> ReadError {
        let bytes = self.ends[..self.len].last().copied().unwrap_or(0);
        let whole = bytes + self.len.saturating_sub(1);
        ReadError::Record {
            line,
            lines: (self.line - line).max(1),
            reason,
            raw: Raw::cut(&self.joined(bytes, self.len), whole as u64),
        }
    }
}

/// Header names, with empty ones named `column_N` and repeats suffixed `_2`, `_3`, …
/// so that no value is dropped from the payload.
fn column_names(header: &CsvRecords) -> Result<Vec<String>, ReadError> {
    let mut names: Vec<String> = Vec::with_capacity(header.len);
    let mut taken: HashSet<String> = HashSet::with_capacity(header.len);
    let mut suffixes: HashMap<String, usize> = HashMap::new();
    for i in 0..header.len {
        let raw = header.field(i);
        let text = std::str::from_utf8(raw).map_err(|e| ReadError::Malformed {
            line: 1,
            reason: format!(
                "header column {}: invalid UTF-8 at byte {}",
                i + 1,
                e.valid_up_to()
            ),
        })?;
        let base = match text.trim() {
            "" => format!("column_{}", i + 1),
            trimmed => trimmed.to_owned(),
        };
        // Sets, not scans: a header of thousands of repeated names stays linear.
        let next = suffixes.entry(base.clone()).or_insert(1);
        let mut name = base.clone();
        while taken.contains(&name) {
            *next += 1;
            name = format!("{base}_{next}");
        }
        taken.insert(name.clone());
        names.push(name);
    }
    Ok(names)
}

fn header_error(name: &str, e: TextError) -> ReadError {
    ReadError::Malformed {
        line: 1,
        reason: format!("header column {name:?}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8]) -> Result<Vec<(u64, String)>, ReadError> {
        let input: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(text.to_vec()));
        let mut records = CsvRecords::new(input, b',', true, &Limits::default())?;
        let mut out = Vec::new();
        let mut all = Vec::new();
        while let Some(line) = {
            out.clear();
            records.next_into(&mut out)?
        } {
            all.push((line, String::from_utf8(out.clone()).unwrap()));
        }
        Ok(all)
    }

    #[test]
    fn values_stay_strings_in_canonical_order() {
        let rows = read_all(b"\xef\xbb\xbfid,name,note\r\n007,\"Smith, J\",\r\n2,\"multi\nline\",\"say \"\"hi\"\"\"\r\n").unwrap();
        assert_eq!(
            rows,
            vec![
                (2, r#"{"id":"007","name":"Smith, J","note":""}"#.to_owned()),
                (
                    3,
                    r#"{"id":"2","name":"multi\nline","note":"say \"hi\""}"#.to_owned()
                ),
            ]
        );
    }

    #[test]
    fn jsonb_order_puts_shorter_keys_first_and_keeps_the_values() {
        let text = "zz,b,\u{e9},aaa,a\n1,\"x\"\"y\",2,\"\",3\n";
        let input: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(text.as_bytes()));
        let mut records = CsvRecords::new(input, b',', true, &Limits::default()).unwrap();
        let (mut json, mut wire) = (Vec::new(), vec![b'?']);
        records.next_into(&mut json).unwrap();
        records.write_jsonb_order(&json, &mut wire);
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"a":"3","aaa":"","b":"x\"y","zz":"1","é":"2"}"#
        );
        // é is two bytes long, so it comes with zz; 'z' < 0xC3.
        assert_eq!(
            String::from_utf8(wire).unwrap(),
            r#"{"a":"3","b":"x\"y","zz":"1","é":"2","aaa":""}"#
        );
    }

    #[test]
    fn thousands_of_repeated_names_are_named_in_one_pass() {
        let header = vec!["a"; 20_000].join(",");
        let values = vec!["1"; 20_000].join(",");
        let limits = Limits {
            columns: 20_000,
            ..Limits::default()
        };
        let rows = outcomes(format!("{header}\n{values}\n").as_bytes(), &limits);
        assert!(rows[0].as_ref().unwrap().1.contains(r#""a_20000":"1""#));
    }

    #[test]
    fn empty_and_repeated_names_keep_every_value() {
        let rows = read_all(b"a,,a\n1,2,3\n").unwrap();
        assert_eq!(rows[0].1, r#"{"a":"1","a_2":"3","column_2":"2"}"#);
    }

    #[test]
    fn ragged_rows_and_bad_bytes_name_their_line() {
        let err = read_all(b"a,b\n1,2\n1,2,3\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: expected 2 fields as in the header, found 3"
        );
        let err = read_all(b"a,b\n1,2\n3,\"open\n4,5\n6,7\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: unclosed quote: the quote opened on line 3 runs to the end of the file; \
             line 3 is rejected and reading goes on at line 4"
        );
        let rows = read_all(b"h,w\nBob,5'11\"\nAl,6'\n").unwrap();
        assert_eq!(
            rows[0].1, r#"{"h":"Bob","w":"5'11\""}"#,
            "a literal quote is not an open one"
        );
        let rows = read_all(b"a,b\n1,\"x\ny\"\n2,z\n").unwrap();
        assert_eq!((rows[0].0, rows[1].0), (2, 4));
        let rows = read_all(b"a,b\r\n\r\n1,2\r\n\r\n3,\"x\r\ny\"\r\n5,6").unwrap();
        let lines: Vec<u64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![3, 5, 7]);
        let err = read_all(b"a,b\n1,2\n\n3,\xff\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 4: column \"b\": invalid UTF-8 at byte 0 of the value"
        );
        // Each half of `é` alone: the record's bytes are valid UTF-8 end to end, its
        // fields are not.
        let err = read_all(b"a,b\n\xc3,\xa9\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: column \"a\": invalid UTF-8 at byte 0 of the value"
        );
    }

    /// A record read (line, canonical JSON), or refused (line, lines, raw text).
    type Outcome = Result<(u64, String), (u64, u64, String)>;

    /// Every record and every error of a file, reading on past bad records.
    fn outcomes(text: &[u8], limits: &Limits) -> Vec<Outcome> {
        let input: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(text.to_vec()));
        let mut records = CsvRecords::new(input, b',', true, limits).unwrap();
        let mut out = Vec::new();
        let mut all = Vec::new();
        loop {
            out.clear();
            match records.next_into(&mut out) {
                Ok(Some(line)) => all.push(Ok((line, String::from_utf8(out.clone()).unwrap()))),
                Ok(None) => return all,
                Err(ReadError::Record {
                    line, lines, raw, ..
                }) => all.push(Err((line, lines, raw.text))),
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// What inference reads (the fields, no JSON) against what a load reads: the same
    /// records on the same lines, the same rejects with the same reasons.
    #[test]
    fn reading_fields_alone_keeps_every_record_and_every_reject() {
        let text = b"id,name,n\n1,a,2\n2,\"multi\nline\",3\n3,short\n4,\xff\xfe,5\n5,nul\0x,6\n\n6,\"q\"\"q\",7\n7,\"open,8\n";
        let read = |fields: bool| {
            let input: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(text.to_vec()));
            let mut records = CsvRecords::new(input, b',', true, &Limits::default()).unwrap();
            let mut out = Vec::new();
            let mut all = Vec::new();
            loop {
                out.clear();
                let next = if fields {
                    records.next_fields(&mut out)
                } else {
                    records.next_into(&mut out)
                };
                match next {
                    Ok(Some(line)) => all.push(Ok((line, records.record().0.to_vec()))),
                    Ok(None) => return all,
                    Err(e) => all.push(Err(e.to_string())),
                }
            }
        };
        let fields = read(true);
        assert_eq!(fields, read(false));
        let rejects = fields.iter().filter(|r| r.is_err()).count();
        assert_eq!((fields.len(), rejects), (7, 4), "{fields:?}");
    }

    #[test]
    fn a_stray_quote_loses_its_line_and_nothing_after_it() {
        let mut text = b"id,name,n\n1,\"Bob,10\n".to_vec();
        for i in 2..=500 {
            text.extend_from_slice(format!("{i},name {i},{i}\r\n").as_bytes());
        }
        let all = outcomes(&text, &Limits::default());
        assert_eq!(all[0], Err((2, 1, "1,Bob,10".to_owned())));
        assert_eq!(all.len(), 500);
        assert!(all[1..].iter().all(Result::is_ok));
        assert_eq!(
            all[1],
            Ok((3, r#"{"id":"2","n":"2","name":"name 2"}"#.to_owned()))
        );
        assert_eq!(all[499].as_ref().unwrap().0, 501);
        // The stray quote on the last line: nothing after it to read again.
        let all = outcomes(b"a,b\n1,x\n2,\"y\n", &Limits::default());
        assert!(all[0].is_ok());
        assert!(matches!(all[1], Err((3, 1, _))), "{:?}", all[1]);
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn records_past_the_bounds_are_rejected_in_bounded_memory() {
        let limits = Limits {
            record_bytes: 1000,
            columns: 8,
            ..Limits::default()
        };
        let long = "x".repeat(5000);
        let wide = vec!["1"; 50].join(",");
        let text = format!("a,b\n1,{long}\n2,ok\n{wide}\n3,\"{long}\nquoted\"\n4,ok\n");
        let all = outcomes(text.as_bytes(), &limits);
        assert!(matches!(&all[0], Err((2, 1, raw)) if raw.starts_with("1,xxx")));
        assert!(all[1].is_ok());
        assert!(matches!(&all[2], Err((4, 1, raw)) if raw.starts_with("1,1,1")));
        assert!(matches!(all[3], Err((5, 2, _))), "{:?}", all[3]);
        assert_eq!(all[4].as_ref().unwrap().0, 7);
        // A quote left open on a long line: the lines after it are read again.
        let text = format!("a,b\n1,\"{long}\n2,x\n3,y\n");
        let all = outcomes(text.as_bytes(), &limits);
        assert!(matches!(all[0], Err((2, 1, _))), "{:?}", all[0]);
        assert_eq!(all[1..].iter().filter(|r| r.is_ok()).count(), 2);
        // Past the bound the lines after it cannot be read again: the record is
        // rejected with every line it swallowed.
        let text = format!("a,b\n1,\"x\n{long}\n2,x\n3,y\n");
        let all = outcomes(text.as_bytes(), &limits);
        assert_eq!(all.len(), 1);
        assert!(matches!(all[0], Err((2, 4, _))), "{:?}", all[0]);
    }

    #[test]
    fn a_header_wider_than_the_bound_refuses_the_file() {
        let header = (0..5000)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let input: Box<dyn BufRead + Send> =
            Box::new(std::io::Cursor::new(format!("{header}\n").into_bytes()));
        let err = CsvRecords::new(input, b',', true, &Limits::default())
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "line 1: the first row cannot be read: record of more than 4096 fields \
             (BRONZE_MAX_COLUMNS)"
        );
    }
}

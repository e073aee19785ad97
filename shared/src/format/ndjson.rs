//! NDJSON / JSON Lines: one JSON object per line, blank lines ignored.

use std::io::{self, BufRead};
use std::ops::Range;

use super::{Raw, ReadError, MAX_RAW};
use crate::canonical::{is_json_space, trim_json_end, Canonicalizer, JsonError};
use crate::json_tape::{Parsed, Tape};
use crate::limits::{Limits, Size};

/// An NDJSON file's records, one per line, blank lines skipped.
pub struct NdjsonRecords {
    input: Box<dyn BufRead + Send>,
    line: Vec<u8>,
    line_no: u64,
    /// Bytes a line may have: a longer one is read to its end without being kept.
    max_bytes: usize,
    /// Distinct keys inference may describe (see [`Limits::object_keys`]).
    object_keys: usize,
    canon: Canonicalizer,
    /// The record read last without canonical JSON, and where its text is in `line`.
    tape: Tape,
    parsed: Option<Range<usize>>,
}

impl NdjsonRecords {
    /// Reads `input` line by line, each within `limits`.
    pub fn new(input: Box<dyn BufRead + Send>, limits: &Limits) -> Self {
        Self {
            input,
            line: Vec::with_capacity(4096),
            line_no: 0,
            max_bytes: limits.record_bytes,
            object_keys: limits.object_keys,
            canon: Canonicalizer::default(),
            tape: Tape::default(),
            parsed: None,
        }
    }

    /// Distinct keys inference may describe in this file.
    pub fn object_keys(&self) -> usize {
        self.object_keys
    }

    /// The lines read so far.
    pub fn lines(&self) -> u64 {
        self.line_no
    }

    /// Reads the next line into `line`, newline included; returns its length in the
    /// file, which is more than what `line` keeps (the first [`MAX_RAW`] bytes) when
    /// the line is longer than the bound.
    fn read_line(&mut self) -> io::Result<usize> {
        self.line.clear();
        let mut len = 0;
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Ok(len);
            }
            let (take, ended) = match memchr::memchr(b'\n', buf) {
                Some(at) => (at + 1, true),
                None => (buf.len(), false),
            };
            if len + take <= self.max_bytes {
                self.line.extend_from_slice(&buf[..take]);
            } else if self.line.len() < MAX_RAW {
                let room = MAX_RAW - self.line.len();
                self.line.extend_from_slice(&buf[..take.min(room)]);
            } else if self.line.len() > MAX_RAW {
                self.line.truncate(MAX_RAW);
            }
            len += take;
            self.input.consume(take);
            if ended {
                return Ok(len);
            }
        }
    }

    /// Reads the next line that is not blank; returns its line number and where its
    /// text is in `self.line`, or `None` at the end of the file.
    fn next_text(&mut self) -> Result<Option<(u64, Range<usize>)>, ReadError> {
        loop {
            self.line_no += 1;
            let len = self
                .read_line()
                .map_err(|e| ReadError::from_io(e, self.line_no))?;
            if len == 0 {
                self.line_no -= 1;
                return Ok(None);
            }
            let line = self.line_no;
            if len > self.max_bytes {
                return Err(ReadError::Record {
                    line,
                    lines: 1,
                    reason: format!(
                        "line of {len} bytes, more than the {} a record may have \
                         (BRONZE_MAX_RECORD_BYTES)",
                        Size(self.max_bytes as u64)
                    ),
                    raw: Raw::cut(&self.line, len as u64),
                });
            }
            let start = if self.line.starts_with(b"\xef\xbb\xbf") {
                3
            } else {
                0
            };
            let end = start + trim_json_end(&self.line[start..]).len();
            if self.line[start..end].iter().all(|b| is_json_space(*b)) {
                continue;
            }
            return Ok(Some((line, start..end)));
        }
    }

    /// The reject of the record on `line`, whose text is `text`.
    fn bad(line: u64, text: &[u8], reason: String) -> ReadError {
        ReadError::Record {
            line,
            lines: 1,
            reason,
            raw: Raw::of(text),
        }
    }

    /// Reads the next record as canonical JSON into `out`; returns its line, or `None` at the end.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>, ReadError> {
        self.parsed = None;
        let Some((line, at)) = self.next_text()? else {
            return Ok(None);
        };
        let text = &self.line[at];
        self.canon
            .canonicalize(text, out)
            .map_err(|e| Self::bad(line, text, column_error(&e)))?;
        if out.first() != Some(&b'{') {
            return Err(Self::bad(line, text, "expected a JSON object".into()));
        }
        Ok(Some(line))
    }

    /// [`NdjsonRecords::next_into`] without the canonical JSON: the record is parsed
    /// into a tape ([`NdjsonRecords::parsed`]), with the same rejects.
    pub fn next_parsed(&mut self) -> Result<Option<u64>, ReadError> {
        self.parsed = None;
        let Some((line, at)) = self.next_text()? else {
            return Ok(None);
        };
        let text = &self.line[at.clone()];
        self.tape
            .parse(text)
            .map_err(|e| Self::bad(line, text, column_error(&e)))?;
        if !self.tape.is_object() {
            return Err(Self::bad(line, text, "expected a JSON object".into()));
        }
        self.parsed = Some(at);
        Ok(Some(line))
    }

    /// The record [`NdjsonRecords::next_parsed`] read last; `None` after
    /// [`NdjsonRecords::next_into`].
    pub fn parsed(&self) -> Option<Parsed<'_>> {
        let at = self.parsed.clone()?;
        Some(Parsed::new(&self.tape, &self.line[at]))
    }
}

/// A fault in a line's JSON, as its reject names it.
fn column_error(e: &JsonError) -> String {
    format!("column {}: {}", e.offset + 1, e.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_past_the_bound_is_one_bad_record_and_the_next_lines_load() {
        let limits = Limits {
            record_bytes: 100,
            ..Limits::default()
        };
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(10_000));
        let text = format!("{{\"a\":1}}\n{long}\n\n{{\"a\":3}}\n");
        for buffer in [7, 64, 4096] {
            let input = io::BufReader::with_capacity(buffer, io::Cursor::new(text.clone()));
            let mut records = NdjsonRecords::new(Box::new(input), &limits);
            let mut out = Vec::new();
            assert_eq!(records.next_into(&mut out).unwrap(), Some(1));
            match records.next_into(&mut out).unwrap_err() {
                ReadError::Record { line, raw, .. } => {
                    assert_eq!(line, 2);
                    assert_eq!(raw.len, long.len() as u64 + 1);
                    assert_eq!(raw.text.len(), MAX_RAW);
                }
                other => panic!("{other}"),
            }
            out.clear();
            assert_eq!(records.next_into(&mut out).unwrap(), Some(4));
            assert_eq!(out, br#"{"a":3}"#);
            assert_eq!(records.next_into(&mut out).unwrap(), None);
            assert_eq!(records.lines(), 4);
        }
    }
}

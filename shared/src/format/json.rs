//! JSON documents: a top-level array of objects, read one element at a time so memory
//! holds one record, not the file; or a single object, which is one record.
//!
//! A document is one value: a syntax error anywhere makes the file unreadable, so it is
//! reported as [`ReadError::Malformed`] with line and column. An element that is valid
//! JSON but not an object is a bad record, and the rest of the array still loads.

use std::io::BufRead;

use super::{count_newlines, Raw, ReadError, MAX_RAW};
use crate::canonical::{is_json_space, trim_json_end, Canonicalizer, JsonError};
use crate::json_tape::{Parsed, Tape};
use crate::limits::{Limits, Size};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    /// Inside the array; `first` until an element has been read.
    Array {
        first: bool,
    },
    Done,
}

/// A JSON document's records: the elements of its top-level array, or the one object.
pub struct JsonRecords {
    input: Box<dyn BufRead + Send>,
    element: Vec<u8>,
    /// The current element's length in the file: more than `element` keeps (its first
    /// [`MAX_RAW`] bytes) when it is longer than `max_bytes`.
    element_len: usize,
    max_bytes: usize,
    /// Distinct keys inference may describe (see [`Limits::object_keys`]).
    object_keys: usize,
    canon: Canonicalizer,
    /// The record read last without canonical JSON, when it was.
    tape: Tape,
    parsed: bool,
    /// The line the input is positioned on, 1-based.
    line: u64,
    /// Bytes since the last newline, 0-based.
    column: u64,
    state: State,
}

impl JsonRecords {
    /// Reads `input` element by element, each within `limits`.
    pub fn new(input: Box<dyn BufRead + Send>, limits: &Limits) -> Self {
        Self {
            input,
            element: Vec::with_capacity(4096),
            element_len: 0,
            max_bytes: limits.record_bytes,
            object_keys: limits.object_keys,
            canon: Canonicalizer::default(),
            tape: Tape::default(),
            parsed: false,
            line: 1,
            column: 0,
            state: State::Start,
        }
    }

    /// Distinct keys inference may describe in this file.
    pub fn object_keys(&self) -> usize {
        self.object_keys
    }

    /// The lines read so far.
    pub fn lines(&self) -> u64 {
        self.line - u64::from(self.column == 0)
    }

    fn malformed(&self, reason: impl Into<String>) -> ReadError {
        ReadError::Malformed {
            line: self.line,
            reason: reason.into(),
        }
    }

    /// Skips whitespace (counting lines) and returns the next byte without consuming it.
    fn peek(&mut self) -> Result<Option<u8>, ReadError> {
        loop {
            let buf = self
                .input
                .fill_buf()
                .map_err(|e| ReadError::from_io(e, self.line))?;
            let Some(at) = buf.iter().position(|b| !is_json_space(*b)) else {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = buf.len();
                self.consume(n);
                continue;
            };
            let next = buf[at];
            self.consume(at);
            return Ok(Some(next));
        }
    }

    /// Reads one JSON value's bytes into `element`, stopping at the `,` or `]` that
    /// follows it at depth 0; brackets inside strings do not count.
    fn read_value(&mut self) -> Result<(), ReadError> {
        self.element.clear();
        self.element_len = 0;
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        loop {
            let buf = self
                .input
                .fill_buf()
                .map_err(|e| ReadError::from_io(e, self.line))?;
            if buf.is_empty() {
                return Err(self.malformed("unexpected end of file inside the JSON document"));
            }
            let mut end = None;
            for (i, &b) in buf.iter().enumerate() {
                if in_string {
                    match (escaped, b) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, b'"') => {
                            in_string = false;
                            if depth == 0 {
                                end = Some(i + 1);
                                break;
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth > 0 => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    b',' | b']' | b'}' if depth == 0 => {
                        end = Some(i);
                        break;
                    }
                    // A scalar ends at whitespace, whether its digits came in this
                    // buffer or an earlier one.
                    b' ' | b'\t' | b'\r' | b'\n'
                        if depth == 0 && (i > 0 || !self.element.is_empty()) =>
                    {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let used = end.unwrap_or(buf.len());
            // Past the bound only the start is kept, for the reject.
            let keep = if self.element_len + used <= self.max_bytes {
                used
            } else {
                used.min(MAX_RAW.saturating_sub(self.element.len()))
            };
            self.element.extend_from_slice(&buf[..keep]);
            self.element_len += used;
            self.consume(used);
            if end.is_some() {
                return Ok(());
            }
        }
    }

    /// Consumes `n` buffered bytes, keeping the line and column of the position.
    fn consume(&mut self, n: usize) {
        // `fill_buf` hands back the same buffer, without I/O, while it holds data.
        if let Ok(buf) = self.input.fill_buf() {
            for &b in &buf[..n.min(buf.len())] {
                if b == b'\n' {
                    self.line += 1;
                    self.column = 0;
                } else {
                    self.column += 1;
                }
            }
        }
        self.input.consume(n);
    }

    /// The element's JSON fault `e`, which is the document's, at its own line and
    /// column in the file; the element starts at `(line, column)`.
    fn located(&self, (line, column): (u64, u64), e: &JsonError) -> ReadError {
        let text = trim_json_end(&self.element);
        let before = &text[..e.offset.min(text.len())];
        let newlines = count_newlines(before);
        let in_line = before.iter().rev().take_while(|&&b| b != b'\n').count() as u64;
        let column = if newlines == 0 {
            column + in_line + 1
        } else {
            in_line + 1
        };
        ReadError::Malformed {
            line: line + newlines,
            reason: format!("column {column}: {}", e.reason),
        }
    }

    /// Refuses an element that is valid JSON but not an object: a bad record.
    fn refuse_non_object(&self, line: u64, object: bool) -> Result<(), ReadError> {
        if object {
            return Ok(());
        }
        Err(ReadError::Record {
            line,
            lines: self.line - line + 1,
            reason: "expected a JSON object".into(),
            raw: Raw::of(trim_json_end(&self.element)),
        })
    }

    /// An element longer than the bound, read past without being kept, is a bad
    /// record: the elements after it still load.
    fn refuse_too_large(&self, line: u64) -> Result<(), ReadError> {
        if self.element_len <= self.max_bytes {
            return Ok(());
        }
        Err(ReadError::Record {
            line,
            lines: self.line - line + 1,
            reason: format!(
                "JSON value of {} bytes, more than the {} a record may have \
                 (BRONZE_MAX_RECORD_BYTES)",
                self.element_len,
                Size(self.max_bytes as u64)
            ),
            raw: Raw::cut(&self.element, self.element_len as u64),
        })
    }

    /// Reads the next record as canonical JSON into `out`; returns its line, or `None` at the end.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>, ReadError> {
        self.parsed = false;
        let Some(at) = self.next_element()? else {
            return Ok(None);
        };
        let text = trim_json_end(&self.element);
        if let Err(e) = self.canon.canonicalize(text, out) {
            return Err(self.located(at, &e));
        }
        self.refuse_non_object(at.0, out.first() == Some(&b'{'))?;
        Ok(Some(at.0))
    }

    /// [`JsonRecords::next_into`] without the canonical JSON: the record is parsed
    /// into a tape ([`JsonRecords::parsed`]), with the same rejects.
    pub fn next_parsed(&mut self) -> Result<Option<u64>, ReadError> {
        self.parsed = false;
        let Some(at) = self.next_element()? else {
            return Ok(None);
        };
        let text = trim_json_end(&self.element);
        if let Err(e) = self.tape.parse(text) {
            return Err(self.located(at, &e));
        }
        self.refuse_non_object(at.0, self.tape.is_object())?;
        self.parsed = true;
        Ok(Some(at.0))
    }

    /// The record [`JsonRecords::next_parsed`] read last; `None` after
    /// [`JsonRecords::next_into`].
    pub fn parsed(&self) -> Option<Parsed<'_>> {
        self.parsed
            .then(|| Parsed::new(&self.tape, trim_json_end(&self.element)))
    }

    /// Reads the next element into `element`, refused past the bound; returns the
    /// line and column it starts at, or `None` at the end of the document.
    fn next_element(&mut self) -> Result<Option<(u64, u64)>, ReadError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Start => match self.peek()? {
                    Some(b'[') => {
                        self.consume(1);
                        self.state = State::Array { first: true };
                    }
                    Some(b'{') => {
                        let (line, column) = (self.line, self.column);
                        self.read_value()?;
                        if self.peek()?.is_some() {
                            return Err(self.malformed("data after the JSON object"));
                        }
                        self.state = State::Done;
                        self.refuse_too_large(line)?;
                        return Ok(Some((line, column)));
                    }
                    Some(b) => {
                        let found = if b.is_ascii_graphic() {
                            format!("'{}'", b as char)
                        } else {
                            format!("byte 0x{b:02x}")
                        };
                        return Err(self
                            .malformed(format!("expected a JSON array or object, found {found}")));
                    }
                    None => {
                        self.state = State::Done;
                        return Ok(None);
                    }
                },
                State::Array { first } => {
                    let next = self.peek()?;
                    if next.is_none() {
                        return Err(self.malformed("unexpected end of file inside the JSON array"));
                    }
                    if next == Some(b']') {
                        self.consume(1);
                        if self.peek()?.is_some() {
                            return Err(self.malformed("data after the JSON array"));
                        }
                        self.state = State::Done;
                        continue;
                    }
                    if !first {
                        if next != Some(b',') {
                            return Err(self.malformed("expected ',' or ']' in the JSON array"));
                        }
                        self.consume(1);
                        self.peek()?;
                    }
                    let (line, column) = (self.line, self.column);
                    self.read_value()?;
                    self.state = State::Array { first: false };
                    self.refuse_too_large(line)?;
                    return Ok(Some((line, column)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str, buffer: usize) -> Result<Vec<(u64, String)>, ReadError> {
        let input = std::io::BufReader::with_capacity(
            buffer,
            std::io::Cursor::new(text.as_bytes().to_vec()),
        );
        let mut records = JsonRecords::new(Box::new(input), &Limits::default());
        let mut out = Vec::new();
        let mut all = Vec::new();
        loop {
            out.clear();
            match records.next_into(&mut out)? {
                Some(line) => all.push((line, String::from_utf8(out.clone()).unwrap())),
                None => return Ok(all),
            }
        }
    }

    #[test]
    fn arrays_are_read_element_by_element_at_any_buffer_size() {
        let text = "[\n  {\"b\": \"],}\", \"a\": [1, {\"x\": null}]},\n  {\"a\": 2}\n]\n";
        for buffer in [1, 2, 7, 4096] {
            let records = read_all(text, buffer).unwrap();
            assert_eq!(
                records,
                vec![
                    (2, r#"{"a":[1,{"x":null}],"b":"],}"}"#.to_owned()),
                    (3, r#"{"a":2}"#.to_owned())
                ],
                "{buffer}"
            );
        }
        assert_eq!(read_all("[]", 8).unwrap(), vec![]);
        assert_eq!(
            read_all(" {\"a\":1} ", 8).unwrap(),
            vec![(1, r#"{"a":1}"#.to_owned())]
        );
        assert_eq!(read_all("", 8).unwrap(), vec![]);
    }

    #[test]
    fn syntax_errors_reject_the_document_with_line_and_column() {
        let err = read_all("[\n{\"a\":1},\n{\"a\":\n  tru}\n]", 4096).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 4: column 3: unexpected 't', expected a JSON value"
        );
        assert!(!err.is_record());
        let err = read_all("[{\"a\":1} {\"a\":2}]", 4096).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: expected ',' or ']' in the JSON array"
        );
        let err = read_all("[{\"a\":1}", 4096).unwrap_err();
        assert!(err.to_string().contains("unexpected end of file"), "{err}");
        let err = read_all("[\x0c]", 4096).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: column 2: unexpected byte 0x0c, expected a JSON value",
            "a form feed is not JSON whitespace"
        );
        let err = read_all("name,age\n", 4096).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: expected a JSON array or object, found 'n'"
        );
    }

    #[test]
    fn a_scalar_ends_in_the_same_place_at_any_buffer_size() {
        let outcomes = |buffer: usize| {
            let input = std::io::BufReader::with_capacity(buffer, &b"[1 "[..]);
            let mut records = JsonRecords::new(Box::new(input), &Limits::default());
            let mut out = Vec::new();
            (0..3)
                .map(|_| records.next_into(&mut out).map_err(|e| e.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(outcomes(1), outcomes(4096));
        assert_eq!(outcomes(2), outcomes(4096));
    }

    #[test]
    fn non_object_elements_are_bad_records_and_the_rest_load() {
        let input = std::io::Cursor::new(b"[1, {\"a\":1}]".to_vec());
        let mut records = JsonRecords::new(Box::new(input), &Limits::default());
        let mut out = Vec::new();
        assert!(records.next_into(&mut out).unwrap_err().is_record());
        out.clear();
        assert_eq!(records.next_into(&mut out).unwrap(), Some(1));
        assert_eq!(out, br#"{"a":1}"#);
    }

    #[test]
    fn an_element_past_the_bound_is_a_bad_record_and_the_rest_load() {
        let limits = Limits {
            record_bytes: 64,
            ..Limits::default()
        };
        let text = format!("[{{\"a\":\"{}\"}},\n{{\"a\":2}}]", "x".repeat(100_000));
        for buffer in [3, 4096] {
            let input =
                std::io::BufReader::with_capacity(buffer, std::io::Cursor::new(text.clone()));
            let mut records = JsonRecords::new(Box::new(input), &limits);
            let mut out = Vec::new();
            let err = records.next_into(&mut out).unwrap_err();
            assert!(err.is_record(), "{err}");
            assert!(
                err.to_string()
                    .starts_with("line 1: JSON value of 100008 bytes"),
                "{err}"
            );
            assert_eq!(records.next_into(&mut out).unwrap(), Some(2));
            assert_eq!(out, br#"{"a":2}"#);
            assert_eq!(records.next_into(&mut out).unwrap(), None);
        }
    }
}

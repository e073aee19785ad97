//! Delimited text with a header row. Values stay the strings they are in the file:
//! `007` stays `"007"`, an empty field is `""`.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::ops::Range;

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};

use super::{count_newlines, ReadError};
use crate::canonical::{write_str, write_valid_str, TextError};

/// Reads records with `csv_core` directly: the record buffers are reused from record
/// to record, and line numbers are counted here, exactly, whatever the line endings,
/// blank lines or quoted newlines (the `csv` crate's positions lag behind on CRLF).
pub struct CsvRecords {
    input: Box<dyn BufRead + Send>,
    core: Reader,
    /// The current record: all field bytes back to back, and each field's end.
    fields: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
    delimiter: u8,
    /// The line the input is positioned on, 1-based.
    line: u64,
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

impl CsvRecords {
    /// Reads the header row, or with `header` false names the columns `column_1`…
    /// after the first record, which is then the first one returned.
    pub fn new(
        mut input: Box<dyn BufRead + Send>,
        delimiter: u8,
        header: bool,
    ) -> Result<Self, ReadError> {
        let bom = input
            .fill_buf()
            .map_err(|e| ReadError::from_io(e, 1))?
            .starts_with(b"\xef\xbb\xbf");
        if bom {
            input.consume(3);
        }
        let mut reader = Self {
            input,
            core: ReaderBuilder::new().delimiter(delimiter).build(),
            fields: vec![0; 4096],
            ends: vec![0; 64],
            len: 0,
            delimiter,
            line: 1,
            keys: Vec::new(),
            names: Vec::new(),
            order: Vec::new(),
            jsonb_order: Vec::new(),
            values: Vec::new(),
            unread: None,
        };
        if let Some(line) = reader.read_record()? {
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
    /// A quote left open makes the parser run to the end of the file: that record
    /// (odd quotes, more than one line, ended by the end of the file) is reported with
    /// the line the quote opened on, instead of loading the rest of the file as one
    /// field.
    fn read_record(&mut self) -> Result<Option<u64>, ReadError> {
        self.skip_blank_lines()?;
        let start = self.line;
        let (mut out, mut end) = (0, 0);
        let mut quotes = 0u64;
        loop {
            let input = self
                .input
                .fill_buf()
                .map_err(|e| ReadError::from_io(e, self.line))?;
            let at_eof = input.is_empty();
            let (result, read, wrote, ended) =
                self.core
                    .read_record(input, &mut self.fields[out..], &mut self.ends[end..]);
            for &b in &input[..read] {
                self.line += u64::from(b == b'\n');
                quotes += u64::from(b == b'"');
            }
            self.input.consume(read);
            out += wrote;
            end += ended;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => self.fields.resize(self.fields.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record => {
                    self.len = end;
                    if at_eof && quotes % 2 == 1 && self.line > start {
                        let reason = "unclosed quote: the quoted field runs to the end of the file";
                        return Err(self.reject(start, reason.into()));
                    }
                    return Ok(Some(start));
                }
                ReadRecordResult::End => return Ok(None),
            }
        }
    }

    /// Blank lines are not records; skipping them here keeps the count of lines exact.
    fn skip_blank_lines(&mut self) -> Result<(), ReadError> {
        loop {
            let buf = self
                .input
                .fill_buf()
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

    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>, ReadError> {
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
        // One UTF-8 check for the record, valid only if every field ends on a character
        // boundary too (`\xC3` and `\xA9` are each invalid, `é` together); a failing
        // record is checked field by field, to name the column.
        let (bytes, ends) = self.record();
        let valid = std::str::from_utf8(bytes)
            .is_ok_and(|text| ends.iter().all(|&end| text.is_char_boundary(end)));
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
        Ok(Some(line))
    }
}

impl CsvRecords {
    /// A record-level error, with the fields as read joined by the delimiter.
    fn reject(&self, line: u64, reason: String) -> ReadError {
        let mut raw = Vec::with_capacity(
            self.ends
                .get(self.len.saturating_sub(1))
                .copied()
                .unwrap_or(0)
                + self.len,
        );
        for i in 0..self.len {
            if i > 0 {
                raw.push(self.delimiter);
            }
            raw.extend_from_slice(self.field(i));
        }
        ReadError::Record {
            line,
            reason,
            raw: super::raw_text(&raw),
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
        let mut records = CsvRecords::new(input, b',', true)?;
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
        let mut records = CsvRecords::new(input, b',', true).unwrap();
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
        let rows = read_all(format!("{header}\n{values}\n").as_bytes()).unwrap();
        assert!(rows[0].1.contains(r#""a_20000":"1""#));
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
            "line 3: unclosed quote: the quoted field runs to the end of the file"
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
}

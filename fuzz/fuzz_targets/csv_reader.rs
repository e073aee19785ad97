//! `CsvRecords` on arbitrary bytes. The first byte picks the dialect: bits 0-1 the
//! delimiter (`, ; \t |`), bit 2 the header flag, bits 3-7 a chunk size (4-35 bytes);
//! the rest is the file.
//!
//! Checks: no panic; the reader makes progress; every record is a JSON object, already
//! canonical, with one field per column; reading the file in chunks of that size (as
//! from a network stream) gives the same records and errors as reading it whole.
//!
//! Chunks start at 4 bytes: with 1-3, a UTF-8 BOM split over the first reads is kept
//! in the first column's name (`artifacts/csv_reader/chunked-bom-split-by-short-read`,
//! see the README); smaller chunks would find only that again.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Cursor};

use bronze::format::csv::CsvRecords;
use common::Outcome;
use libfuzzer_sys::fuzz_target;

const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

fn read_all(
    input: Box<dyn BufRead + Send>,
    delimiter: u8,
    header: bool,
    len: usize,
) -> Vec<Outcome> {
    let mut records = match CsvRecords::new(input, delimiter, header, &common::limits()) {
        Ok(records) => records,
        Err(e) => return vec![Outcome::Fatal(e.to_string())],
    };
    let columns = records.names().len();
    common::drain("csv", len, |out| {
        let read = records.next_into(out);
        if let Ok(Some(_)) = read {
            let (bytes, ends) = records.record();
            assert_eq!(ends.len(), columns, "a good record has one field per column");
            let text = std::str::from_utf8(bytes).expect("a good record is UTF-8");
            assert!(
                ends.iter().all(|&end| text.is_char_boundary(end)),
                "every field of a good record is UTF-8 on its own"
            );
            for span in records.values() {
                assert_eq!(out.get(span.start), Some(&b'"'), "a value place opens a string");
            }
        }
        read
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, text)) = data.split_first() else {
        return;
    };
    let delimiter = DELIMITERS[usize::from(first & 3)];
    let header = first & 4 != 0;
    let chunk = usize::from(first >> 3) + 4;
    let whole = read_all(
        Box::new(Cursor::new(text.to_vec())),
        delimiter,
        header,
        text.len(),
    );
    let chunked = BufReader::with_capacity(chunk, Cursor::new(text.to_vec()));
    let chunked = read_all(Box::new(chunked), delimiter, header, text.len());
    // csv_core strips a BOM at the start of the first record only when its first input
    // slice holds all three bytes (documented in csv-core). bronze strips one at the
    // start of the file itself, so csv_core only sees one after blank lines or after
    // that first BOM: that one depends on the chunks
    // (`artifacts/csv_reader/crash-acb055e1…`, `crash-53d5bb41…`, see the README).
    let body = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    let blank = body
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let after_blank_lines = body[blank..].starts_with(b"\xef\xbb\xbf");
    if after_blank_lines {
        return;
    }
    assert_eq!(
        whole, chunked,
        "reading in {chunk}-byte chunks changes the result"
    );
});

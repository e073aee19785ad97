//! Differential: `format::open` on a file given whole (one read returns everything) and
//! on the same file from a source that returns at most 1-32 bytes per read (from the
//! last input byte), as a network stream may. The first byte picks the name, as in
//! `sniffer`.
//!
//! Checks: the same detection (gzip, encoding, format, dialect) and the same records
//! and errors. Not in the regular runs: `format::open` detects from what the first
//! read returned, so this fails at once (see the README); it is here to check a fix.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::io::{Cursor, Read};

use bronze::format;
use common::Outcome;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 6] = ["x.csv", "x.tsv", "x.json", "x.ndjson", "x", "x.csv.gz"];

fn read_all(source: Box<dyn Read + Send>, name: &str) -> (String, Vec<Outcome>) {
    let (mut records, detected) = match format::open(source, name, &common::read_settings()) {
        Ok(opened) => opened,
        Err(e) => return (String::new(), vec![Outcome::Fatal(e.to_string())]),
    };
    let mut outcomes = Vec::new();
    let mut out = Vec::new();
    // Bounded: a gzip bomb is libFuzzer's -rss_limit_mb's business.
    while outcomes.len() < 100_000 {
        match records.next_into(&mut out) {
            Ok(Some(line)) => {
                outcomes.push(Outcome::Record(line, String::from_utf8_lossy(&out).into()))
            }
            Ok(None) => break,
            Err(e) if e.is_record() => outcomes.push(Outcome::Error(e.to_string())),
            Err(e) => {
                outcomes.push(Outcome::Fatal(e.to_string()));
                break;
            }
        }
    }
    (format!("{detected:?}"), outcomes)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, file)) = data.split_first() else {
        return;
    };
    let name = NAMES[usize::from(first) % NAMES.len()];
    let chunk = usize::from(file.last().copied().unwrap_or(0) & 31) + 1;
    let whole = read_all(Box::new(Cursor::new(file.to_vec())), name);
    let chunked = read_all(Box::new(common::Chunks::new(file, chunk)), name);
    assert_eq!(
        whole, chunked,
        "{name} read {chunk} bytes at a time differs"
    );
});

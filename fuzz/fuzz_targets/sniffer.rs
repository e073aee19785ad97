//! `format::open` (gzip, encoding, format and dialect detection) on arbitrary bytes,
//! then every record through the inferrer and its report. The first byte picks the
//! file name, and so whether the extension or the content decides the format.
//!
//! The same input is opened twice: whole (one read gives everything) and from a source
//! that gives at most 1-32 bytes per read (from the last input byte), as a network
//! stream may. The results are not compared: detection looks at what the first read
//! gave, so it can differ (see the README).
//!
//! Checks: no panic; the reader makes progress; every record is a JSON object.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::io::{Cursor, Read};

use bronze::format;
use bronze::infer::{Inferrer, Observe};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 6] = ["x.csv", "x.tsv", "x.json", "x.ndjson", "x", "x.csv.gz"];

fuzz_target!(|data: &[u8]| {
    let Some((&first, file)) = data.split_first() else {
        return;
    };
    let name = NAMES[usize::from(first) % NAMES.len()];
    read_all(Box::new(Cursor::new(file.to_vec())), name, file.len());
    let chunk = usize::from(file.last().copied().unwrap_or(0) & 31) + 1;
    read_all(Box::new(common::Chunks::new(file, chunk)), name, file.len());
});

fn read_all(source: Box<dyn Read + Send>, name: &str, len: usize) {
    let Ok((mut records, detected)) = format::open(source, name, &common::read_settings()) else {
        return;
    };
    let mut inf = Inferrer::for_records(&records);
    let mut out = Vec::new();
    let mut results = 0usize;
    // gzip can expand far beyond the input: bound by the decompressed text instead,
    // which libFuzzer's -rss_limit_mb and -timeout keep in check.
    let bound = if detected.gzip {
        usize::MAX
    } else {
        // Transcoding Windows-1252 to UTF-8 at most triples the bytes.
        common::max_results(3 * len)
    };
    loop {
        results += 1;
        assert!(
            results <= bound,
            "more results than there are bytes: the reader is looping"
        );
        match records.next_into(&mut out) {
            Ok(Some(line)) => {
                common::assert_object(&out, "sniffed");
                inf.record(&records, line, &out);
            }
            Ok(None) => break,
            Err(format::ReadError::Record { line, .. }) => inf.rejected(line),
            Err(_) => break,
        }
    }
    let report = inf.report(&detected);
    let _ = serde_json::to_vec(&report).expect("the report serializes");
}

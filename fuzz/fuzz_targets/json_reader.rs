//! The JSON side on arbitrary bytes: `JsonRecords` (a document) and `NdjsonRecords`
//! (lines) read the same input, and `Canonicalizer` canonicalizes it whole.
//!
//! Checks: no panic; the readers make progress; every record is a JSON object, already
//! canonical; reading in chunks (1-32 bytes, from the last input byte) gives the same
//! records, and ends the same way (at the end or at an error that stops the reader), as
//! reading whole; a canonicalized document is valid JSON and canonicalizing it again
//! gives the same bytes.
//!
//! Only the records and the ending are compared, not every error: in a document that
//! is malformed anyway, where a scalar element ends depends on the chunks
//! (`artifacts/json_reader/chunked-scalar-end`, see the README).

#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Cursor};

use bronze::canonical::Canonicalizer;
use bronze::format::json::JsonRecords;
use bronze::format::ndjson::NdjsonRecords;
use common::Outcome;
use libfuzzer_sys::fuzz_target;

/// Both readings agree: on everything when the file reads to its end; when it stops at
/// an error, on the records before it and on stopping.
fn assert_same(what: &str, chunk: usize, whole: &[Outcome], chunked: &[Outcome]) {
    let fatal = |o: &[Outcome]| matches!(o.last(), Some(Outcome::Fatal(_)));
    let records = |o: &[Outcome]| -> Vec<String> {
        o.iter()
            .filter_map(|o| match o {
                Outcome::Record(line, json) => Some(format!("{line}: {json}")),
                _ => None,
            })
            .collect()
    };
    if fatal(whole) && fatal(chunked) {
        assert_eq!(
            records(whole),
            records(chunked),
            "{what}: reading in {chunk}-byte chunks changes the records before the error:\n  whole: {whole:?}\n  chunked: {chunked:?}"
        );
    } else {
        assert_eq!(
            whole, chunked,
            "{what}: reading in {chunk}-byte chunks changes the result"
        );
    }
}

fn inputs(data: &[u8], chunk: usize) -> [Box<dyn BufRead + Send>; 2] {
    [
        Box::new(Cursor::new(data.to_vec())),
        Box::new(BufReader::with_capacity(chunk, Cursor::new(data.to_vec()))),
    ]
}

fuzz_target!(|data: &[u8]| {
    let chunk = usize::from(data.last().copied().unwrap_or(0) & 31) + 1;

    let [whole, chunked] = inputs(data, chunk);
    let (mut a, mut b) = (
        JsonRecords::new(whole, &common::limits()),
        JsonRecords::new(chunked, &common::limits()),
    );
    let whole = common::drain("json", data.len(), |out| a.next_into(out));
    let chunked = common::drain("json", data.len(), |out| b.next_into(out));
    assert_same("json", chunk, &whole, &chunked);

    let [whole, chunked] = inputs(data, chunk);
    let (mut a, mut b) = (
        NdjsonRecords::new(whole, &common::limits()),
        NdjsonRecords::new(chunked, &common::limits()),
    );
    let whole = common::drain("ndjson", data.len(), |out| a.next_into(out));
    let chunked = common::drain("ndjson", data.len(), |out| b.next_into(out));
    assert_same("ndjson", chunk, &whole, &chunked);

    let mut out = Vec::new();
    if Canonicalizer::default()
        .canonicalize(data, &mut out)
        .is_ok()
    {
        common::assert_valid_json(&out, "canonical");
        let mut again = Vec::new();
        if let Err(e) = Canonicalizer::default().canonicalize(&out, &mut again) {
            panic!(
                "canonical output refused when canonicalized again ({e}): {:?}",
                String::from_utf8_lossy(&out)
            );
        }
        assert!(
            again == out,
            "canonicalization is not idempotent:\n  once:  {:?}\n  twice: {:?}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&again)
        );
    }
});

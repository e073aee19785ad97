//! Checks shared by the fuzz targets.

#![allow(dead_code)]

use bronze::canonical::Canonicalizer;
use bronze::format::ReadError;
use serde::de::{Deserialize, IgnoredAny};

/// A reader makes progress: each record (good or bad) consumes at least one byte, so a
/// reader returning more than this many results for `len` input bytes is looping.
pub fn max_results(len: usize) -> usize {
    len + 2
}

/// `json` is one syntactically valid JSON value, checked by serde_json.
///
/// Two deliberate departures from a plain `from_slice::<Value>`:
/// - no recursion limit: serde_json stops at 127 levels, bronze allows
///   `canonical::MAX_DEPTH` (128);
/// - numbers are checked for syntax only: bronze keeps a number's source text, so
///   `1e400` is valid (RFC 8259) JSON that `Value` (f64) refuses as "out of range".
pub fn assert_valid_json(json: &[u8], what: &str) {
    let mut de = serde_json::Deserializer::from_slice(json);
    de.disable_recursion_limit();
    if let Err(e) = IgnoredAny::deserialize(&mut de).and_then(|_| de.end()) {
        panic!(
            "{what}: output is not valid JSON ({e}): {:?}",
            String::from_utf8_lossy(json)
        );
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    de.disable_recursion_limit();
    match serde_json::Value::deserialize(&mut de) {
        Ok(_) => {}
        Err(e) if e.to_string().contains("number out of range") => {}
        Err(e) => panic!(
            "{what}: serde_json::Value refuses the output ({e}): {:?}",
            String::from_utf8_lossy(json)
        ),
    }
}

/// `json` is a valid JSON object.
pub fn assert_object(json: &[u8], what: &str) {
    assert_valid_json(json, what);
    assert!(
        json.first() == Some(&b'{') && json.last() == Some(&b'}'),
        "{what}: record is not a JSON object: {:?}",
        String::from_utf8_lossy(json)
    );
}

/// A reader's record is already canonical: canonicalizing it changes nothing.
pub fn assert_canonical(canon: &mut Canonicalizer, json: &[u8], what: &str) {
    let mut again = Vec::with_capacity(json.len());
    if let Err(e) = canon.canonicalize(json, &mut again) {
        panic!(
            "{what}: the canonicalizer refuses a record ({e}): {:?}",
            String::from_utf8_lossy(json)
        );
    }
    assert!(
        again == json,
        "{what}: record is not canonical:\n  record: {:?}\n  canonical: {:?}",
        String::from_utf8_lossy(json),
        String::from_utf8_lossy(&again)
    );
}

/// A source that hands out at most `chunk` bytes per `read`, as a network stream does.
pub struct Chunks {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
}

impl Chunks {
    pub fn new(data: &[u8], chunk: usize) -> Self {
        Self {
            data: data.to_vec(),
            pos: 0,
            chunk: chunk.max(1),
        }
    }
}

impl std::io::Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// What a reader returned, record by record, to compare two readings of one input.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Record(u64, String),
    /// A bad record: the reader goes on.
    Error(String),
    /// An error that stops the reader.
    Fatal(String),
}

/// Reads to the end (or to an error that stops the reader) through `next`, checking
/// every record is a canonical JSON object and that the reader makes progress.
pub fn drain(
    what: &str,
    len: usize,
    mut next: impl FnMut(&mut Vec<u8>) -> Result<Option<u64>, ReadError>,
) -> Vec<Outcome> {
    let mut canon = Canonicalizer::default();
    let mut out = Vec::new();
    let mut outcomes = Vec::new();
    loop {
        assert!(
            outcomes.len() < max_results(len),
            "{what}: more results than there are bytes: the reader is looping"
        );
        out.clear();
        match next(&mut out) {
            Ok(Some(line)) => {
                assert_object(&out, what);
                assert_canonical(&mut canon, &out, what);
                outcomes.push(Outcome::Record(
                    line,
                    String::from_utf8(out.clone()).unwrap(),
                ));
            }
            Ok(None) => break,
            Err(e) if e.is_record() => outcomes.push(Outcome::Error(e.to_string())),
            Err(e) => {
                outcomes.push(Outcome::Fatal(e.to_string()));
                break;
            }
        }
    }
    outcomes
}

/// Bounds far below the defaults, so that fuzzing meets every bound's path often: a
/// record past 4 KiB, a row past 64 fields, a JSON file past 50 keys, a gzip bomb
/// past 64 MiB (kept: the floor is fixed).
pub fn limits() -> bronze::limits::Limits {
    bronze::limits::Limits {
        record_bytes: 4096,
        columns: 64,
        object_keys: 50,
        stored_rejects: 10,
        ..bronze::limits::Limits::default()
    }
}

/// [`limits`], for `format::open`.
pub fn read_settings() -> bronze::format::ReadSettings {
    bronze::format::ReadSettings {
        limits: limits(),
        ..Default::default()
    }
}

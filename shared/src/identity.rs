//! Record identity: the `record_key` of a record, from its business key or its hash.
//!
//! A business key is the JSON array of the key columns' canonical values, e.g.
//! `["acme",7]`: JSON delimits and escapes every value, so no two different key tuples
//! give the same text, whatever separators the values contain, and `7` stays apart
//! from `"7"`. Keys longer than 128 bytes are stored as `sha256:<hex>` of that text.

use std::ops::Range;

use sha2::{Digest, Sha256};

use crate::canonical::{escaped, members};

/// Keys longer than this are hashed.
pub const MAX_KEY_LEN: usize = 128;

/// How record keys are made for one dataset.
#[derive(Debug, Clone, Default)]
pub struct KeySpec {
    /// Column names as configured, for messages.
    names: Vec<String>,
    /// The same names escaped as canonical JSON writes them, to match member keys.
    escaped: Vec<Vec<u8>>,
    /// Where each key column's value is in the record at hand (reused).
    found: Vec<Option<Range<usize>>>,
    /// For a delimited file: each key column's place in its header.
    columns: Option<Vec<usize>>,
}

impl KeySpec {
    /// Keys made of `columns`, in that order; none means the record hash is the key.
    pub fn new(columns: &[String]) -> Self {
        Self {
            names: columns.to_vec(),
            escaped: columns.iter().map(|c| escaped(c)).collect(),
            found: Vec::with_capacity(columns.len()),
            columns: None,
        }
    }

    /// Whether no key columns are configured.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// For a delimited file with this header: its reader notes where each column's value
    /// is, so keys are read off those places instead of found by walking the JSON. A
    /// key column the header lacks leaves the walk, which reports it missing.
    pub fn bind(&mut self, header: &[String]) {
        self.columns = self
            .names
            .iter()
            .map(|name| header.iter().position(|h| h == name))
            .collect();
    }

    /// Writes the record key of `json` (canonical) into `out`; with no key columns it
    /// is the hex of `hash`. A missing or null key column is the record's fault. The
    /// record's members are walked once, whatever the number of key columns, or not at
    /// all when the key is bound to a header and `spans` says where the values are.
    pub fn record_key(
        &mut self,
        json: &[u8],
        hash: &[u8; 32],
        spans: Option<&[Range<usize>]>,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        out.clear();
        if self.names.is_empty() {
            out.resize(64, 0);
            // 32 bytes always fit in 64 hex digits.
            let _ = hex::encode_to_slice(hash, out);
            return Ok(());
        }
        match (&self.columns, spans) {
            (Some(columns), Some(spans)) => {
                self.found.clear();
                self.found
                    .extend(columns.iter().map(|&c| spans.get(c).cloned()));
            }
            _ => self.find_values(json),
        }
        out.push(b'[');
        for (i, (name, at)) in self.names.iter().zip(&self.found).enumerate() {
            let value = at.as_ref().map(|at| &json[at.clone()]);
            match value {
                None => return Err(format!("key column {name:?} is missing")),
                Some(b"null") => return Err(format!("key column {name:?} is null")),
                Some(b"\"\"") => return Err(format!("key column {name:?} is empty")),
                Some(value) => {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(value);
                }
            }
        }
        out.push(b']');
        if out.len() > MAX_KEY_LEN {
            let digest = Sha256::digest(&out[..]);
            out.clear();
            out.extend_from_slice(b"sha256:");
            out.extend_from_slice(hex::encode(digest).as_bytes());
        }
        Ok(())
    }

    fn find_values(&mut self, json: &[u8]) {
        self.found.clear();
        self.found.resize(self.names.len(), None);
        let mut missing = self.names.len();
        for (key, value) in members(json) {
            // `value` is a slice of `json`: its offset is where it starts.
            let start = value.as_ptr() as usize - json.as_ptr() as usize;
            for (name, found) in self.escaped.iter().zip(&mut self.found) {
                if name == key {
                    *found = Some(start..start + value.len());
                    missing -= 1;
                }
            }
            if missing == 0 {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(spec: &mut KeySpec, json: &str) -> Result<String, String> {
        let mut out = Vec::new();
        spec.record_key(json.as_bytes(), &[0; 32], None, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn composite_keys_are_unambiguous() {
        let mut spec = KeySpec::new(&["a".into(), "b".into()]);
        assert_eq!(
            key(&mut spec, r#"{"a":"x,y","b":"z"}"#).unwrap(),
            r#"["x,y","z"]"#
        );
        assert_eq!(
            key(&mut spec, r#"{"a":"x","b":"y,z"}"#).unwrap(),
            r#"["x","y,z"]"#
        );
        assert_eq!(key(&mut spec, r#"{"a":7,"b":"7"}"#).unwrap(), r#"[7,"7"]"#);
        assert_eq!(key(&mut spec, r#"{"a":"7","b":7}"#).unwrap(), r#"["7",7]"#);
        assert_eq!(
            key(&mut spec, r#"{"a":"1","b":"2","c":"3"}"#).unwrap(),
            r#"["1","2"]"#
        );
        let mut reversed = KeySpec::new(&["c".into(), "a".into(), "c".into()]);
        assert_eq!(
            key(&mut reversed, r#"{"a":"1","b":"2","c":"3"}"#).unwrap(),
            r#"["3","1","3"]"#,
            "configured order, a column named twice given twice"
        );
    }

    /// Keys read off a delimited record's value places equal keys found by walking its
    /// JSON: escapes, a column named twice, empty values and absent columns alike.
    #[test]
    fn keys_bound_to_a_header_match_keys_found_in_the_json() {
        let csv = "b,a,c\n\"x,\"\"1\"\"\",y\\z,3\n,2,3\nq,\"line\nbreak\",\n";
        let specs: [&[&str]; 3] = [&["a", "b"], &["c", "a", "c"], &["a", "missing"]];
        for columns in specs {
            let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
            let mut walked = KeySpec::new(&columns);
            let mut bound = KeySpec::new(&columns);
            let source = Box::new(std::io::Cursor::new(csv.as_bytes().to_vec()));
            let (mut records, _) =
                crate::format::open(source, "x.csv", &Default::default()).unwrap();
            bound.bind(records.header().unwrap());
            let (mut json, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
            let mut seen = 0;
            while records.next_into(&mut json).unwrap().is_some() {
                let spans = records.value_spans();
                let by_walk = walked.record_key(&json, &[0; 32], None, &mut a);
                let by_place = bound.record_key(&json, &[0; 32], spans, &mut b);
                assert_eq!(
                    by_walk,
                    by_place,
                    "{columns:?} in {}",
                    String::from_utf8_lossy(&json)
                );
                assert_eq!(a, b);
                seen += 1;
            }
            assert_eq!(seen, 3);
        }
    }

    #[test]
    fn long_keys_are_hashed_and_missing_keys_refused() {
        let mut spec = KeySpec::new(&["id".into()]);
        let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(200));
        let k = key(&mut spec, &long).unwrap();
        assert!(k.starts_with("sha256:") && k.len() == 7 + 64, "{k}");
        assert_eq!(
            key(&mut spec, r#"{"other":1}"#).unwrap_err(),
            "key column \"id\" is missing"
        );
        assert_eq!(
            key(&mut spec, r#"{"id":null}"#).unwrap_err(),
            "key column \"id\" is null"
        );
        assert_eq!(
            key(&mut spec, r#"{"id":""}"#).unwrap_err(),
            "key column \"id\" is empty"
        );
        let mut none = KeySpec::default();
        assert_eq!(key(&mut none, r#"{"id":1}"#).unwrap(), "0".repeat(64));
    }
}

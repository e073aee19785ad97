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
}

impl KeySpec {
    pub fn new(columns: &[String]) -> Self {
        Self {
            names: columns.to_vec(),
            escaped: columns.iter().map(|c| escaped(c)).collect(),
            found: Vec::with_capacity(columns.len()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Writes the record key of `json` (canonical) into `out`; with no key columns it
    /// is the hex of `hash`. A missing or null key column is the record's fault. The
    /// record's members are walked once, whatever the number of key columns.
    pub fn record_key(
        &mut self,
        json: &[u8],
        hash: &[u8; 32],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        out.clear();
        if self.names.is_empty() {
            out.resize(64, 0);
            // 32 bytes always fit in 64 hex digits.
            let _ = hex::encode_to_slice(hash, out);
            return Ok(());
        }
        self.find_values(json);
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
        spec.record_key(json.as_bytes(), &[0; 32], &mut out)?;
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

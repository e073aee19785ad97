//! What one file may ask of a load: bounds checked while streaming, so that no file,
//! however it is made, can take more memory or time than the load function has.
//!
//! A Lambda of 128 MB holds every buffer a record passes through (the raw line, its
//! canonical JSON, the COPY chunk, inference's copy) at once: the record bound is what
//! keeps all of them small. The others bound what a file can make bronze keep per file
//! (columns, keys of a JSON object, stored rejects) and how long it can keep it busy
//! (decompressed bytes). Every bound is set for the process from the environment, since
//! they follow from the memory and timeout the function was given, not from a dataset.

use std::fmt;

/// The bounds of one process, with safe defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one record: a CSV record, an NDJSON line, a JSON array element.
    pub record_bytes: usize,
    /// Columns of a delimited file (its header), and fields of one of its records.
    pub columns: usize,
    /// Bytes of text a file may decompress or decode to.
    pub text_bytes: u64,
    /// How many times its stored size a compressed file may inflate to, once past
    /// [`Limits::RATIO_FLOOR`] bytes: a gzip bomb is refused long before the disk
    /// or the clock runs out.
    pub gzip_ratio: u64,
    /// Distinct keys inference describes one by one in a JSON object; past them the
    /// object is read as a map of values (`{"u123": …}`: keys that are data).
    pub object_keys: usize,
    /// Fields of a schema version: its typed view is a relation, and PostgreSQL holds
    /// at most 1,600 columns in one (the lineage columns included).
    pub schema_fields: usize,
    /// Rejected records stored per load, with their text; the count stays exact.
    pub stored_rejects: usize,
    /// Seconds one attempt at loading an object may take, its database statements
    /// included: past them it gives up (rolled back, retried) instead of hanging on a
    /// connection that stopped answering. The default is Lambda's longest timeout.
    pub load_seconds: u64,
    /// Rows of a structured dataset's typed table that a breaking schema change may
    /// rebuild inside the load; past them the load leaves the old table (its rows
    /// still kept) until `bronze typed rebuild`, so one file cannot hold a load for
    /// the minutes a large rebuild takes.
    pub typed_rebuild_rows: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            record_bytes: 16 << 20,
            columns: 4096,
            text_bytes: 64 << 30,
            gzip_ratio: 100,
            object_keys: 1000,
            schema_fields: 1500,
            stored_rejects: 1000,
            load_seconds: 900,
            typed_rebuild_rows: 1_000_000,
        }
    }
}

/// A bound's setting that is not a positive whole number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?}: expected a positive whole number")]
pub struct BadLimit {
    name: &'static str,
    value: String,
}

impl Limits {
    /// Below this many decompressed bytes the ratio is not checked: small files of
    /// repeated values compress far better than 100× and are no threat.
    pub const RATIO_FLOOR: u64 = 64 << 20;

    /// The defaults, each overridden by its `BRONZE_MAX_*` variable when set.
    pub fn from_env() -> Result<Self, BadLimit> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, BadLimit> {
        let mut l = Self::default();
        set(&var, "BRONZE_MAX_RECORD_BYTES", &mut l.record_bytes)?;
        set(&var, "BRONZE_MAX_COLUMNS", &mut l.columns)?;
        set(&var, "BRONZE_MAX_TEXT_BYTES", &mut l.text_bytes)?;
        set(&var, "BRONZE_MAX_GZIP_RATIO", &mut l.gzip_ratio)?;
        set(&var, "BRONZE_MAX_OBJECT_KEYS", &mut l.object_keys)?;
        set(&var, "BRONZE_MAX_SCHEMA_FIELDS", &mut l.schema_fields)?;
        set(&var, "BRONZE_MAX_STORED_REJECTS", &mut l.stored_rejects)?;
        set(&var, "BRONZE_MAX_LOAD_SECONDS", &mut l.load_seconds)?;
        set(
            &var,
            "BRONZE_MAX_TYPED_REBUILD_ROWS",
            &mut l.typed_rebuild_rows,
        )?;
        Ok(l)
    }
}

/// Overrides `slot` with the variable `name`, when it is set.
fn set<T: TryFrom<u64>>(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    slot: &mut T,
) -> Result<(), BadLimit> {
    let Some(value) = var(name) else {
        return Ok(());
    };
    match value.trim().parse::<u64>().ok().filter(|&n| n > 0) {
        Some(n) => {
            *slot = T::try_from(n).map_err(|_| BadLimit { name, value })?;
            Ok(())
        }
        None => Err(BadLimit { name, value }),
    }
}

/// Bytes as a person reads them: `16 MiB`, `4096 bytes`.
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        for (unit, name) in UNITS {
            if self.0 >= unit && self.0.is_multiple_of(unit) {
                return write!(f, "{} {name}", self.0 / unit);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_override_the_defaults_and_nonsense_is_refused() {
        let limits = Limits::from_vars(|name| match name {
            "BRONZE_MAX_RECORD_BYTES" => Some("1024".into()),
            "BRONZE_MAX_STORED_REJECTS" => Some(" 7 ".into()),
            "BRONZE_MAX_LOAD_SECONDS" => Some("30".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(limits.record_bytes, 1024);
        assert_eq!(limits.stored_rejects, 7);
        assert_eq!(limits.load_seconds, 30);
        assert_eq!(Limits::default().load_seconds, 900);
        assert_eq!(limits.columns, Limits::default().columns);
        let err = Limits::from_vars(|name| (name == "BRONZE_MAX_COLUMNS").then(|| "0".into()))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "BRONZE_MAX_COLUMNS=\"0\": expected a positive whole number"
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(Size(16 << 20).to_string(), "16 MiB");
        assert_eq!(Size(4096).to_string(), "4 KiB");
        assert_eq!(Size(1000).to_string(), "1000 bytes");
    }
}

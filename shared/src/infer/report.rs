//! The inference report: what `bronze infer` prints, what a load stores in
//! `bronze.loads.inference`, and what the schema registry builds a file's schema from
//! ([`Report::schema`]).
//!
//! Typed, so that its readers use fields the compiler checks rather than string keys
//! of a JSON document. Its JSON form is the document it has always been: fields are
//! declared in the alphabetical order of their keys (the order a JSON object of
//! `serde_json` gave them), and the facts that are zero, false or absent are left out
//! rather than written as such.

use serde::Serialize;

use super::semantic::Semantic;
use crate::schema::{Evidence, Field, FieldType, Schema};

/// What inference found in one file: how it was read, how many records it held, and
/// what each column holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// One per column: in file order for delimited files, in order of first sight for
    /// JSON. Empty when the records are a map (see `map`).
    pub columns: Vec<ColumnReport>,
    /// `gzip` when the file was compressed.
    pub compression: Option<&'static str>,
    /// A delimited file's delimiter.
    pub delimiter: Option<char>,
    /// The encoding the text was read in (`utf-8`, `windows-1252`, …).
    pub encoding: String,
    /// The lines of the first records that could not be read.
    pub first_rejected_lines: Vec<u64>,
    /// `csv`, `tsv`, `ndjson` or `json`.
    pub format: &'static str,
    /// Whether a delimited file's first row named its columns.
    pub header: Option<bool>,
    /// Records whose keys are data (ids, dates) rather than a fixed set of fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map: Option<MapReport>,
    /// Records read.
    pub records: u64,
    /// Records that could not be read.
    pub rejected: u64,
}

/// What one column (or one field of a JSON object, or the items of an array) holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnReport {
    /// The narrowest type that most, but not all, values fit: a column that is text
    /// only because of a few bad values says so, and where.
    pub almost: Option<Almost>,
    /// Whether its dates read both day first and month first: nothing settled which.
    #[serde(skip_serializing_if = "is_false")]
    pub ambiguous: bool,
    /// Integers too large for 64 bits: why an integer column is a `number`.
    #[serde(skip_serializing_if = "is_zero")]
    pub beyond_i64: u64,
    /// Values that are not null.
    pub count: u64,
    /// Distinct values: exact for few, estimated for many.
    pub distinct_estimate: u64,
    /// The first distinct values, as written.
    pub examples: Vec<String>,
    /// For objects: their fields, described as columns are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<ColumnReport>>,
    /// The layouts of its dates, times or timestamps (strftime), the first one the
    /// version's.
    pub formats: Vec<String>,
    /// For arrays: their items, described as one column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<ColumnReport>>,
    /// Values with leading zeros (`007`): codes, which keep a column text.
    #[serde(skip_serializing_if = "is_zero")]
    pub leading_zeros: u64,
    /// For objects whose keys are data: the map they are, instead of `fields`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map: Option<MapReport>,
    /// The largest value: a number as written, a date in ISO form, text in byte order.
    pub max: Option<String>,
    /// Characters of the longest value.
    pub max_length: usize,
    /// The smallest value, as `max`.
    pub min: Option<String>,
    /// The column's name: a header's, or a JSON key.
    pub name: String,
    /// The texts that stood for "no value" (`NA`, `NULL`, …).
    pub null_markers: Vec<&'static str>,
    /// Whether any record lacked a value.
    pub nullable: bool,
    /// Records without a value: nulls, null markers and absent keys.
    pub nulls: u64,
    /// What its text is beyond text (e-mail addresses, URLs, …), if most values agree.
    pub semantic: Option<SemanticMatch>,
    /// NaN and infinities.
    #[serde(skip_serializing_if = "is_zero")]
    pub special_values: u64,
    /// The narrowest type every value fits.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// For timestamps: whether they carry a time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<Zoned>,
}

/// A type most values fit: what a few values kept the column from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Almost {
    /// The lines of the first values that did not fit it.
    pub first_offending_lines: Vec<u64>,
    /// The share of the values that fit it.
    pub share: f64,
    /// The type.
    #[serde(rename = "type")]
    pub kind: FieldType,
}

/// The semantic type of a text column, with the share of values that match it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SemanticMatch {
    /// The share of the non-null values that match it.
    pub confidence: f64,
    /// The type.
    #[serde(rename = "type")]
    pub kind: Semantic,
}

/// An object whose keys are data: described as its keys and the type of their values,
/// since a column per key would never end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapReport {
    /// Distinct keys described before the file's budget ran out.
    pub keys_described: usize,
    /// The narrowest type holding the values of every key.
    pub values: FieldType,
    /// Values under keys past the budget, not described.
    pub values_under_other_keys: u64,
}

/// Whether a column's timestamps carry a time zone: a timestamp without one is a
/// local time, which names no instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Zoned {
    /// Every timestamp has a zone (`Z` or an offset).
    With,
    /// No timestamp has one.
    Without,
    /// Some have one and some do not.
    Mixed,
}

fn is_false(value: &bool) -> bool {
    !value
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Report {
    /// The schema this file shows: one field per column, with the evidence that tells a
    /// renamed column from a new one. The registry compares it with the dataset's
    /// current version.
    pub fn schema(&self) -> Schema {
        Schema {
            fields: self.columns.iter().map(ColumnReport::field).collect(),
        }
    }
}

impl ColumnReport {
    /// The column as a field of a schema version.
    fn field(&self) -> Field {
        Field {
            name: self.name.clone(),
            kind: self.kind,
            nullable: self.nullable,
            semantic: self.semantic.as_ref().map(|s| s.kind.name().to_owned()),
            format: self.formats.first().cloned(),
            evidence: Evidence {
                min: self.min.clone(),
                max: self.max.clone(),
                examples: self.examples.clone(),
                formats: if self.formats.len() > 1 {
                    self.formats.clone()
                } else {
                    Vec::new()
                },
            },
        }
    }
}

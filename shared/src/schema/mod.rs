//! The schema registry's model: what a dataset's records look like, one version at a
//! time, built from what inference found in the files.
//!
//! A version is a promise to the consumers of the typed view: each column's type,
//! whether it may be null, its semantic type and its layout. A file is a sample of
//! what its producer may send, so a file that fits the current version (a number
//! column that happens to hold only whole numbers, a nullable column without nulls) is
//! that version; only evidence the version cannot hold makes a new one ([`evolve`]).

mod diff;

pub(crate) use diff::field_order;
pub use diff::{diff, evolve, Change, ChangeKind};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A column's type, from narrowest to widest as inference decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// No value was seen: nothing is known yet.
    Null,
    /// `true` or `false` (and yes/no in delimited files).
    Boolean,
    /// A 64-bit integer.
    Integer,
    /// Any number.
    Number,
    /// A calendar date.
    Date,
    /// A time of day.
    Time,
    /// A date and time.
    Timestamp,
    /// Text.
    String,
    /// A JSON object.
    Object,
    /// A JSON array.
    Array,
    /// JSON values of several kinds.
    Mixed,
}

impl FieldType {
    /// The type a name (as `FieldType::name` gives) stands for.
    pub fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(Value::String(name.to_owned())).ok()
    }

    /// The name stored in schema versions and printed.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Null => "null",
            FieldType::Boolean => "boolean",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Date => "date",
            FieldType::Time => "time",
            FieldType::Timestamp => "timestamp",
            FieldType::String => "string",
            FieldType::Object => "object",
            FieldType::Array => "array",
            FieldType::Mixed => "mixed",
        }
    }

    /// The narrowest type that holds the values of both.
    pub fn join(self, other: FieldType) -> FieldType {
        if self.widens_to(other) {
            other
        } else if other.widens_to(self) {
            self
        } else if self.widens_to(FieldType::String) && other.widens_to(FieldType::String) {
            FieldType::String
        } else {
            FieldType::Mixed
        }
    }

    /// Whether every value of `self` is also a value of `wider` without loss: the
    /// change from `self` to `wider` breaks no consumer.
    pub fn widens_to(self, wider: FieldType) -> bool {
        use FieldType::*;
        let scalar = !matches!(self, Object | Array | Mixed);
        self == wider
            || self == Null
            || wider == Mixed
            || (wider == String && scalar)
            || matches!((self, wider), (Integer, Number) | (Date, Timestamp))
    }
}

/// One column of a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// The column's name, as in the payload.
    pub name: String,
    #[serde(rename = "type")]
    /// Its type.
    pub kind: FieldType,
    /// Whether it may be null.
    pub nullable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Its semantic type (email, url, …), if any.
    pub semantic: Option<String>,
    /// The layout of dates, times and timestamps (strftime), when the type has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// What the values looked like, kept to recognise the column under a new name.
    /// Not part of the fingerprint.
    #[serde(default)]
    pub evidence: Evidence,
}

#[cfg(test)]
impl Field {
    /// A nullable column of `kind` with nothing else known: what unit tests build.
    pub(crate) fn test(name: &str, kind: FieldType) -> Self {
        Field {
            name: name.into(),
            kind,
            nullable: true,
            semantic: None,
            format: None,
            evidence: Evidence::default(),
        }
    }
}

/// A few facts about a column's values: enough to tell a renamed column from a new one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The smallest value seen.
    pub min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The largest value seen.
    pub max: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// A few values seen.
    pub examples: Vec<String>,
    /// Layouts that fit every value when more than one does (`01/02/2024`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub formats: Vec<String>,
}

/// A version's columns, in the order of the file that shaped it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// The columns.
    pub fields: Vec<Field>,
}

impl Schema {
    /// The column named `name`, if the version has it.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// SHA-256 over what the version promises (names, types, nullability, semantic
    /// types, layouts), independent of column order and of the evidence.
    pub fn fingerprint(&self) -> String {
        let mut promised: Vec<Value> = self
            .fields
            .iter()
            .map(|f| serde_json::json!([f.name, f.kind.name(), f.nullable, f.semantic, f.format]))
            .collect();
        promised.sort_by(|a, b| a[0].as_str().cmp(&b[0].as_str()));
        let text = Value::Array(promised).to_string();
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

#[cfg(test)]
mod tests;

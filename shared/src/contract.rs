//! Data contracts: what a dataset accepts when its files change shape, and the
//! record-level checks that run in the streaming pass.

use std::collections::HashMap;

use serde_json::Value;

use crate::canonical::{escaped, members, string_text};
use crate::infer::{null_marker, text_fits};
use crate::schema::{Field, FieldType, Schema};

/// What a load does with a file whose schema differs from the dataset's version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Contract {
    /// Accept, and record the new version.
    #[default]
    Evolve,
    /// Reject a file whose schema would be a breaking change; accept the rest.
    Freeze,
    /// Keep the version; records that do not fit it are rejected one by one.
    DiscardRow,
}

impl Contract {
    /// The contract a name (as in `bronze.datasets.contract`) stands for.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "evolve" => Some(Contract::Evolve),
            "freeze" => Some(Contract::Freeze),
            "discard_row" => Some(Contract::DiscardRow),
            _ => None,
        }
    }

    /// The name stored in `bronze.datasets.contract` and printed.
    pub fn name(self) -> &'static str {
        match self {
            Contract::Evolve => "evolve",
            Contract::Freeze => "freeze",
            Contract::DiscardRow => "discard_row",
        }
    }
}

/// Compiles a dataset's JSON Schema (Draft 2020-12). Remote references are not
/// fetched: the crate is built without them, so a schema can never reach the network.
pub fn compile_json_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::new(schema)
        .map_err(|e| format!("not a valid JSON Schema (Draft 2020-12): {e}"))
}

/// The record-level checks of one load, built once and run on every record.
pub struct Checks {
    fit: Option<Fit>,
    json_schema: Option<jsonschema::Validator>,
}

impl Checks {
    /// `fit`: the version records must fit (the `discard_row` contract);
    /// `json_schema`: the dataset's compiled JSON Schema.
    pub fn new(fit: Option<(i32, &Schema)>, json_schema: Option<jsonschema::Validator>) -> Self {
        Self {
            fit: fit.map(|(version, schema)| Fit::new(version, schema)),
            json_schema,
        }
    }

    /// Values of delimited files are text: `"12"` is an integer there, not in JSON.
    pub fn set_delimited(&mut self, delimited: bool) {
        if let Some(fit) = &mut self.fit {
            fit.delimited = delimited;
        }
    }

    /// Checks one canonical JSON record; the error says why it is refused.
    pub fn check(&mut self, json: &[u8]) -> Result<(), String> {
        if let Some(fit) = &mut self.fit {
            fit.check(json)?;
        }
        let Some(validator) = &self.json_schema else {
            return Ok(());
        };
        let value: Value =
            serde_json::from_slice(json).map_err(|e| format!("record is not JSON: {e}"))?;
        match validator.validate(&value) {
            Ok(()) => Ok(()),
            Err(e) => {
                let pointer = e.instance_path().to_string();
                let at = if pointer.is_empty() { "/" } else { &pointer };
                Err(format!("JSON Schema: at {at}: {e}"))
            }
        }
    }
}

/// Whether records fit a version: known fields, values of the field's type, no null
/// where the version has none.
struct Fit {
    version: i32,
    fields: Vec<Field>,
    /// Field names as they appear in canonical JSON (escaped), to their index.
    index: HashMap<Vec<u8>, usize>,
    seen: Vec<bool>,
    delimited: bool,
    scratch: Vec<u8>,
}

impl Fit {
    fn new(version: i32, schema: &Schema) -> Self {
        let index = schema
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (escaped(&f.name), i))
            .collect();
        Self {
            version,
            fields: schema.fields.clone(),
            index,
            seen: vec![false; schema.fields.len()],
            delimited: false,
            scratch: Vec::new(),
        }
    }

    fn check(&mut self, json: &[u8]) -> Result<(), String> {
        let v = self.version;
        self.seen.fill(false);
        for (key, value) in members(json) {
            let Some(&i) = self.index.get(key) else {
                let name = String::from_utf8_lossy(key);
                return Err(format!("field `{name}` is not in schema version {v}"));
            };
            self.seen[i] = true;
            let field = &self.fields[i];
            let text = string_text(value, &mut self.scratch);
            if is_null(value, self.delimited, text) {
                if field.nullable {
                    continue;
                }
                let name = &field.name;
                return Err(format!(
                    "`{name}` is null; schema version {v} does not allow nulls"
                ));
            }
            if !value_fits(field, value, text, self.delimited) {
                let shown = String::from_utf8_lossy(&value[..value.len().min(80)]);
                let (name, kind) = (&field.name, field.kind.name());
                return Err(format!(
                    "`{name}`: {shown} is not {kind} (schema version {v})"
                ));
            }
        }
        match self
            .fields
            .iter()
            .zip(&self.seen)
            .find(|(f, seen)| !**seen && !f.nullable)
        {
            Some((missing, _)) => Err(format!(
                "`{}` is missing; schema version {v} requires it",
                missing.name
            )),
            None => Ok(()),
        }
    }
}

fn is_null(value: &[u8], delimited: bool, text: Option<&str>) -> bool {
    value == b"null" || (delimited && text.is_some_and(|t| null_marker(t).is_some()))
}

/// Whether a canonical JSON value fits `field`.
fn value_fits(field: &Field, value: &[u8], text: Option<&str>, delimited: bool) -> bool {
    use FieldType::*;
    let (kind, format) = (field.kind, field.format.as_deref());
    match (value.first(), text) {
        (_, Some(text)) if delimited => text_fits(kind, format, text),
        (_, Some(text)) => match kind {
            Null | String | Mixed => true,
            Date | Time | Timestamp => text_fits(kind, format, text),
            _ => false,
        },
        (Some(b't' | b'f'), _) => matches!(kind, Null | Boolean | String | Mixed),
        (Some(b'{'), _) => matches!(kind, Null | Object | Mixed),
        (Some(b'['), _) => matches!(kind, Null | Array | Mixed),
        (_, None) => {
            let number = std::str::from_utf8(value).unwrap_or_default();
            matches!(kind, Null | String | Mixed) || text_fits(kind, format, number)
        }
    }
}

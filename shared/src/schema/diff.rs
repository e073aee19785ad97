//! What changed between two versions, and whether it breaks consumers; and how a
//! file's schema moves the current version forward.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Field, FieldType, Schema};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
/// What changed in one column between two versions.
pub enum ChangeKind {
    /// A column appeared.
    Added,
    /// A column went away.
    Removed,
    /// A removed and an added column whose values match: most likely one column.
    Renamed,
    /// The type widened (integer → number, date → timestamp, anything → string).
    TypeWidened,
    /// The type narrowed.
    TypeNarrowed,
    /// The type changed to one neither widens to.
    TypeChanged,
    /// Nulls became allowed.
    NullableWidened,
    /// Nulls are no longer allowed.
    NullableNarrowed,
    /// A semantic type appeared.
    SemanticAdded,
    /// The semantic type went away.
    SemanticLost,
    /// The semantic type changed.
    SemanticChanged,
    /// The date or time layout changed.
    FormatChanged,
}

impl ChangeKind {
    /// The name stored in `bronze.schemas.changes` and printed.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Renamed => "renamed",
            ChangeKind::TypeWidened => "type_widened",
            ChangeKind::TypeNarrowed => "type_narrowed",
            ChangeKind::TypeChanged => "type_changed",
            ChangeKind::NullableWidened => "nullable_widened",
            ChangeKind::NullableNarrowed => "nullable_narrowed",
            ChangeKind::SemanticAdded => "semantic_added",
            ChangeKind::SemanticLost => "semantic_lost",
            ChangeKind::SemanticChanged => "semantic_changed",
            ChangeKind::FormatChanged => "format_changed",
        }
    }
}

/// One classified difference between two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What kind of change.
    pub change: ChangeKind,
    /// The column, by its name in the newer version (the older one for `removed`).
    pub column: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The column's type or layout before, when it had one.
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// After.
    pub to: Option<String>,
    /// Whether it breaks a consumer of the typed view.
    pub breaking: bool,
}

impl Change {
    fn new(change: ChangeKind, column: &str, breaking: bool) -> Self {
        Self {
            change,
            column: column.to_owned(),
            from: None,
            to: None,
            breaking,
        }
    }

    fn between(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self.to = Some(to.into());
        self
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let column = &self.column;
        let from = self.from.as_deref().unwrap_or("none");
        let to = self.to.as_deref().unwrap_or("none");
        match self.change {
            ChangeKind::Added => write!(f, "column `{column}` added"),
            ChangeKind::Removed => write!(f, "column `{column}` removed"),
            ChangeKind::Renamed => write!(
                f,
                "column `{from}` renamed to `{to}` (likely: removed and added with matching values)"
            ),
            kind => {
                let what = kind.name().replace('_', " ");
                write!(f, "`{column}`: {what} {from} → {to}")
            }
        }
    }
}

/// Every difference from `old` to `new`, classified.
///
/// Non-breaking: a column added, nullable widened, a type widened (integer → number,
/// date → timestamp, anything → string), a semantic type added, a layout with the
/// same field order. Breaking: everything that can make a consumer's value vanish or
/// change meaning.
pub fn diff(old: &Schema, new: &Schema) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut added: Vec<&Field> = Vec::new();
    for field in &new.fields {
        match old.field(&field.name) {
            Some(before) => compare(before, field, &mut changes),
            None => added.push(field),
        }
    }
    let removed: Vec<&Field> = old
        .fields
        .iter()
        .filter(|f| new.field(&f.name).is_none())
        .collect();
    let mut renamed_to = Vec::new();
    for gone in &removed {
        let partner = added
            .iter()
            .find(|a| !renamed_to.contains(&a.name) && likely_same_column(gone, a));
        match partner {
            Some(a) => {
                renamed_to.push(a.name.clone());
                changes.push(
                    Change::new(ChangeKind::Renamed, &a.name, true).between(&gone.name, &a.name),
                );
            }
            None => changes.push(Change::new(ChangeKind::Removed, &gone.name, true)),
        }
    }
    for field in added.iter().filter(|a| !renamed_to.contains(&a.name)) {
        changes.push(Change::new(ChangeKind::Added, &field.name, false));
    }
    changes
}

fn compare(old: &Field, new: &Field, changes: &mut Vec<Change>) {
    let name = &new.name;
    if old.kind != new.kind {
        let (kind, breaking) = if old.kind.widens_to(new.kind) {
            (ChangeKind::TypeWidened, false)
        } else if new.kind.widens_to(old.kind) {
            (ChangeKind::TypeNarrowed, true)
        } else {
            (ChangeKind::TypeChanged, true)
        };
        changes.push(Change::new(kind, name, breaking).between(old.kind.name(), new.kind.name()));
    }
    if old.nullable != new.nullable {
        let (kind, breaking) = if new.nullable {
            (ChangeKind::NullableWidened, false)
        } else {
            (ChangeKind::NullableNarrowed, true)
        };
        changes.push(
            Change::new(kind, name, breaking)
                .between(old.nullable.to_string(), new.nullable.to_string()),
        );
    }
    match (&old.semantic, &new.semantic) {
        (None, Some(s)) => {
            changes.push(Change::new(ChangeKind::SemanticAdded, name, false).between("none", s));
        }
        (Some(s), None) => {
            changes.push(Change::new(ChangeKind::SemanticLost, name, true).between(s, "none"));
        }
        (Some(a), Some(b)) if a != b => {
            changes.push(Change::new(ChangeKind::SemanticChanged, name, true).between(a, b));
        }
        _ => {}
    }
    if let (Some(a), Some(b)) = (&old.format, &new.format) {
        if a != b && old.kind == new.kind {
            let breaking = field_order(a) != field_order(b);
            changes.push(Change::new(ChangeKind::FormatChanged, name, breaking).between(a, b));
        }
    }
}

/// `ymd`, `dmy` or `mdy`: the order a date layout reads its fields in. Layouts that
/// differ only in separators read the same values the same way.
pub(crate) fn field_order(format: &str) -> &'static str {
    if format.starts_with("%d") {
        "dmy"
    } else if format.starts_with("%m") {
        "mdy"
    } else {
        "ymd"
    }
}

/// A removed and an added column are one column renamed when their types are
/// compatible and their values match: the same range, or shared examples.
fn likely_same_column(old: &Field, new: &Field) -> bool {
    let compatible = old.kind != FieldType::Null
        && new.kind != FieldType::Null
        && (old.kind.widens_to(new.kind) || new.kind.widens_to(old.kind));
    if !compatible
        || (old.semantic.is_some() && new.semantic.is_some() && old.semantic != new.semantic)
    {
        return false;
    }
    let (a, b) = (&old.evidence, &new.evidence);
    let same_range = a.min.is_some() && a.min == b.min && a.max.is_some() && a.max == b.max;
    let shared = a.examples.iter().filter(|e| b.examples.contains(e)).count();
    let needed = a.examples.len().min(b.examples.len()).min(2);
    same_range || (needed > 0 && shared >= needed)
}

/// The version a file moves `current` to.
///
/// Evidence only widens: a file whose values fit the current version leaves it as it
/// is, whatever narrower type or nullability the file alone would suggest. Columns the
/// file lacks are removed, except in JSON files, where a missing field is a null: a
/// nullable field absent from every record of one file is still part of the schema.
/// A file without records says nothing and leaves the version as it is.
pub fn evolve(current: &Schema, file: &Schema, records: u64, json: bool) -> Schema {
    if records == 0 {
        return current.clone();
    }
    let mut fields: Vec<Field> = file
        .fields
        .iter()
        .map(|seen| match current.field(&seen.name) {
            Some(known) => merge(known, seen),
            None => seen.clone(),
        })
        .collect();
    if json {
        let kept = current
            .fields
            .iter()
            .filter(|f| f.nullable && file.field(&f.name).is_none());
        fields.extend(kept.cloned());
    }
    Schema { fields }
}

/// A column of the current version, moved by what one file showed of it.
fn merge(known: &Field, seen: &Field) -> Field {
    let nullable = known.nullable || seen.nullable;
    if seen.kind == FieldType::Null {
        return Field {
            nullable,
            ..known.clone()
        };
    }
    let mut next = seen.clone();
    next.nullable = nullable;
    if seen.kind.widens_to(known.kind) {
        next.kind = known.kind;
        next.format = match (&known.format, &seen.format) {
            (Some(k), Some(s)) if seen.kind == known.kind && s != k => {
                let fits = seen.evidence.formats.contains(k);
                Some(if fits { k.clone() } else { s.clone() })
            }
            _ => known.format.clone(),
        };
        if seen.kind != known.kind {
            // A narrower sample says nothing about the wider type's semantics.
            next.semantic = known.semantic.clone();
        }
    }
    next
}

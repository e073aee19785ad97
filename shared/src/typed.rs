//! The typed view of a dataset: `tenant_<t>.<dataset>_typed`, one column per field of
//! the current schema version, so users query bronze as a normal table.
//!
//! Every cast goes through a `bronze.try_*` function that returns NULL for a value
//! that does not fit (counted in the load's validity), so a query over the view never
//! fails on one bad value.

use std::collections::HashSet;

use tokio_postgres::Transaction;

use crate::keys::{quote_ident, Destination};
use crate::schema::{field_order, Field, FieldType, Schema};
use crate::store::dataset_table;

/// PostgreSQL's identifier limit (NAMEDATALEN - 1): longer names are cut by the server,
/// and two cut names could collide.
const MAX_IDENT: usize = 63;

/// Lineage columns the view adds after the data; data columns never take these names.
const LINEAGE: [(&str, &str); 8] = [
    ("record_key", "_bronze_key"),
    ("version", "_bronze_version"),
    ("valid_from", "_bronze_valid_from"),
    ("schema_version", "_bronze_schema_version"),
    ("load_id", "_bronze_load_id"),
    ("source_key", "_bronze_source_key"),
    ("source_line", "_bronze_source_line"),
    ("validated", "_bronze_validated"),
];

pub fn view_name(dest: &Destination) -> String {
    format!(
        "{}.{}",
        quote_ident(&dest.schema()),
        quote_ident(&format!("{}_typed", dest.dataset))
    )
}

/// (Re)creates the view for `schema`. Dropped first: a new version may remove or
/// retype columns, which `CREATE OR REPLACE VIEW` refuses.
pub async fn create_view(
    tx: &Transaction<'_>,
    dest: &Destination,
    schema: &Schema,
) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute(&view_sql(dest, schema)).await
}

pub fn view_sql(dest: &Destination, schema: &Schema) -> String {
    let view = view_name(dest);
    let mut taken: HashSet<String> = LINEAGE.iter().map(|(_, a)| (*a).to_owned()).collect();
    let mut columns: Vec<String> = schema
        .fields
        .iter()
        .map(|f| {
            format!(
                "{} AS {}",
                cast(f),
                quote_ident(&column_name(&f.name, &mut taken))
            )
        })
        .collect();
    columns.extend(LINEAGE.iter().map(|(c, a)| format!("t.{c} AS {a}")));
    format!(
        "DROP VIEW IF EXISTS {view};
         CREATE VIEW {view} AS
         SELECT {}
         FROM {} t
         WHERE t.is_current AND t.change_type <> 'delete'",
        columns.join(",\n                "),
        dataset_table(dest)
    )
}

/// The expression that reads `field` out of the payload as its type.
fn cast(field: &Field) -> String {
    let text = format!("(t.payload ->> {})", literal(&field.name));
    let order = field.format.as_deref().map_or("ymd", field_order);
    match field.kind {
        FieldType::Null | FieldType::String => text,
        FieldType::Boolean => format!("bronze.try_boolean{text}"),
        FieldType::Integer => format!("bronze.try_bigint{text}"),
        FieldType::Number => format!("bronze.try_numeric{text}"),
        FieldType::Date => format!("bronze.try_date({text}, '{order}')"),
        FieldType::Time => format!("bronze.try_time{text}"),
        FieldType::Timestamp => {
            let zoned = field
                .format
                .as_deref()
                .is_some_and(|f| f.ends_with('Z') || f.ends_with("%z"));
            let function = if zoned {
                "try_timestamptz"
            } else {
                "try_timestamp"
            };
            format!("bronze.{function}({text}, '{order}')")
        }
        FieldType::Object | FieldType::Array | FieldType::Mixed => {
            format!("(t.payload -> {})", literal(&field.name))
        }
    }
}

/// A string literal; with `standard_conforming_strings` (on since 9.1) only the
/// quote needs doubling.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A column name the server keeps as written and no other column of the view has.
fn column_name(name: &str, taken: &mut HashSet<String>) -> String {
    let base = truncate(if name.is_empty() { "column" } else { name }, MAX_IDENT);
    let mut candidate = base.to_owned();
    let mut n = 2;
    while taken.contains(&candidate) {
        let suffix = format!("_{n}");
        candidate = format!("{}{suffix}", truncate(base, MAX_IDENT - suffix.len()));
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_short_enough() {
        let mut taken: HashSet<String> = LINEAGE.iter().map(|(_, a)| (*a).to_owned()).collect();
        let long = "é".repeat(40);
        let first = column_name(&long, &mut taken);
        assert!(first.len() <= MAX_IDENT && first.len().is_multiple_of(2));
        let second = column_name(&long, &mut taken);
        assert_ne!(first, second);
        assert!(second.len() <= MAX_IDENT && second.ends_with("_2"));
        assert_eq!(column_name("_bronze_key", &mut taken), "_bronze_key_2");
        assert_eq!(column_name("", &mut taken), "column");
    }

    #[test]
    fn names_in_sql_are_quoted() {
        let field = Field {
            name: "it's \"x\"".into(),
            kind: FieldType::Integer,
            nullable: true,
            semantic: None,
            format: None,
            evidence: Default::default(),
        };
        assert_eq!(
            cast(&field),
            "bronze.try_bigint(t.payload ->> 'it''s \"x\"')"
        );
    }
}

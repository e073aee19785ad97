//! The typed view of a dataset: `tenant_<t>.<dataset>_typed`, one column per field of
//! the current schema version, so users query bronze as a normal table.
//!
//! Every cast goes through a `bronze.try_*` function that returns NULL for a value
//! that does not fit (counted in the load's validity), so a query over the view never
//! fails on one bad value.

use std::collections::HashSet;

use tokio_postgres::Transaction;

use crate::keys::{quote_ident, Destination};
use crate::rejects::cut;
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

/// A view holds at most 1,600 columns (PostgreSQL's limit, with the lineage ones);
/// the fields past these are still in `payload`.
const MAX_DATA_COLUMNS: usize = 1500;

/// The quoted name of a dataset's typed view, `tenant_<t>.<dataset>_typed`.
pub fn view_name(dest: &Destination) -> String {
    format!(
        "{}.{}",
        quote_ident(&dest.schema()),
        quote_ident(&format!("{}_typed", dest.dataset))
    )
}

/// (Re)creates the view for `schema`. A view that only gains columns is replaced in
/// place, so grants and the views users built on it survive; otherwise it is dropped
/// and created. When neither works (views built on a column that went away), the
/// previous view stays and the reason is returned: the load itself is fine.
pub async fn create_view(
    tx: &Transaction<'_>,
    dest: &Destination,
    schema: &Schema,
) -> Result<Option<String>, tokio_postgres::Error> {
    let view = view_name(dest);
    let select = select_sql(dest, schema);
    // Column names reach the SQL as string literals; make sure quotes are all that needs escaping.
    tx.batch_execute("SET LOCAL standard_conforming_strings = on")
        .await?;
    let replace = format!("CREATE OR REPLACE VIEW {view} AS {select}");
    if attempt(tx, &replace).await?.is_ok() {
        return Ok(None);
    }
    let recreate = format!("DROP VIEW IF EXISTS {view}; CREATE VIEW {view} AS {select}");
    Ok(attempt(tx, &recreate).await?.err().map(|e| {
        format!(
            "typed view {view} left as it was: {}",
            crate::aws::describe(&e)
        )
    }))
}

/// Runs `sql` inside a savepoint: its failure is returned, and the transaction goes on.
async fn attempt(
    tx: &Transaction<'_>,
    sql: &str,
) -> Result<Result<(), tokio_postgres::Error>, tokio_postgres::Error> {
    tx.batch_execute("SAVEPOINT bronze_view").await?;
    match tx.batch_execute(sql).await {
        Ok(()) => {
            tx.batch_execute("RELEASE SAVEPOINT bronze_view").await?;
            Ok(Ok(()))
        }
        Err(e) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT bronze_view")
                .await?;
            Ok(Err(e))
        }
    }
}

/// The view's `SELECT`: each field cast from the payload, then the lineage columns.
pub fn select_sql(dest: &Destination, schema: &Schema) -> String {
    let mut taken: HashSet<String> = LINEAGE.iter().map(|(_, a)| (*a).to_owned()).collect();
    let mut columns: Vec<String> = schema
        .fields
        .iter()
        .take(MAX_DATA_COLUMNS)
        .map(|f| {
            format!(
                "{} AS {}",
                cast(f).expr,
                quote_ident(&column_name(&f.name, &mut taken))
            )
        })
        .collect();
    columns.extend(LINEAGE.iter().map(|(c, a)| format!("t.{c} AS {a}")));
    format!(
        "SELECT {}
         FROM {} t
         WHERE t.is_current AND t.change_type <> 'delete'",
        columns.join(",\n                "),
        dataset_table(dest)
    )
}

/// A field read out of the payload of the row aliased `t` as its registered type: the
/// typed view's columns, and the records API's filters and sort keys, so a filter
/// compares exactly what the view shows (and an expression index on it serves both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cast {
    /// The SQL expression; the field's name is in it as an escaped string literal.
    pub expr: String,
    /// The PostgreSQL type the expression has; `None` for JSON values (`jsonb`) and
    /// text, which compare as they are.
    pub sql_type: Option<&'static str>,
}

/// The expression that reads `field` out of the payload of the row aliased `t`.
pub fn cast(field: &Field) -> Cast {
    cast_of(field, "t.payload")
}

/// The expression that reads `field` out of `payload` (a column reference) as its
/// type: an index over the table names the column bare, and matches queries that name
/// it through an alias.
pub fn cast_of(field: &Field, payload: &str) -> Cast {
    let text = format!("({payload} ->> {})", literal(&field.name));
    let order = field.format.as_deref().map_or("ymd", field_order);
    let typed = |expr: String, sql_type| Cast {
        expr,
        sql_type: Some(sql_type),
    };
    match field.kind {
        FieldType::Null | FieldType::String => Cast {
            expr: text,
            sql_type: None,
        },
        FieldType::Boolean => typed(format!("bronze.try_boolean{text}"), "boolean"),
        FieldType::Integer => typed(format!("bronze.try_bigint{text}"), "bigint"),
        FieldType::Number => typed(format!("bronze.try_numeric{text}"), "numeric"),
        FieldType::Date => typed(format!("bronze.try_date({text}, '{order}')"), "date"),
        FieldType::Time => typed(format!("bronze.try_time{text}"), "time"),
        FieldType::Timestamp => {
            // One value with a zone makes the column zoned: reading `+02:00` as local
            // time would shift it silently.
            let zoned = field
                .format
                .iter()
                .chain(&field.evidence.formats)
                .any(|f| f.ends_with('Z') || f.ends_with("%z"));
            let (function, sql_type) = if zoned {
                ("try_timestamptz", "timestamptz")
            } else {
                ("try_timestamp", "timestamp")
            };
            typed(format!("bronze.{function}({text}, '{order}')"), sql_type)
        }
        FieldType::Object | FieldType::Array | FieldType::Mixed => Cast {
            expr: format!("({payload} -> {})", literal(&field.name)),
            sql_type: None,
        },
    }
}

/// A string literal; with `standard_conforming_strings` (on since 9.1) only the
/// quote needs doubling.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A column name the server keeps as written and no other column of the view has.
fn column_name(name: &str, taken: &mut HashSet<String>) -> String {
    let base = cut(if name.is_empty() { "column" } else { name }, MAX_IDENT);
    let mut candidate = base.to_owned();
    let mut n = 2;
    while taken.contains(&candidate) {
        let suffix = format!("_{n}");
        candidate = format!("{}{suffix}", cut(base, MAX_IDENT - suffix.len()));
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
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
            cast(&field).expr,
            "bronze.try_bigint(t.payload ->> 'it''s \"x\"')"
        );
    }
}

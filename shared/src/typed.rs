//! The typed relation of a dataset: `tenant_<t>.<dataset>_typed`, one column per field
//! of the current schema version, so users query bronze as a normal table. With
//! `jsonb` storage it is a view over the bronze table; with `structured` storage it is
//! a table of the current rows, kept by every load ([`table`]). Both get indexes on
//! the key and the columns a dataset names ([`index`]).
//!
//! Every cast goes through a `bronze.try_*` function that returns NULL for a value
//! that does not fit (counted in the load's validity), so a query over the view never
//! fails on one bad value. They are SQL functions the planner inlines (migration 0010),
//! so an expression index on the bronze table matches what a query through the view
//! asks.

mod follow;
mod index;
mod stats;
mod table;

use std::collections::HashSet;
use std::fmt;

use tokio_postgres::Transaction;

use crate::keys::{quote_ident, Destination};
use crate::registry::RegistryError;
use crate::rejects::cut;
use crate::schema::{field_order, Field, FieldType, Schema};
use crate::store::dataset_table;

pub use follow::{apply, follow, rebuild, Applied, Written};

/// Where a dataset's typed rows live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Storage {
    /// A view casting the bronze table's payloads at query time: nothing to keep, any
    /// schema change is free, every query pays the casts.
    #[default]
    Jsonb,
    /// A table of the current rows with native columns, kept by each load in its own
    /// transaction: queries read it like a native table, loads pay for keeping it.
    Structured,
}

impl Storage {
    /// The storage a name (`jsonb`, `structured`) stands for.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "jsonb" => Some(Storage::Jsonb),
            "structured" => Some(Storage::Structured),
            _ => None,
        }
    }

    /// The name stored in `bronze.datasets.storage`.
    pub fn name(self) -> &'static str {
        match self {
            Storage::Jsonb => "jsonb",
            Storage::Structured => "structured",
        }
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the typed relation could not be made or kept.
#[derive(Debug, thiserror::Error)]
pub enum TypedError {
    #[error("database: {0}")]
    /// A statement on the typed relation or its indexes failed.
    Postgres(#[from] tokio_postgres::Error),
    #[error("schema registry: {0}")]
    /// The schema version the typed relation follows could not be read.
    Registry(#[from] RegistryError),
}

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

/// The planner's estimate of `relation`'s rows (0 when it was never analysed): enough
/// to tell a small relation from one too big to rebuild or index inside a transaction.
async fn estimated_rows(
    tx: &Transaction<'_>,
    relation: &str,
) -> Result<f64, tokio_postgres::Error> {
    let row = tx
        .query_one(
            "SELECT greatest(coalesce(max(reltuples), 0), 0)::float8 FROM pg_class
             WHERE oid = to_regclass($1)",
            &[&relation],
        )
        .await?;
    Ok(row.get(0))
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
    format!(
        "SELECT {}
         FROM {} t
         WHERE {CURRENT}",
        select_list(&columns(schema)),
        dataset_table(dest)
    )
}

/// The rows the typed relation shows: a key's current version, unless it is a delete.
const CURRENT: &str = "t.is_current AND t.change_type <> 'delete'";

/// The select list over a bronze row `t`: the data columns, then the lineage ones.
fn select_list(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| format!("{} AS {}", c.cast("t.payload"), quote_ident(&c.name)))
        .chain(LINEAGE.iter().map(|(c, a)| format!("t.{c} AS {a}")))
        .collect::<Vec<_>>()
        .join(",\n                ")
}

/// The typed relation's column names, data then lineage, quoted, in select order.
fn column_list(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .chain(LINEAGE.iter().map(|(_, a)| (*a).to_owned()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One data column of the typed relation.
#[derive(Debug, Clone, PartialEq)]
struct Column {
    /// Its name in the relation (unique, short enough, never a lineage name).
    name: String,
    /// The field of the schema it reads.
    field: Field,
}

impl Column {
    /// The expression reading this column out of `payload` (a jsonb expression).
    fn cast(&self, payload: &str) -> String {
        cast(&self.field, payload)
    }

    /// Its SQL type: what [`Column::cast`] returns.
    fn sql_type(&self) -> &'static str {
        sql_type(&self.field)
    }
}

/// The SQL type [`cast`] reads `field` as.
fn sql_type(field: &Field) -> &'static str {
    match field.kind {
        FieldType::Null | FieldType::String => "text",
        FieldType::Boolean => "boolean",
        FieldType::Integer => "bigint",
        FieldType::Number => "numeric",
        FieldType::Date => "date",
        FieldType::Time => "time",
        FieldType::Timestamp if zoned(field) => "timestamptz",
        FieldType::Timestamp => "timestamp",
        FieldType::Object | FieldType::Array | FieldType::Mixed => "jsonb",
    }
}

/// The data columns of `schema`, in field order, the first [`MAX_DATA_COLUMNS`].
fn columns(schema: &Schema) -> Vec<Column> {
    let mut taken: HashSet<String> = LINEAGE.iter().map(|(_, a)| (*a).to_owned()).collect();
    schema
        .fields
        .iter()
        .take(MAX_DATA_COLUMNS)
        .map(|f| Column {
            name: column_name(&f.name, &mut taken),
            field: f.clone(),
        })
        .collect()
}

/// Whether a timestamp field is zoned: one value with a zone makes the column zoned,
/// since reading `+02:00` as local time would shift it silently.
fn zoned(field: &Field) -> bool {
    field
        .format
        .iter()
        .chain(&field.evidence.formats)
        .any(|f| f.ends_with('Z') || f.ends_with("%z"))
}

/// The expression that reads `field` out of `payload` (`t.payload` in the view, the
/// bare column in an expression index) as its type.
fn cast(field: &Field, payload: &str) -> String {
    let text = format!("({payload} ->> {})", literal(&field.name));
    let order = field.format.as_deref().map_or("ymd", field_order);
    match field.kind {
        FieldType::Null | FieldType::String => text,
        FieldType::Boolean => format!("bronze.try_boolean{text}"),
        FieldType::Integer => format!("bronze.try_bigint{text}"),
        FieldType::Number => format!("bronze.try_numeric{text}"),
        FieldType::Date => format!("bronze.try_date({text}, '{order}')"),
        FieldType::Time => format!("bronze.try_time{text}"),
        FieldType::Timestamp => {
            let function = if zoned(field) {
                "try_timestamptz"
            } else {
                "try_timestamp"
            };
            format!("bronze.{function}({text}, '{order}')")
        }
        FieldType::Object | FieldType::Array | FieldType::Mixed => {
            format!("({payload} -> {})", literal(&field.name))
        }
    }
}

/// A field read out of a payload as its registered type, for the records API's
/// filters, sort keys and indexes: the typed relation's own expression, so a filter
/// compares exactly what `_typed` shows (and an expression index serves both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cast {
    /// The SQL expression; the field's name is in it as an escaped string literal.
    pub expr: String,
    /// The PostgreSQL type the expression has; `None` for text and JSON values
    /// (`jsonb`), which compare as they are.
    pub sql_type: Option<&'static str>,
}

/// `field` read out of `payload` (`t.payload` in a query, the bare column in an
/// expression index) as its type.
pub fn cast_of(field: &Field, payload: &str) -> Cast {
    let sql_type = match field.kind {
        FieldType::Null
        | FieldType::String
        | FieldType::Object
        | FieldType::Array
        | FieldType::Mixed => None,
        _ => Some(sql_type(field)),
    };
    Cast {
        expr: cast(field, payload),
        sql_type,
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
        let field = Field::test("it's \"x\"", FieldType::Integer);
        assert_eq!(
            cast(&field, "t.payload"),
            "bronze.try_bigint(t.payload ->> 'it''s \"x\"')"
        );
    }
}

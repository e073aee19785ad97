//! Indexes on typed columns: the key columns of a keyed dataset, and the columns its
//! settings name (`bronze datasets set … --index col,col`, one index per column).
//!
//! With jsonb storage they are expression indexes on the bronze table, over the very
//! expression the view selects (the casts are inlined SQL, so the planner matches
//! them) and with its predicate (current rows); with structured storage they are
//! plain indexes on the typed table's columns. Each index's name carries a hash of
//! its definition, so a definition that changes (a key column's type widened) gets a
//! new index and the old one is dropped.

use sha2::{Digest, Sha256};
use tokio_postgres::Transaction;

use super::{columns, estimated_rows, quote_ident, table, Column, Storage};
use crate::keys::Destination;
use crate::rejects::cut;
use crate::schema::Schema;
use crate::store::{dataset_table, DatasetSettings};

/// Marks the indexes made here: no dataset name has a `$`, so no other index of the
/// tenant's schema has it.
const MARK: &str = "$x";

/// Past this many rows (the planner's estimate) an index asked for by a settings
/// change is built `CONCURRENTLY`, outside any transaction, so that loads and readers
/// of the dataset are not held up while it builds.
const LARGE_ROWS: f64 = 100_000.0;

/// Where an index that is missing gets built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Build {
    /// In the caller's transaction, whatever the size: a load, whose key index must
    /// exist when it commits.
    Here,
    /// In the caller's transaction when the relation is small; otherwise returned,
    /// to be built `CONCURRENTLY` after it commits.
    HereIfSmall,
}

/// One index bronze keeps.
#[derive(Debug, Clone, PartialEq)]
struct Wanted {
    name: String,
    /// `ON relation (expressions) [WHERE …]`.
    definition: String,
}

/// The indexes `settings` ask for over `schema`'s columns, on the relation `storage`
/// reads. A named column the version lacks is skipped: a later version may have it.
fn wanted(
    dest: &Destination,
    settings: &DatasetSettings,
    schema: &Schema,
    storage: Storage,
) -> Vec<Wanted> {
    let columns = columns(schema);
    let find = |name: &String| columns.iter().find(|c| &c.field.name == name);
    let mut sets: Vec<Vec<&Column>> = Vec::new();
    let key: Option<Vec<&Column>> = settings.key_columns.iter().map(find).collect();
    if let Some(key) = key.filter(|k| !k.is_empty()) {
        sets.push(key);
    }
    for column in settings.index_columns.iter().filter_map(find) {
        if !sets.iter().any(|s| s.len() == 1 && s[0] == column) {
            sets.push(vec![column]);
        }
    }
    sets.into_iter()
        .map(|set| definition(dest, storage, &set))
        .map(|definition| Wanted {
            name: index_name(dest, &definition),
            definition,
        })
        .collect()
}

/// `ON relation (…) [WHERE …]` for an index over `set`.
fn definition(dest: &Destination, storage: Storage, set: &[&Column]) -> String {
    match storage {
        Storage::Jsonb => {
            let expressions: Vec<String> = set
                .iter()
                .map(|c| format!("({})", c.cast("payload")))
                .collect();
            format!(
                "ON {} ({}) WHERE is_current AND change_type <> 'delete'",
                dataset_table(dest),
                expressions.join(", ")
            )
        }
        Storage::Structured => {
            let names: Vec<String> = set.iter().map(|c| quote_ident(&c.name)).collect();
            format!("ON {} ({})", table::name(dest), names.join(", "))
        }
    }
}

/// `<dataset>$x<hash>`: the dataset name cut so the whole stays within PostgreSQL's
/// 63 bytes, and a hash of the definition (dataset included) keeping it unique.
fn index_name(dest: &Destination, definition: &str) -> String {
    let hash = hex::encode(Sha256::digest(definition.as_bytes()));
    format!("{}{MARK}{}", cut(dest.dataset.as_str(), 48), &hash[..8])
}

/// Makes the indexes `settings` ask for exist on the typed relation of `storage`, and
/// drops those made here that no longer fit (another type, another storage, a column
/// no longer named). Returns the `CREATE INDEX CONCURRENTLY` statements left to run
/// after the transaction commits ([`Build::HereIfSmall`] on a large relation).
pub(super) async fn ensure(
    tx: &Transaction<'_>,
    dest: &Destination,
    settings: &DatasetSettings,
    schema: &Schema,
    build: Build,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let storage = settings.storage;
    let wanted = wanted(dest, settings, schema, storage);
    let relation = match storage {
        Storage::Jsonb => dataset_table(dest).to_string(),
        Storage::Structured => table::name(dest),
    };
    let existing = existing(tx, dest).await?;
    let schema_name = quote_ident(&dest.schema());
    for (name, valid) in &existing {
        if !valid || !wanted.iter().any(|w| &w.name == name) {
            tx.batch_execute(&format!("DROP INDEX {schema_name}.{}", quote_ident(name)))
                .await?;
        }
    }
    let missing = wanted.iter().filter(|w| {
        !existing
            .iter()
            .any(|(name, valid)| *valid && name == &w.name)
    });
    let large = build == Build::HereIfSmall && estimated_rows(tx, &relation).await? > LARGE_ROWS;
    let mut later = Vec::new();
    for w in missing {
        let name = quote_ident(&w.name);
        if large {
            later.push(format!(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} {}",
                w.definition
            ));
        } else {
            tx.batch_execute(&format!("CREATE INDEX {name} {}", w.definition))
                .await?;
        }
    }
    Ok(later)
}

/// The indexes made here on the dataset's bronze and typed tables (`$x` and eight hex
/// digits: the records API's indexes once had `$x` and four), with whether each is
/// valid (a `CONCURRENTLY` build that failed leaves an invalid one behind).
async fn existing(
    tx: &Transaction<'_>,
    dest: &Destination,
) -> Result<Vec<(String, bool)>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT c.relname::text, i.indisvalid
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid IN (to_regclass($1), to_regclass($2))
               AND c.relname ~ ('\\' || $3 || '[0-9a-f]{8}$')",
            &[&dataset_table(dest).as_str(), &table::name(dest), &MARK],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Field, FieldType};

    #[test]
    fn the_key_and_each_named_column_get_one_index() -> Result<(), Box<dyn std::error::Error>> {
        let dest = Destination::new("acme", "orders")?;
        let schema = Schema {
            fields: vec![
                Field::test("order_id", FieldType::Integer),
                Field::test("country", FieldType::String),
            ],
        };
        let settings = DatasetSettings {
            key_columns: vec!["order_id".into()],
            index_columns: vec!["country".into(), "order_id".into(), "absent".into()],
            ..Default::default()
        };
        let view = wanted(&dest, &settings, &schema, Storage::Jsonb);
        let definitions: Vec<&str> = view.iter().map(|w| w.definition.as_str()).collect();
        assert_eq!(
            definitions,
            [
                "ON \"tenant_acme\".\"orders\" ((bronze.try_bigint(payload ->> 'order_id'))) \
                 WHERE is_current AND change_type <> 'delete'",
                "ON \"tenant_acme\".\"orders\" (((payload ->> 'country'))) \
                 WHERE is_current AND change_type <> 'delete'",
            ]
        );
        let table = wanted(&dest, &settings, &schema, Storage::Structured);
        assert_eq!(
            table[0].definition,
            "ON \"tenant_acme\".\"orders_typed\" (\"order_id\")"
        );
        assert!(table
            .iter()
            .chain(&view)
            .all(|w| w.name.starts_with("orders$x")));
        assert_ne!(table[0].name, view[0].name);
        Ok(())
    }
}

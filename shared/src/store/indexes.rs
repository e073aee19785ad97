//! The records API's optional indexes of a dataset (`bronze datasets set … --api-index`):
//! `payload` is a GIN `jsonb_path_ops` index over the current rows (eq filters are
//! also asked as containment, which it serves), and a field name is an expression
//! index on the field's typed value, the very expression the API filters and sorts
//! by (so `eq`, ranges and `order` on it use it).

use sha2::{Digest, Sha256};
use tokio_postgres::GenericClient;

use super::dataset_table;
use crate::keys::{quote_ident, Destination};
use crate::registry::{self, RegistryError};
use crate::typed::cast_of;

/// The spec that asks for the GIN index over the whole payload.
pub const PAYLOAD: &str = "payload";

/// Why the indexes could not be set.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A field the dataset's current schema does not have.
    #[error(
        "--api-index {field}: the dataset's current schema has no such field (it has: {known})"
    )]
    UnknownField {
        /// The field asked for.
        field: String,
        /// The fields it has.
        known: String,
    },
    /// Reading the schema failed.
    #[error("schema registry: {0}")]
    Registry(#[from] RegistryError),
    /// Creating or dropping an index failed.
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

/// The dataset's index specs, as set.
pub async fn api_indexes(
    db: &impl GenericClient,
    dest: &Destination,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let row = db
        .query_opt(
            "SELECT api_indexes FROM bronze.datasets WHERE tenant = $1 AND dataset = $2",
            &[&dest.tenant.as_str(), &dest.dataset.as_str()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)).unwrap_or_default())
}

/// An index's name: the dataset, `$` (in no dataset name, so no other dataset's
/// index has it), and `gin` or `a` and a digest of the field (any field name fits in
/// PostgreSQL's 63 bytes that way: a dataset name is at most 57). `$x` marks the typed
/// relation's indexes (`typed::index`), which these must never be taken for.
fn index_name(dest: &Destination, spec: &str) -> String {
    if spec == PAYLOAD {
        return format!("{}$gin", dest.dataset);
    }
    let digest = hex::encode(Sha256::digest(spec.as_bytes()));
    format!("{}$a{}", dest.dataset, &digest[..4])
}

/// Records `specs` for the dataset (which must have settings) and makes its indexes
/// match them: the missing ones built, the ones no longer asked for dropped. Returns
/// whether the table exists; when it does not yet, the indexes are built by the next
/// call after its first load.
pub async fn set_api_indexes(
    db: &impl GenericClient,
    dest: &Destination,
    specs: &[String],
) -> Result<bool, IndexError> {
    let table = dataset_table(dest);
    let exists: bool = db
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table.as_str()])
        .await?
        .get(0);
    let schema = registry::current(db, dest).await?.map(|v| v.schema);
    let mut wanted = Vec::new();
    for spec in specs {
        let expr = if spec == PAYLOAD {
            "USING gin (payload jsonb_path_ops)".to_owned()
        } else {
            match schema.as_ref().and_then(|s| s.field(spec)) {
                // Then the record key: `order=field.asc` and its keyset cursor are
                // one walk of the index, stopping at the page's end.
                Some(field) => format!("(({}), record_key)", cast_of(field, "payload").expr),
                None if !exists => String::new(),
                None => {
                    return Err(IndexError::UnknownField {
                        field: spec.clone(),
                        known: schema
                            .iter()
                            .flat_map(|s| s.fields.iter().map(|f| f.name.as_str()))
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            }
        };
        wanted.push((index_name(dest, spec), expr));
    }
    db.execute(
        "UPDATE bronze.datasets SET api_indexes = $3 WHERE tenant = $1 AND dataset = $2",
        &[&dest.tenant.as_str(), &dest.dataset.as_str(), &specs],
    )
    .await?;
    if !exists {
        return Ok(false);
    }
    // Before the typed indexes came, these were named `$x` and four hex digits: such
    // an index is this module's, replaced under its new name. The typed relation's
    // `$x` indexes have eight.
    let present: Vec<String> = db
        .query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = $2
               AND (indexname = $3 || '$gin' OR left(indexname, length($3) + 2) = $3 || '$a'
                    OR (left(indexname, length($3) + 2) = $3 || '$x'
                        AND length(indexname) = length($3) + 6))",
            &[
                &dest.schema(),
                &dest.dataset.as_str(),
                &dest.dataset.as_str(),
            ],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for name in present
        .iter()
        .filter(|p| !wanted.iter().any(|(w, _)| w == *p))
    {
        db.batch_execute(&format!(
            "DROP INDEX IF EXISTS {}.{}",
            quote_ident(&dest.schema()),
            quote_ident(name)
        ))
        .await?;
    }
    for (name, expr) in wanted.iter().filter(|(w, _)| !present.contains(w)) {
        // A field's index covers every version: the planner reads the statistics of
        // an expression index only when it is not partial, and without them it
        // guesses (0.5% for any eq) and walks the key index instead. The GIN index
        // has no such statistics; it covers the current rows only.
        let only_current = if expr.starts_with("USING gin") {
            " WHERE is_current"
        } else {
            ""
        };
        db.batch_execute(&format!(
            "CREATE INDEX {} ON {table} {expr}{only_current}",
            quote_ident(name)
        ))
        .await?;
    }
    Ok(true)
}

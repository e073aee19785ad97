//! The per-dataset tables: their names, their creation and indexes, and the lock that
//! serialises loads of one dataset.

use std::fmt;

use tokio_postgres::Transaction;

use crate::keys::{quote_ident, Destination};

/// A dataset table's `"schema"."table"`, quoted: the only form in which a table name
/// reaches SQL text, made only from a checked [`Destination`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotedTable(String);

impl QuotedTable {
    /// The text, for a parameter such as `to_regclass($1)`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QuotedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The quoted `schema.table` of a dataset.
pub fn dataset_table(dest: &Destination) -> QuotedTable {
    QuotedTable(format!(
        "{}.{}",
        quote_ident(&dest.schema()),
        quote_ident(dest.dataset.as_str())
    ))
}

/// Serialises loads of one dataset for the rest of the transaction: concurrent loads
/// must not interleave their version chains.
pub async fn lock_dataset(
    tx: &Transaction<'_>,
    dest: &Destination,
) -> Result<(), tokio_postgres::Error> {
    let name = format!("{}.{}", dest.tenant, dest.dataset);
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&name],
    )
    .await?;
    Ok(())
}

/// Creates the tenant schema and dataset table on first use; returns whether it did.
/// A new table has no indexes yet: the load that creates it fills it first and then
/// builds them with [`create_dataset_indexes`], which is faster than maintaining them
/// row by row. Only the tenant's schema needs a lock of its own ([`ensure_schema`]):
/// a tenant's first load never waits for another tenant's.
pub async fn ensure_dataset_table(
    tx: &Transaction<'_>,
    dest: &Destination,
) -> Result<bool, tokio_postgres::Error> {
    let table = dataset_table(dest);
    let exists: bool = tx
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table.as_str()])
        .await?
        .get(0);
    if exists {
        return Ok(false);
    }
    ensure_schema(tx, dest).await?;
    // record_key sorts bytewise (COLLATE "C"): keys are compared for equality only, and
    // a locale's collation makes every sort and index step slower.
    tx.batch_execute(&format!(
        "CREATE TABLE {table} (
             record_key        text        COLLATE \"C\" NOT NULL,
             version           integer     NOT NULL,
             record_hash       bytea,
             change_type       text        NOT NULL CHECK (change_type IN ('insert', 'update', 'delete')),
             is_current        boolean     NOT NULL,
             valid_from        timestamptz NOT NULL,
             valid_to          timestamptz,
             payload           jsonb,
             source_bucket     text,
             source_key        text        NOT NULL,
             source_version_id text,
             source_etag       text,
             source_line       bigint,
             source_ts         timestamptz NOT NULL,
             load_id           bigint      NOT NULL,
             schema_version    integer     NOT NULL,
             validated         boolean,
             ingested_at       timestamptz NOT NULL DEFAULT now(),
             CHECK (change_type = 'delete' OR (record_hash IS NOT NULL AND payload IS NOT NULL))
         );"
    ))
    .await?;
    // The loads before it went into a table that is gone: none can vouch for this one
    // (see `records_digest`), whatever file node it gets.
    tx.execute(
        "UPDATE bronze.loads SET records_digest = NULL
         WHERE tenant = $1 AND dataset = $2 AND records_digest IS NOT NULL",
        &[&dest.tenant.as_str(), &dest.dataset.as_str()],
    )
    .await?;
    Ok(true)
}

/// How long a first load waits for another first load of its tenant to create the
/// tenant's schema before it gives up (and is retried).
const SCHEMA_LOCK_TIMEOUT: &str = "30s";

/// Creates the tenant's schema if it is missing, and its reader role if the owner
/// asked for that on first loads (`bronze tenants auto-readers`). Concurrent `CREATE SCHEMA IF NOT
/// EXISTS` can still collide, so its creation is serialised, per tenant: the lock is
/// held by the load that creates the schema until it commits, and only another first
/// load of the same tenant ever waits for it, for a bounded time. The dataset's own
/// table needs no lock beyond the dataset's ([`lock_dataset`]).
async fn ensure_schema(
    tx: &Transaction<'_>,
    dest: &Destination,
) -> Result<(), tokio_postgres::Error> {
    let schema = dest.schema();
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .await?
        .get(0);
    if exists {
        return Ok(());
    }
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{SCHEMA_LOCK_TIMEOUT}'"))
        .await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('bronze.schema.' || $1, 0))",
        &[&schema],
    )
    .await?;
    tx.batch_execute("SET LOCAL lock_timeout = 0").await?;
    // As the owner: a loader may not create schemas or roles (migration 0012).
    tx.execute(
        "SELECT bronze.open_tenant($1, NULL)",
        &[&dest.tenant.as_str()],
    )
    .await?;
    Ok(())
}

/// The primary key (record_key, version) and the index of current rows.
pub async fn create_dataset_indexes(
    tx: &Transaction<'_>,
    dest: &Destination,
) -> Result<(), tokio_postgres::Error> {
    let table = dataset_table(dest);
    // `$` is in no dataset name, so no other dataset's table or index has these names.
    let current_idx = quote_ident(&format!("{}$cur", dest.dataset));
    let primary = quote_ident(&format!("{}$pk", dest.dataset));
    tx.batch_execute(&format!(
        "SET LOCAL maintenance_work_mem = '256MB';
         ALTER TABLE {table} ADD CONSTRAINT {primary} PRIMARY KEY (record_key, version);
         CREATE INDEX {current_idx} ON {table} (record_key) WHERE is_current;"
    ))
    .await
}

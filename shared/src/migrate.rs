//! Schema migrations, embedded in every binary and applied by `bronze migrate` (a
//! deploy step, run by the owner role) or, where a set-up opts in, at start-up.
//!
//! Two functions cold-starting at once both try to migrate: a session advisory lock
//! lets one apply and the other find the work done.

use tokio_postgres::Client;

/// `(version, name, sql)`, in order. Files live in `infra/migrations/`.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "ledger_and_loads",
        include_str!("../../infra/migrations/0001_ledger_and_loads.sql"),
    ),
    (
        2,
        "datasets_and_versions",
        include_str!("../../infra/migrations/0002_datasets_and_versions.sql"),
    ),
    (
        3,
        "formats",
        include_str!("../../infra/migrations/0003_formats.sql"),
    ),
    (
        4,
        "inference",
        include_str!("../../infra/migrations/0004_inference.sql"),
    ),
    (
        5,
        "schemas_contracts_quality",
        include_str!("../../infra/migrations/0005_schemas_contracts_quality.sql"),
    ),
    (
        6,
        "records_digest",
        include_str!("../../infra/migrations/0006_records_digest.sql"),
    ),
    (
        7,
        "bounds_and_policies",
        include_str!("../../infra/migrations/0007_bounds_and_policies.sql"),
    ),
    (
        8,
        "reconcile",
        include_str!("../../infra/migrations/0008_reconcile.sql"),
    ),
    (
        9,
        "tenant_readers",
        include_str!("../../infra/migrations/0009_tenant_readers.sql"),
    ),
    (
        10,
        "structured_storage",
        include_str!("../../infra/migrations/0010_structured_storage.sql"),
    ),
    (
        11,
        "api_indexes",
        include_str!("../../infra/migrations/0011_api_indexes.sql"),
    ),
    (
        12,
        "loader_role",
        include_str!("../../infra/migrations/0012_loader_role.sql"),
    ),
    (
        13,
        "fast_temporal_casts",
        include_str!("../../infra/migrations/0013_fast_temporal_casts.sql"),
    ),
];

/// The migration this build needs the database to be at.
pub const LATEST: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The latest migration applied to the database (0 for none).
pub async fn applied_version(client: &Client) -> Result<i32, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM bronze.migrations",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// Arbitrary, fixed: the advisory lock key that serialises migrations.
const LOCK_KEY: i64 = 0x6272_6f6e_7a65;

/// Applies the migrations not yet applied; returns the versions it applied.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, tokio_postgres::Error> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let applied = apply(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    let applied = applied?;
    unlocked?;
    Ok(applied)
}

async fn apply(client: &mut Client) -> Result<Vec<i32>, tokio_postgres::Error> {
    client
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS bronze;
             CREATE TABLE IF NOT EXISTS bronze.migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let done: Vec<i32> = client
        .query("SELECT version FROM bronze.migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut applied = Vec::new();
    for &(version, name, sql) in MIGRATIONS {
        if done.contains(&version) {
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO bronze.migrations (version, name) VALUES ($1, $2)",
            &[&version, &name],
        )
        .await?;
        tx.commit().await?;
        applied.push(version);
    }
    Ok(applied)
}

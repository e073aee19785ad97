//! Datasets' settings (`bronze.datasets`): key, snapshot, format, encoding,
//! contract, JSON Schema, error policy, storage and indexed columns.

use tokio_postgres::GenericClient;

use super::{dataset_table, lock_dataset};
use crate::contract::Contract;
use crate::format::{Encoding, Format};
use crate::keys::Destination;
use crate::policy::OnError;
use crate::typed::Storage;

/// A dataset's settings from `bronze.datasets`; the defaults when it has none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetSettings {
    /// Business key columns; empty means the record hash is the key.
    pub key_columns: Vec<String>,
    /// Each file is the complete dataset: keys absent from it get a `delete` version.
    pub snapshot: bool,
    /// The format of the dataset's files, whatever their names say.
    pub format: Option<Format>,
    /// What a file whose schema changed may do.
    pub contract: Contract,
    /// A JSON Schema every record must pass.
    pub json_schema: Option<serde_json::Value>,
    /// What a file with rejected records does: load the rest, or be skipped whole.
    pub on_error: OnError,
    /// The encoding of the dataset's files, whatever detection says.
    pub encoding: Option<Encoding>,
    /// Whether `<dataset>_typed` is a view over the payloads or a table kept by loads.
    pub storage: Storage,
    /// Typed columns indexed, one index each, beyond the key (which always is).
    pub index_columns: Vec<String>,
}

/// The dataset's settings, or the defaults when it has none.
pub async fn dataset_settings(
    db: &impl GenericClient,
    dest: &Destination,
) -> Result<DatasetSettings, tokio_postgres::Error> {
    let row = db
        .query_opt(
            "SELECT key_columns, snapshot, format, contract, json_schema::text, on_error,
                    encoding, storage, index_columns
             FROM bronze.datasets WHERE tenant = $1 AND dataset = $2",
            &[&dest.tenant.as_str(), &dest.dataset.as_str()],
        )
        .await?;
    Ok(
        row.map_or_else(DatasetSettings::default, |row| DatasetSettings {
            key_columns: row.get(0),
            snapshot: row.get(1),
            format: row.get::<_, Option<&str>>(2).and_then(Format::parse),
            contract: Contract::parse(row.get(3)).unwrap_or_default(),
            // The column is jsonb: what PostgreSQL stored, serde_json reads.
            json_schema: row
                .get::<_, Option<&str>>(4)
                .and_then(|text| serde_json::from_str(text).ok()),
            on_error: OnError::parse(row.get(5)).unwrap_or_default(),
            encoding: row.get::<_, Option<&str>>(6).and_then(Encoding::parse),
            // The column's CHECK allows only the names `Storage::parse` reads.
            storage: Storage::parse(row.get(7)).unwrap_or_default(),
            index_columns: row.get(8),
        }),
    )
}

/// Why settings cannot be changed.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "{table} already holds {rows} rows keyed by {old:?}; a different key needs a new dataset"
    )]
    /// The key of a dataset that holds rows cannot change: its keys would stop matching.
    KeyInUse {
        /// The dataset's table.
        table: super::QuotedTable,
        /// The rows it holds.
        rows: i64,
        /// The key they are keyed by.
        old: Vec<String>,
    },
    #[error("database: {0}")]
    /// Reading or writing the settings failed.
    Postgres(#[from] tokio_postgres::Error),
}

/// Stores a dataset's settings. The key of a dataset that holds rows cannot change:
/// its record keys would silently stop matching. The typed relation follows a change
/// of storage or indexes with [`crate::typed::apply`], once this has committed.
pub async fn set_dataset(
    client: &mut tokio_postgres::Client,
    dest: &Destination,
    settings: &DatasetSettings,
) -> Result<(), SettingsError> {
    let tx = client.transaction().await?;
    lock_dataset(&tx, dest).await?;
    let old = dataset_settings(&tx, dest).await?;
    let table = dataset_table(dest);
    if old.key_columns != settings.key_columns {
        let exists: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table.as_str()])
            .await?
            .get(0);
        let rows: i64 = if exists {
            tx.query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await?
                .get(0)
        } else {
            0
        };
        if rows > 0 {
            return Err(SettingsError::KeyInUse {
                table,
                rows,
                old: old.key_columns,
            });
        }
    }
    tx.execute(
        "INSERT INTO bronze.datasets (tenant, dataset, key_columns, snapshot, format, contract,
             json_schema, on_error, encoding, storage, index_columns)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, $10, $11)
         ON CONFLICT (tenant, dataset) DO UPDATE
         SET key_columns = excluded.key_columns, snapshot = excluded.snapshot,
             format = excluded.format, contract = excluded.contract,
             json_schema = excluded.json_schema, on_error = excluded.on_error,
             encoding = excluded.encoding, storage = excluded.storage,
             index_columns = excluded.index_columns, updated_at = now()",
        &[
            &dest.tenant.as_str(),
            &dest.dataset.as_str(),
            &settings.key_columns,
            &settings.snapshot,
            &settings.format.map(Format::name),
            &settings.contract.name(),
            &settings.json_schema.as_ref().map(ToString::to_string),
            &settings.on_error.to_string(),
            &settings.encoding.map(Encoding::name),
            &settings.storage.name(),
            &settings.index_columns,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

//! The schema registry in `bronze.schemas`: which version each dataset is at, what
//! changed between versions, and the load that introduced each.

use tokio_postgres::GenericClient;

use crate::contract::Contract;
use crate::keys::Destination;
use crate::schema::{diff, evolve, Change, Schema};

/// One stored version of a dataset's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// 1, 2, … per dataset.
    pub number: i32,
    /// The columns it promises.
    pub schema: Schema,
    /// SHA-256 of the promise (see [`Schema::fingerprint`]).
    pub fingerprint: String,
    /// What changed from the version before.
    pub changes: Vec<Change>,
    /// Whether any change breaks a consumer.
    pub breaking: bool,
    /// The load that introduced it.
    pub load_id: i64,
    /// When it was introduced.
    pub created_at: std::time::SystemTime,
}

/// What a file does to the dataset's schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The file fits the current version (or says nothing: no records).
    Same {
        /// The current version's number; `None` when the dataset has none yet.
        number: Option<i32>,
        /// Its columns.
        schema: Schema,
    },
    /// A new version, with its changes from the current one.
    New {
        /// The new version's number.
        number: i32,
        /// Its columns.
        schema: Schema,
        /// What changed from the current version.
        changes: Vec<Change>,
    },
    /// The contract refuses the file: the reason names the breaking changes.
    Refused(String),
}

impl Decision {
    /// The version the load's rows belong to, and its schema.
    pub fn version(&self) -> Option<(i32, &Schema)> {
        match self {
            Decision::Same {
                number: Some(n),
                schema,
            }
            | Decision::New {
                number: n, schema, ..
            } => Some((*n, schema)),
            _ => None,
        }
    }
}

/// Decides what a file with schema `observed` (read from `records` records) does under
/// `contract`, given the dataset's `current` version.
pub fn decide(
    current: Option<&Version>,
    observed: &Schema,
    records: u64,
    json: bool,
    contract: Contract,
) -> Decision {
    let Some(current) = current else {
        if records == 0 {
            return Decision::Same {
                number: None,
                schema: Schema::default(),
            };
        }
        return Decision::New {
            number: 1,
            schema: observed.clone(),
            changes: Vec::new(),
        };
    };
    let next = match contract {
        // Records that do not fit were rejected one by one; the version stands.
        Contract::DiscardRow => current.schema.clone(),
        Contract::Evolve | Contract::Freeze => evolve(&current.schema, observed, records, json),
    };
    if next.fingerprint() == current.fingerprint {
        // Same promise; keep the stored fields (their evidence included) as they are.
        return Decision::Same {
            number: Some(current.number),
            schema: current.schema.clone(),
        };
    }
    let changes = diff(&current.schema, &next);
    if contract == Contract::Freeze && changes.iter().any(|c| c.breaking) {
        let breaking: Vec<String> = changes
            .iter()
            .filter(|c| c.breaking)
            .map(ToString::to_string)
            .collect();
        return Decision::Refused(format!(
            "breaking schema change under the freeze contract (version {}): {}",
            current.number,
            breaking.join("; ")
        ));
    }
    Decision::New {
        number: current.number + 1,
        schema: next,
        changes,
    }
}

const COLUMNS: &str =
    "version, fields::text, fingerprint, changes::text, breaking, load_id, created_at";

fn from_row(row: &tokio_postgres::Row) -> Result<Version, serde_json::Error> {
    Ok(Version {
        number: row.get(0),
        schema: Schema {
            fields: serde_json::from_str(row.get(1))?,
        },
        fingerprint: row.get(2),
        changes: serde_json::from_str(row.get(3))?,
        breaking: row.get(4),
        load_id: row.get(5),
        created_at: row.get(6),
    })
}

/// Why the registry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("database: {0}")]
    /// Reading or writing `bronze.schemas` failed.
    Postgres(#[from] tokio_postgres::Error),
    #[error("a stored schema version cannot be read: {0}")]
    /// A stored version's JSON does not read as a schema.
    Corrupt(#[from] serde_json::Error),
}

/// The dataset's current version, if it has one.
pub async fn current(
    db: &impl GenericClient,
    dest: &Destination,
) -> Result<Option<Version>, RegistryError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM bronze.schemas WHERE tenant = $1 AND dataset = $2
         ORDER BY version DESC LIMIT 1"
    );
    let row = db
        .query_opt(&sql, &[&dest.tenant.as_str(), &dest.dataset.as_str()])
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Every version of the dataset, oldest first.
pub async fn history(
    db: &impl GenericClient,
    dest: &Destination,
) -> Result<Vec<Version>, RegistryError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM bronze.schemas WHERE tenant = $1 AND dataset = $2
         ORDER BY version"
    );
    let rows = db
        .query(&sql, &[&dest.tenant.as_str(), &dest.dataset.as_str()])
        .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Stores a new version introduced by `load_id`.
pub async fn record(
    db: &impl GenericClient,
    dest: &Destination,
    number: i32,
    schema: &Schema,
    changes: &[Change],
    load_id: i64,
) -> Result<(), RegistryError> {
    let fields = serde_json::to_string(&schema.fields)?;
    let changes_text = serde_json::to_string(changes)?;
    let breaking = changes.iter().any(|c| c.breaking);
    db.execute(
        "INSERT INTO bronze.schemas (tenant, dataset, version, fingerprint, fields, changes,
             breaking, load_id)
         VALUES ($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb, $7, $8)",
        &[
            &dest.tenant.as_str(),
            &dest.dataset.as_str(),
            &number,
            &schema.fingerprint(),
            &fields,
            &changes_text,
            &breaking,
            &load_id,
        ],
    )
    .await?;
    Ok(())
}

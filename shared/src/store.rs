//! The SQL of bronze: ledger rows, loads, rejects and the per-dataset tables.
//!
//! Every identifier that comes from outside (tenant, dataset) has passed the name rule
//! in [`crate::keys`] and is still quoted with [`quote_ident`] here.

use std::time::SystemTime;

use tokio_postgres::{GenericClient, Transaction};

use crate::contract::Contract;
use crate::format::{Detected, Encoding, Format};
use crate::infer::{ColumnQuality, Quality};
use crate::keys::{quote_ident, Destination};
use crate::policy::OnError;
use crate::rejects::Sample;

/// Ledger status of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Loading,
    Loaded,
    Rejected,
    Skipped,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Loading => "loading",
            Status::Loaded => "loaded",
            Status::Rejected => "rejected",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "pending" => Status::Pending,
            "loading" => Status::Loading,
            "loaded" => Status::Loaded,
            "rejected" => Status::Rejected,
            "skipped" => Status::Skipped,
            _ => Status::Failed,
        }
    }

    /// A verdict was reached: nothing more will happen to the object by itself
    /// (`failed` waits for a human, and `bronze reload`).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Loaded | Status::Rejected | Status::Skipped | Status::Failed
        )
    }
}

/// An object as dispatch records it.
#[derive(Debug, Clone)]
pub struct NewObject<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub version_id: Option<&'a str>,
    pub etag: Option<&'a str>,
    pub size: Option<i64>,
    pub sequencer: Option<&'a str>,
    pub last_modified: Option<std::time::SystemTime>,
    pub tenant: Option<&'a str>,
    pub dataset: Option<&'a str>,
    /// `Some(reason)` records the object as skipped.
    pub skip: Option<&'a str>,
}

/// The ledger row for an object, newly made or found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub id: i64,
    pub status: Status,
    pub new: bool,
}

/// Records an object once per (bucket, key, version); a repeat finds the first row.
pub async fn record_object(
    db: &impl GenericClient,
    obj: &NewObject<'_>,
) -> Result<Recorded, tokio_postgres::Error> {
    let version_key = match (obj.version_id, obj.etag) {
        (Some(v), _) => v.to_owned(),
        (None, e) => format!("etag:{}", e.unwrap_or_default()),
    };
    let status = if obj.skip.is_some() {
        Status::Skipped
    } else {
        Status::Pending
    };
    let inserted = db
        .query_opt(
            "INSERT INTO bronze.objects (bucket, key, version_key, version_id, etag, size,
                 sequencer, last_modified, tenant, dataset, status, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (bucket, key, version_key) DO NOTHING
             RETURNING id",
            &[
                &obj.bucket,
                &obj.key,
                &version_key,
                &obj.version_id,
                &obj.etag,
                &obj.size,
                &obj.sequencer,
                &obj.last_modified,
                &obj.tenant,
                &obj.dataset,
                &status.as_str(),
                &obj.skip,
            ],
        )
        .await?;
    if let Some(row) = inserted {
        return Ok(Recorded {
            id: row.get(0),
            status,
            new: true,
        });
    }
    let row = db
        .query_one(
            "SELECT id, status FROM bronze.objects
             WHERE bucket = $1 AND key = $2 AND version_key = $3",
            &[&obj.bucket, &obj.key, &version_key],
        )
        .await?;
    Ok(Recorded {
        id: row.get(0),
        status: Status::parse(row.get(1)),
        new: false,
    })
}

/// A ledger row as load needs it.
#[derive(Debug, Clone)]
pub struct ObjectRow {
    pub status: Status,
    pub tenant: Option<String>,
    pub dataset: Option<String>,
    pub last_modified: Option<SystemTime>,
}

/// Attempts that may die (the process killed: out of memory, timed out) before the
/// object is marked `failed`: each death is redelivered by SQS, and a file that kills
/// the function will kill it again.
pub const MAX_DEATHS: i32 = 3;

/// What a delivery found when it came to load an object.
#[derive(Debug, Clone)]
pub enum Attempt {
    /// This attempt is counted and the row marked `loading`.
    Started(ObjectRow),
    /// Another worker holds the row: a load in progress.
    Busy,
    /// A verdict was reached before: a late duplicate task changes nothing.
    Done(Status),
    /// Attempts at it kept dying: now `failed`, with this reason.
    GaveUp(String),
    Missing,
}

/// Counts an attempt at loading `id` and marks it `loading`. The row is locked first:
/// a row left `loading` that no worker holds was left by an attempt that died, which
/// is noted as the reason; after [`MAX_DEATHS`] of them the object is `failed`.
pub async fn begin_attempt(
    client: &mut tokio_postgres::Client,
    id: i64,
) -> Result<Attempt, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL lock_timeout = '5s'").await?;
    let locked = tx
        .query_opt(
            "SELECT status, attempts, deaths, tenant, dataset, last_modified
             FROM bronze.objects WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await;
    let row = match locked {
        Ok(Some(row)) => row,
        Ok(None) => return Ok(Attempt::Missing),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            return Ok(Attempt::Busy)
        }
        Err(e) => return Err(e),
    };
    let status = Status::parse(row.get(0));
    if status.is_final() {
        return Ok(Attempt::Done(status));
    }
    let (attempts, deaths): (i32, i32) = (row.get(1), row.get(2));
    let died = status == Status::Loading;
    let deaths = deaths + i32::from(died);
    if died && deaths >= MAX_DEATHS {
        let reason = format!(
            "{deaths} attempts died before they finished (killed: out of memory or past the \
             function's timeout?); the file may be too large for the function: raise its \
             memory or timeout, then reload it"
        );
        tx.execute(
            "UPDATE bronze.objects SET status = 'failed', deaths = $2, error = $3,
                 updated_at = now() WHERE id = $1",
            &[&id, &deaths, &reason],
        )
        .await?;
        tx.commit().await?;
        return Ok(Attempt::GaveUp(reason));
    }
    let note = died.then(|| {
        format!("attempt {attempts} died before it finished (killed, out of memory or timed out); retrying")
    });
    tx.execute(
        "UPDATE bronze.objects
         SET attempts = attempts + 1, deaths = $2, status = 'loading',
             error = coalesce($3, error), updated_at = now()
         WHERE id = $1",
        &[&id, &deaths, &note],
    )
    .await?;
    tx.commit().await?;
    Ok(Attempt::Started(ObjectRow {
        status: Status::Loading,
        tenant: row.get(3),
        dataset: row.get(4),
        last_modified: row.get(5),
    }))
}

/// Notes a transient failure: the object waits for its retry, unless another delivery
/// reached a verdict meanwhile.
pub async fn mark_retry(
    db: &impl GenericClient,
    id: i64,
    reason: &str,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE bronze.objects SET status = 'pending', error = $2, updated_at = now()
         WHERE id = $1 AND status NOT IN ('loaded', 'rejected', 'skipped', 'failed')",
        &[&id, &reason],
    )
    .await?;
    Ok(())
}

/// Notes an attempt that ran out of time (its budget, or what was left of the
/// invocation): counted with the attempts that died, since a file that cannot finish
/// in the time the function has will not at the next try either. After [`MAX_DEATHS`]
/// the object is `failed` with `advice`; before, it waits for its retry with `reason`.
/// Returns whether it is now `failed`.
pub async fn mark_out_of_time(
    db: &impl GenericClient,
    id: i64,
    reason: &str,
    advice: &str,
) -> Result<bool, tokio_postgres::Error> {
    let row = db
        .query_opt(
            "UPDATE bronze.objects
             SET deaths = deaths + 1,
                 status = CASE WHEN deaths + 1 >= $4 THEN 'failed' ELSE 'pending' END,
                 error = CASE WHEN deaths + 1 >= $4 THEN $3 ELSE $2 END,
                 updated_at = now()
             WHERE id = $1 AND status NOT IN ('loaded', 'rejected', 'skipped', 'failed')
             RETURNING status",
            &[&id, &reason, &advice, &MAX_DEATHS],
        )
        .await?;
    Ok(row.is_some_and(|row| row.get::<_, &str>(0) == "failed"))
}

/// Whether this transaction now owns the object's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Owned,
    /// Another worker holds it right now; try again later.
    Busy,
    /// A verdict was reached meanwhile.
    Done(Status),
}

/// Locks the ledger row for the rest of the transaction, so two deliveries of one task
/// never load the same object twice. Short row locks (another delivery counting its
/// attempt) are waited out; a lock still held after a few seconds is a load in
/// progress, and this delivery is told to come back later.
pub async fn claim(tx: &Transaction<'_>, id: i64) -> Result<Claim, tokio_postgres::Error> {
    tx.batch_execute("SET LOCAL lock_timeout = '5s'").await?;
    let row = tx
        .query_opt(
            "SELECT status FROM bronze.objects WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await;
    let status = match row {
        Ok(row) => row.map(|r| Status::parse(r.get(0))),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            return Ok(Claim::Busy)
        }
        Err(e) => return Err(e),
    };
    tx.batch_execute("SET LOCAL lock_timeout = 0").await?;
    Ok(match status {
        None => Claim::Busy,
        Some(status) if status.is_final() => Claim::Done(status),
        Some(_) => Claim::Owned,
    })
}

/// Sets an object's verdict (or `failed` with the transient reason).
pub async fn set_status(
    db: &impl GenericClient,
    id: i64,
    status: Status,
    load_id: Option<i64>,
    error: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE bronze.objects
         SET status = $2, load_id = coalesce($3, load_id), error = $4, updated_at = now()
         WHERE id = $1",
        &[&id, &status.as_str(), &load_id, &error],
    )
    .await?;
    Ok(())
}

/// Where a load's rows came from.
#[derive(Debug, Clone)]
pub struct Lineage {
    pub bucket: Option<String>,
    pub key: String,
    pub version_id: Option<String>,
    pub etag: Option<String>,
    /// The source order: the object's last-modified time (a local file's mtime).
    /// Versions of a record are ordered by it, whatever order the files arrive in.
    pub source_ts: SystemTime,
}

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
}

pub async fn dataset_settings(
    db: &impl GenericClient,
    dest: &Destination,
) -> Result<DatasetSettings, tokio_postgres::Error> {
    let row = db
        .query_opt(
            "SELECT key_columns, snapshot, format, contract, json_schema::text, on_error,
                    encoding
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
        }),
    )
}

/// Why settings cannot be changed.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "{table} already holds {rows} rows keyed by {old:?}; a different key needs a new dataset"
    )]
    KeyInUse {
        table: String,
        rows: i64,
        old: Vec<String>,
    },
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

/// Stores a dataset's settings. The key of a dataset that holds rows cannot change:
/// its record keys would silently stop matching.
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
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
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
             json_schema, on_error, encoding)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9)
         ON CONFLICT (tenant, dataset) DO UPDATE
         SET key_columns = excluded.key_columns, snapshot = excluded.snapshot,
             format = excluded.format, contract = excluded.contract,
             json_schema = excluded.json_schema, on_error = excluded.on_error,
             encoding = excluded.encoding, updated_at = now()",
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
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Opens the `bronze.loads` row of a load; it is filled in by [`finish_load`].
pub async fn start_load(
    db: &impl GenericClient,
    object_id: Option<i64>,
    dest: &Destination,
    lineage: &Lineage,
    status: &str,
) -> Result<i64, tokio_postgres::Error> {
    let row = db
        .query_one(
            "INSERT INTO bronze.loads (object_id, tenant, dataset, source_bucket, source_key,
                 source_version_id, source_etag, source_ts, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &object_id,
                &dest.tenant.as_str(),
                &dest.dataset.as_str(),
                &lineage.bucket,
                &lineage.key,
                &lineage.version_id,
                &lineage.etag,
                &lineage.source_ts,
                &status,
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// The figures of a finished load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadCounts {
    pub records_in: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub deleted: i64,
    pub rejected: i64,
    pub bytes: i64,
}

pub async fn finish_load(
    db: &impl GenericClient,
    load_id: i64,
    detected: Option<&Detected>,
    counts: &LoadCounts,
    duration_ms: i64,
    error: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    let format = detected.map(|d| d.format.name());
    let compression = detected.and_then(|d| d.gzip.then_some("gzip"));
    let encoding = detected.map(|d| d.encoding.name());
    let certainty = detected.map(|d| d.certainty.name());
    let dialect = detected.and_then(|d| d.dialect);
    let delimiter = dialect.map(|d| char::from(d.delimiter).to_string());
    let header = dialect.map(|d| d.header);
    db.execute(
        "UPDATE bronze.loads
         SET format = $2, compression = $3, records_in = $4, inserted = $5, updated = $6,
             unchanged = $7, rejected = $8, bytes = $9, duration_ms = $10, error = $11,
             deleted = $12, encoding = $13, delimiter = $14, header = $15,
             encoding_certainty = $16, finished_at = clock_timestamp()
         WHERE id = $1",
        &[
            &load_id,
            &format,
            &compression,
            &counts.records_in,
            &counts.inserted,
            &counts.updated,
            &counts.unchanged,
            &counts.rejected,
            &counts.bytes,
            &duration_ms,
            &error,
            &counts.deleted,
            &encoding,
            &delimiter,
            &header,
            &certainty,
        ],
    )
    .await?;
    Ok(())
}

/// Stores what inference found in the load's file.
pub async fn record_inference(
    db: &impl GenericClient,
    load_id: i64,
    inference: &serde_json::Value,
) -> Result<(), tokio_postgres::Error> {
    let text = inference.to_string();
    db.execute(
        "UPDATE bronze.loads SET inference = $2::text::jsonb WHERE id = $1",
        &[&load_id, &text],
    )
    .await?;
    Ok(())
}

/// Stores a load's quality figures, one statement for all its columns, and the
/// schema version its rows belong to.
pub async fn record_quality(
    db: &impl GenericClient,
    load_id: i64,
    quality: &Quality,
    schema_version: Option<i32>,
    key_duplicates: i64,
) -> Result<(), tokio_postgres::Error> {
    let c = &quality.columns;
    let figures = |f: fn(&ColumnQuality) -> Option<u64>| -> Vec<Option<i64>> {
        c.iter()
            .map(|q| f(q).map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
            .collect()
    };
    let shares =
        |f: fn(&ColumnQuality) -> Option<f64>| -> Vec<Option<f64>> { c.iter().map(f).collect() };
    db.execute(
        "INSERT INTO bronze.quality (load_id, position, column_name, type, semantic, is_key,
             records, non_null, valid, distinct_estimate, duplicates, consistent,
             completeness, validity, uniqueness, consistency, score)
         SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::bool[],
             $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[],
             $12::bigint[], $13::float8[], $14::float8[], $15::float8[], $16::float8[],
             $17::float8[])",
        &[
            &load_id,
            &c.iter().map(|q| q.position).collect::<Vec<_>>(),
            &c.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(),
            &c.iter().map(|q| q.kind.name()).collect::<Vec<_>>(),
            &c.iter().map(|q| q.semantic.as_deref()).collect::<Vec<_>>(),
            &c.iter().map(|q| q.is_key).collect::<Vec<_>>(),
            &figures(|q| Some(q.records)),
            &figures(|q| Some(q.non_null)),
            &figures(|q| q.valid),
            &figures(|q| Some(q.distinct)),
            &figures(|q| q.duplicates),
            &figures(|q| q.consistent),
            &shares(|q| Some(q.completeness)),
            &shares(|q| q.validity),
            &shares(|q| q.uniqueness),
            &shares(|q| q.consistency),
            &shares(|q| Some(q.score)),
        ],
    )
    .await?;
    db.execute(
        "UPDATE bronze.loads SET schema_version = $2, quality_score = $3, key_duplicates = $4
         WHERE id = $1",
        &[&load_id, &schema_version, &quality.score, &key_duplicates],
    )
    .await?;
    Ok(())
}

/// Writes a load's rejected records: the only writer of `bronze.rejects`.
pub async fn record_rejects(
    db: &impl GenericClient,
    load_id: i64,
    rejects: &Sample,
) -> Result<(), tokio_postgres::Error> {
    if rejects.lines.is_empty() {
        return Ok(());
    }
    db.execute(
        "INSERT INTO bronze.rejects (load_id, line, reason, raw, raw_bytes)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[])",
        &[
            &load_id,
            &rejects.lines,
            &rejects.reasons,
            &rejects.raws,
            &rejects.raw_bytes,
        ],
    )
    .await?;
    Ok(())
}

/// Records what a load's records were (see [`crate::hash::RecordsDigest`]) and the
/// table they went into, as it is now: for a load that arrived in order, after which
/// its records are the current versions of their keys.
pub async fn record_digest(
    db: &impl GenericClient,
    load_id: i64,
    digest: &[u8; 32],
    table: &str,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE bronze.loads
         SET records_digest = $2, table_filenode = pg_relation_filenode(to_regclass($3))
         WHERE id = $1",
        &[&load_id, &&digest[..], &table],
    )
    .await?;
    Ok(())
}

/// The quoted `schema.table` of a dataset.
pub fn dataset_table(dest: &Destination) -> String {
    format!(
        "{}.{}",
        quote_ident(&dest.schema()),
        quote_ident(dest.dataset.as_str())
    )
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
/// row by row. Creation takes a global advisory lock, since concurrent
/// `CREATE … IF NOT EXISTS` can still collide.
pub async fn ensure_dataset_table(
    tx: &Transaction<'_>,
    dest: &Destination,
) -> Result<bool, tokio_postgres::Error> {
    let table = dataset_table(dest);
    let exists: bool = tx
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await?
        .get(0);
    if exists {
        return Ok(false);
    }
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('bronze.ddl', 0))",
        &[],
    )
    .await?;
    let schema = quote_ident(&dest.schema());
    // record_key sorts bytewise (COLLATE "C"): keys are compared for equality only, and
    // a locale's collation makes every sort and index step slower.
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE {table} (
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

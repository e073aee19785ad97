//! A load's own rows: `bronze.loads`, and what each load records beside it (its
//! rejects, quality, inference and records digest).

use std::time::SystemTime;

use tokio_postgres::GenericClient;

use super::QuotedTable;
use crate::format::Detected;
use crate::infer::{ColumnQuality, Quality, Report};
use crate::keys::Destination;
use crate::rejects::Sample;

/// Where a load's rows came from.
#[derive(Debug, Clone)]
pub struct Lineage {
    /// The bucket, for objects from S3.
    pub bucket: Option<String>,
    /// The key, or a local file's path.
    pub key: String,
    /// The S3 version id read.
    pub version_id: Option<String>,
    /// The ETag read.
    pub etag: Option<String>,
    /// The source order: the object's last-modified time (a local file's mtime).
    /// Versions of a record are ordered by it, whatever order the files arrive in.
    pub source_ts: SystemTime,
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
    /// Records read, good and rejected.
    pub records_in: i64,
    /// Records that were new keys.
    pub inserted: i64,
    /// Records that were new versions of known keys.
    pub updated: i64,
    /// Records equal to their key's version before.
    pub unchanged: i64,
    /// Keys a snapshot lacked, given a `delete` version.
    pub deleted: i64,
    /// Records refused.
    pub rejected: i64,
    /// Bytes read from the source, as stored (compressed).
    pub bytes: i64,
}

/// Fills in a load's `bronze.loads` row with what it did; `error` says why a rejected file was.
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
    inference: &Report,
) -> Result<(), tokio_postgres::Error> {
    // Plain data with string keys: serializing it cannot fail.
    let text = serde_json::to_string(inference).expect("an inference report serializes");
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
    table: &QuotedTable,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE bronze.loads
         SET records_digest = $2, table_filenode = pg_relation_filenode(to_regclass($3))
         WHERE id = $1",
        &[&load_id, &&digest[..], &table.as_str()],
    )
    .await?;
    Ok(())
}

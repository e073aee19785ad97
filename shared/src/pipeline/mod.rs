//! One file into one dataset, inside the caller's transaction: read → canonicalise →
//! hash → binary COPY → a set-based merge into versions.
//!
//! Parsing runs on blocking threads and hands encoded COPY chunks to the database side
//! through a small bounded channel, so memory stays flat in the file size and the
//! parser and the socket work at the same time.
//!
//! The map (`docs/architecture.md` has the same): [`load_with`] prepares the load (the
//! dataset's lock, its table, settings and current schema version, a `bronze.loads`
//! row), [`plan::run`] chooses the path the file's rows take ([`plan::Plan`], the one
//! place it is chosen) and runs it, and [`load_with`] then records what happened
//! (quality, the typed view, counts, the records' digest). The paths:
//! - first fill ([`fill`]): a new table, the file COPYed frozen into it;
//! - staged first load: a new table through staging, one INSERT (or versioned);
//! - seen before: nothing written, an earlier load vouches for the file;
//! - changed keys: keys staged, one join with the current rows, payloads read again;
//! - versioned: keys staged, versions planned against their neighbours (late files).
//!
//! Every path reads the file with [`stage`] (via [`job::Job::read`]) and merges with
//! the statements of [`merge`]; the second read is [`payloads`].

mod copy_in;
mod error;
mod fill;
mod job;
mod merge;
mod payloads;
mod plan;
mod stage;

use std::io::Read;
use std::time::Instant;

use futures_util::future::BoxFuture;
use tokio_postgres::Transaction;

pub use error::LoadError;

use crate::format::Detected;
use crate::keys::Destination;
use crate::limits::Limits;
use crate::registry::{self, Decision};
use crate::rejects::Sample;
use crate::store::{self, Lineage, LoadCounts};
use crate::typed;
use job::{Decided, Job};

/// What a successful load did.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The `bronze.loads` row.
    pub load_id: i64,
    /// What the file was found to be.
    pub detected: Detected,
    /// What the load did to the table's records.
    pub counts: LoadCounts,
    /// How long the load took, reading included.
    pub duration_ms: i64,
    /// The schema version the load's rows belong to, and whether the load made it.
    pub schema_version: Option<i32>,
    /// Whether this load made that version.
    pub new_version: bool,
    /// The load's quality score, when it had records and checks.
    pub quality_score: Option<f64>,
    /// When the file was last modified: its lag to the load's commit is measured from it.
    pub source_ts: std::time::SystemTime,
}

/// How much a load does beyond loading, within which bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Inference, the schema registry, contracts, JSON Schema validation and quality.
    /// Off only to measure what they cost (`bronze ingest --no-checks`).
    pub checks: bool,
    /// The bounds the file is read within.
    pub limits: Limits,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            checks: true,
            limits: Limits::default(),
        }
    }
}

/// Opens the file a load reads, from its start, once more: a load into a table that
/// has rows reads it a second time for the payloads of the records that changed.
/// An implementation must give the same bytes or fail (S3: the same version or ETag).
pub trait Reopen: Send + Sync {
    /// The file from its start, again: the same bytes or an error.
    fn reopen(&self) -> BoxFuture<'_, Result<Box<dyn Read + Send>, LoadError>>;
}

/// Loads `source` (named `lineage.key`, opened again by `again` when needed) into the
/// dataset within `tx`. The caller commits, together with whatever ledger update
/// belongs to the same load. A source that cannot be read twice (`again` is `None`: a
/// pipe) has every payload staged in its one read.
pub async fn load(
    tx: &Transaction<'_>,
    source: Box<dyn Read + Send>,
    again: Option<&dyn Reopen>,
    dest: &Destination,
    lineage: &Lineage,
    object_id: Option<i64>,
) -> Result<Loaded, LoadError> {
    load_with(
        tx,
        source,
        again,
        dest,
        lineage,
        object_id,
        Options::default(),
    )
    .await
}

/// [`load`], with `options` (`bronze ingest --no-checks`, bounds from the environment).
pub async fn load_with(
    tx: &Transaction<'_>,
    source: Box<dyn Read + Send>,
    again: Option<&dyn Reopen>,
    dest: &Destination,
    lineage: &Lineage,
    object_id: Option<i64>,
    options: Options,
) -> Result<Loaded, LoadError> {
    let started = Instant::now();
    store::lock_dataset(tx, dest).await?;
    let new_table = store::ensure_dataset_table(tx, dest).await?;
    let settings = store::dataset_settings(tx, dest).await?;
    let current = registry::current(tx, dest).await?;
    let load_id = store::start_load(tx, object_id, dest, lineage, "loaded").await?;
    tracing::Span::current().record("load_id", load_id);
    let job = Job {
        tx,
        dest,
        lineage,
        settings: &settings,
        current: current.as_ref(),
        options,
        load_id,
    };
    let (read, merged) = plan::run(&job, source, again, new_table).await?;
    let Decided {
        staged,
        inference,
        decision,
        bytes,
    } = read;
    let schema_version = decision.version().map(|(n, _)| n);
    let quality_score = match (&staged.inferrer, decision.version()) {
        (Some(inferrer), Some((number, schema))) => {
            let duplicates = merged.key_duplicates;
            let figures = u64::try_from(duplicates).unwrap_or(0);
            let quality = inferrer.quality(schema, &settings.key_columns, figures);
            store::record_quality(tx, load_id, &quality, Some(number), duplicates).await?;
            quality.score
        }
        _ => None,
    };
    let written = typed::Written {
        decision: &decision,
        new_table,
        wrote: merged.inserted + merged.updated + merged.deleted > 0,
        rebuild_rows: options.limits.typed_rebuild_rows,
    };
    if let Some(reason) = typed::follow(tx, dest, &settings, written).await? {
        tracing::warn!(tenant = %dest.tenant, dataset = %dest.dataset, reason);
    }
    let rejected = i64::try_from(staged.rejects.count).unwrap_or(i64::MAX);
    let counts = LoadCounts {
        records_in: staged.records + rejected,
        inserted: merged.inserted,
        updated: merged.updated,
        unchanged: staged.records - merged.inserted - merged.updated,
        deleted: merged.deleted,
        rejected,
        bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
    };
    if merged.in_order {
        let table = store::dataset_table(dest);
        store::record_digest(tx, load_id, &staged.digest, &table).await?;
    }
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let detected = Some(&staged.detected);
    store::finish_load(tx, load_id, detected, &counts, duration_ms, None).await?;
    if let Some(report) = &inference {
        store::record_inference(tx, load_id, report).await?;
    }
    Ok(Loaded {
        load_id,
        detected: staged.detected,
        counts,
        duration_ms,
        schema_version,
        new_version: matches!(decision, Decision::New { .. }),
        quality_score,
        source_ts: lineage.source_ts,
    })
}

/// Records a rejected file within `tx`: a `rejected` load with the reason, the line
/// that condemned it, and the ledger verdict when the file came from a bucket.
pub async fn record_rejection(
    tx: &Transaction<'_>,
    dest: &Destination,
    lineage: &Lineage,
    object_id: Option<i64>,
    line: Option<u64>,
    reason: &str,
) -> Result<i64, tokio_postgres::Error> {
    let located = match line {
        Some(line) => format!("line {line}: {reason}"),
        None => reason.to_owned(),
    };
    let load_id = store::start_load(tx, object_id, dest, lineage, "rejected").await?;
    store::finish_load(tx, load_id, None, &LoadCounts::default(), 0, Some(&located)).await?;
    store::record_rejects(tx, load_id, &Sample::file(line, reason)).await?;
    if let Some(id) = object_id {
        store::set_status(
            tx,
            id,
            store::Status::Rejected,
            Some(load_id),
            Some(&located),
        )
        .await?;
    }
    Ok(load_id)
}

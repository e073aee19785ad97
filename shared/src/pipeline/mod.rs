//! One file into one dataset: read → canonicalise → hash → binary COPY into a staging
//! table → one set-based merge, inside the caller's transaction.
//!
//! Parsing runs on blocking threads and hands encoded COPY chunks to the database side
//! through a small bounded channel, so memory stays flat in the file size and the
//! parser and the socket work at the same time. Into a table that has rows the file
//! is read twice: keys and hashes first, then the payloads of what changed. Into a new
//! table, a file that can be read again skips staging: its rows are the table's.

mod copy_in;
mod fill;
mod merge;
mod payloads;
mod stage;

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::BoxFuture;
use tokio_postgres::Transaction;

use crate::contract::{compile_json_schema, Checks, Contract};
use crate::format::{Detected, Format, ReadError, ReadSettings};
use crate::identity::KeySpec;
use crate::keys::Destination;
use crate::limits::Limits;
use crate::registry::{self, Decision};
use crate::rejects::Sample;
use crate::schema::Schema;
use crate::store::{self, DatasetSettings, Lineage, LoadCounts};
use crate::typed;
use merge::{Merge, Reread};
use stage::{stage, Payloads, Rules, Staged, Target};

/// How a load ended, when it did not end well.
#[derive(Debug)]
pub enum LoadError {
    /// The file is bad: record the reason, never retry.
    Rejected { line: Option<u64>, reason: String },
    /// The source or the database failed: retry later.
    Transient(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Rejected {
                line: Some(line),
                reason,
            } => write!(f, "line {line}: {reason}"),
            LoadError::Rejected { line: None, reason } | LoadError::Transient(reason) => {
                f.write_str(reason)
            }
        }
    }
}

impl std::error::Error for LoadError {}

impl From<tokio_postgres::Error> for LoadError {
    fn from(e: tokio_postgres::Error) -> Self {
        LoadError::Transient(format!("database: {}", crate::aws::describe(&e)))
    }
}

impl From<registry::RegistryError> for LoadError {
    fn from(e: registry::RegistryError) -> Self {
        match e {
            registry::RegistryError::Postgres(e) => e.into(),
            // Not the file's fault: retried, and the dead-letter queue keeps it.
            corrupt => LoadError::Transient(corrupt.to_string()),
        }
    }
}

impl From<ReadError> for LoadError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Source(io) => LoadError::Transient(format!("reading the source: {io}")),
            ReadError::Malformed { line, reason } | ReadError::Record { line, reason, .. } => {
                LoadError::Rejected {
                    line: Some(line),
                    reason,
                }
            }
            ReadError::Unsupported(reason) => LoadError::Rejected { line: None, reason },
        }
    }
}

/// What a successful load did.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub load_id: i64,
    pub detected: Detected,
    pub counts: LoadCounts,
    pub duration_ms: i64,
    /// The schema version the load's rows belong to, and whether the load made it.
    pub schema_version: Option<i32>,
    pub new_version: bool,
    pub quality_score: Option<f64>,
}

/// How much a load does beyond loading, within which bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Inference, the schema registry, contracts, JSON Schema validation and quality.
    /// Off only to measure what they cost (`bronze ingest --no-checks`).
    pub checks: bool,
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
    let job = Job {
        tx,
        dest,
        lineage,
        settings: &settings,
        current: current.as_ref(),
        options,
        load_id,
    };
    let (read, merged) = match (new_table, again) {
        (true, Some(again)) => match fill::fill(&job, source).await? {
            Ok(done) => done,
            Err(why) => {
                tracing::info!(file = %lineage.key, why = why.as_str(), "reading again into staging");
                let source = again.reopen().await?;
                job.staged(source, Some(again), true, why == fill::Why::KeysRepeat)
                    .await?
            }
        },
        _ => job.staged(source, again, new_table, false).await?,
    };
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
    if let Decision::New { schema, .. } = &decision {
        if let Some(reason) = typed::create_view(tx, dest, schema).await? {
            tracing::warn!(tenant = %dest.tenant, dataset = %dest.dataset, reason);
        }
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
    })
}

/// One load's fixed inputs: where, from what, under which settings.
struct Job<'a> {
    tx: &'a Transaction<'a>,
    dest: &'a Destination,
    lineage: &'a Lineage,
    settings: &'a DatasetSettings,
    current: Option<&'a registry::Version>,
    options: Options,
    load_id: i64,
}

/// A read of the file, and what its schema does to the dataset's.
struct Decided {
    staged: Staged,
    inference: Option<serde_json::Value>,
    decision: Decision,
    /// Bytes read from the source (compressed, as stored).
    bytes: u64,
}

impl Job<'_> {
    /// Reads `source` into staging and merges it. A source that can be read again
    /// (`again`) into a table with rows stages keys and hashes only; `keys_repeat`
    /// says a first fill already found a key twice.
    async fn staged(
        &self,
        source: Box<dyn Read + Send>,
        again: Option<&dyn Reopen>,
        new_table: bool,
        keys_repeat: bool,
    ) -> Result<(Decided, merge::Merged), LoadError> {
        let tx = self.tx;
        let payloads = match again {
            Some(_) if !new_table => Payloads::Reread,
            _ => Payloads::Staged,
        };
        create_staging(tx, payloads).await?;
        let (staged, bytes) = self.read(source, Target::Staging(payloads)).await?;
        // Memory for the merge's sorts and hashes so they do not spill to disk, and no
        // JIT: compiling the merge costs more than it saves.
        tx.batch_execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off")
            .await?;
        let read = self.decide(staged, bytes)?;
        self.record_schema(&read.decision).await?;
        let merge = Merge {
            tx,
            dest: self.dest,
            table: store::dataset_table(self.dest),
            lineage: self.lineage,
            load_id: self.load_id,
            schema_version: read.decision.version().map_or(0, |(n, _)| n),
            validated: self.validated(),
            keys_repeat,
            reread: again
                .filter(|_| payloads == Payloads::Reread)
                .map(|source| Reread {
                    source,
                    name: self.lineage.key.clone(),
                    read: self.read_settings(),
                }),
        };
        let merged = merge
            .run(new_table, &read.staged, self.settings.snapshot)
            .await?;
        Ok((read, merged))
    }

    /// Reads `source` into `target`, counting the bytes it reads.
    async fn read(
        &self,
        source: Box<dyn Read + Send>,
        target: Target,
    ) -> Result<(Staged, u64), LoadError> {
        let (source, bytes) = counted(source);
        let rules = Rules {
            read: self.read_settings(),
            keys: KeySpec::new(&self.settings.key_columns),
            checks: self.checks()?,
            on_error: self.settings.on_error,
        };
        let staged = stage(self.tx, source, self.lineage.key.clone(), rules, target).await?;
        let tally = staged.tally();
        if self.settings.on_error.verdict(&tally).is_some() {
            return Err(LoadError::Rejected {
                line: None,
                reason: stage::skipped(&self.settings.on_error, &tally, &staged.rejects),
            });
        }
        store::record_rejects(self.tx, self.load_id, &staged.rejects.sample).await?;
        Ok((staged, bytes.load(Ordering::Relaxed)))
    }

    /// How the dataset's files are read.
    fn read_settings(&self) -> ReadSettings {
        ReadSettings {
            format: self.settings.format,
            encoding: self.settings.encoding,
            limits: self.options.limits,
        }
    }

    /// The record-level checks the dataset's settings ask for, when checks are on.
    fn checks(&self) -> Result<Option<Checks>, LoadError> {
        if !self.options.checks {
            return Ok(None);
        }
        record_checks(self.settings, self.current).map(Some)
    }

    /// `Some(true)` when every loaded record passed the dataset's JSON Schema.
    fn validated(&self) -> Option<bool> {
        (self.options.checks && self.settings.json_schema.is_some()).then_some(true)
    }

    /// What the file's schema does to the dataset's; a refused file is rejected.
    fn decide(&self, staged: Staged, bytes: u64) -> Result<Decided, LoadError> {
        let inference = staged.inferrer.as_ref().map(|i| i.report(&staged.detected));
        let decision = decide_schema(inference.as_ref(), &staged, self.current, self.settings);
        if let Decision::Refused(reason) = decision {
            return Err(LoadError::Rejected { line: None, reason });
        }
        let most = self.options.limits.schema_fields;
        if let Some((number, schema)) = decision.version() {
            if schema.fields.len() > most {
                return Err(LoadError::Rejected {
                    line: None,
                    reason: format!(
                        "schema version {number} would have {} fields, more than the {most} a \
                         version may have (BRONZE_MAX_SCHEMA_FIELDS; its typed view is a \
                         PostgreSQL relation)",
                        schema.fields.len()
                    ),
                });
            }
        }
        Ok(Decided {
            staged,
            inference,
            decision,
            bytes,
        })
    }

    async fn record_schema(&self, decision: &Decision) -> Result<(), LoadError> {
        if let Decision::New {
            number,
            schema,
            changes,
        } = decision
        {
            registry::record(self.tx, self.dest, *number, schema, changes, self.load_id).await?;
        }
        Ok(())
    }
}

/// The temporary table the records are copied into.
///
/// Into a new table every record is new: its payload is staged as jsonb, parsed by the
/// server during the COPY while the client parses on. Into a table with rows most
/// records of most files are unchanged, and staging their payloads was most of the
/// server's work: staging keeps keys and hashes, and a second read brings the payloads
/// of the new versions ([`payloads`]).
async fn create_staging(tx: &Transaction<'_>, payloads: Payloads) -> Result<(), LoadError> {
    let payload = match payloads {
        Payloads::Staged => ", payload jsonb",
        Payloads::Reread => "",
    };
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE bronze_staging (
             record_key text COLLATE \"C\", record_hash bytea, source_line bigint,
             ordinal bigint{payload}
         ) ON COMMIT DROP"
    ))
    .await?;
    Ok(())
}

/// What the file's schema does to the dataset's. Without inference (`--no-checks`)
/// rows belong to the current version.
fn decide_schema(
    inference: Option<&serde_json::Value>,
    staged: &Staged,
    current: Option<&registry::Version>,
    settings: &DatasetSettings,
) -> Decision {
    let Some(report) = inference else {
        return Decision::Same {
            number: current.map(|v| v.number),
            schema: Schema::default(),
        };
    };
    let json = matches!(staged.detected.format, Format::Json | Format::Ndjson);
    let observed = Schema::from_inference(report);
    let records = u64::try_from(staged.records).unwrap_or(0);
    registry::decide(current, &observed, records, json, settings.contract)
}

/// The record-level checks the dataset's settings ask for: fitting the current
/// version under `discard_row`, and its JSON Schema.
fn record_checks(
    settings: &DatasetSettings,
    current: Option<&registry::Version>,
) -> Result<Checks, LoadError> {
    let fit = match (settings.contract, current) {
        (Contract::DiscardRow, Some(v)) => Some((v.number, &v.schema)),
        _ => None,
    };
    let json_schema = match &settings.json_schema {
        Some(schema) => Some(
            compile_json_schema(schema)
                .map_err(|reason| LoadError::Rejected { line: None, reason })?,
        ),
        None => None,
    };
    Ok(Checks::new(fit, json_schema))
}

/// `source`, counting the bytes read from it.
fn counted(source: Box<dyn Read + Send>) -> (Box<dyn Read + Send>, Arc<AtomicU64>) {
    let bytes = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: source,
        bytes: Arc::clone(&bytes),
    };
    (Box::new(counting), bytes)
}

/// Counts the bytes read from the source (compressed, as stored).
struct Counting {
    inner: Box<dyn Read + Send>,
    bytes: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
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

//! One file into one dataset: read → canonicalise → hash → binary COPY into a staging
//! table → one set-based merge, inside the caller's transaction.
//!
//! Parsing runs on a blocking thread and hands encoded COPY chunks to the database
//! side through a small bounded channel, so memory stays flat in the file size and the
//! parser and the socket work at the same time.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;
use tokio_postgres::Transaction;

use crate::contract::{compile_json_schema, Checks, Contract};
use crate::copy::CopyEncoder;
use crate::format::{self, Detected, Format, ReadError, Records};
use crate::hash::record_hash;
use crate::identity::KeySpec;
use crate::infer::{Background, Inferrer, Observe};
use crate::keys::Destination;
use crate::registry::{self, Decision};
use crate::repeats::Repeats;
use crate::schema::Schema;
use crate::store::{self, DatasetSettings, Lineage, LoadCounts};
use crate::typed;

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

/// How much a load does beyond loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Inference, the schema registry, contracts, JSON Schema validation and quality.
    /// Off only to measure what they cost (`bronze ingest --no-checks`).
    pub checks: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { checks: true }
    }
}

/// Loads `source` (named `lineage.key`) into the dataset within `tx`. The caller
/// commits, together with whatever ledger update belongs to the same load.
pub async fn load(
    tx: &Transaction<'_>,
    source: Box<dyn Read + Send>,
    dest: &Destination,
    lineage: &Lineage,
    object_id: Option<i64>,
) -> Result<Loaded, LoadError> {
    load_with(tx, source, dest, lineage, object_id, Options::default()).await
}

pub async fn load_with(
    tx: &Transaction<'_>,
    source: Box<dyn Read + Send>,
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
    let checks = if options.checks {
        Some(record_checks(&settings, current.as_ref())?)
    } else {
        None
    };
    let load_id = store::start_load(tx, object_id, dest, lineage, "loaded").await?;
    create_staging(tx, new_table).await?;

    let bytes = Arc::new(AtomicU64::new(0));
    let counted = Box::new(Counting {
        inner: source,
        bytes: Arc::clone(&bytes),
    });
    let keys = KeySpec::new(&settings.key_columns);
    let staged = stage(
        tx,
        counted,
        lineage.key.clone(),
        settings.format,
        keys,
        checks,
        new_table,
    )
    .await?;
    // Memory for the merge's sorts and hashes so they do not spill to disk, and no
    // JIT: compiling the merge costs more than it saves.
    tx.batch_execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off")
        .await?;

    let inference = staged.inferrer.as_ref().map(|i| i.report(&staged.detected));
    let decision = decide_schema(inference.as_ref(), &staged, current.as_ref(), &settings);
    if let Decision::Refused(reason) = decision {
        return Err(LoadError::Rejected { line: None, reason });
    }
    if let Decision::New {
        number,
        schema,
        changes,
    } = &decision
    {
        registry::record(tx, dest, *number, schema, changes, load_id).await?;
    }
    let schema_version = decision.version().map(|(n, _)| n);

    let merge = Merge {
        tx,
        dest,
        table: store::dataset_table(dest),
        lineage,
        load_id,
        schema_version: schema_version.unwrap_or(0),
        validated: (options.checks && settings.json_schema.is_some()).then_some(true),
    };
    let merged = merge.run(new_table, &staged, settings.snapshot).await?;
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
    let counts = LoadCounts {
        records_in: staged.records + staged.rejects,
        inserted: merged.inserted,
        updated: merged.updated,
        unchanged: staged.records - merged.inserted - merged.updated,
        deleted: merged.deleted,
        rejected: merged.rejected,
        bytes: i64::try_from(bytes.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
    };
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

/// The temporary table the records are copied into.
///
/// Into an existing table the payload stays text in staging: PostgreSQL parses JSON
/// into jsonb only for the records that become new versions, not for the unchanged
/// majority. Into a new table every record is new, and parsing it during the COPY
/// overlaps with the client's own parsing.
async fn create_staging(tx: &Transaction<'_>, new_table: bool) -> Result<(), LoadError> {
    let payload = if new_table { "jsonb" } else { "text" };
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE bronze_staging (
             record_key text COLLATE \"C\", record_hash bytea, payload {payload},
             source_line bigint, reject text, raw text
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

/// What the parser staged.
struct Staged {
    /// Records staged as good (not rejected).
    records: i64,
    rejects: i64,
    /// `false` when no key came twice, for certain.
    keys_may_repeat: bool,
    detected: Detected,
    inferrer: Option<Inferrer>,
}

/// Streams the records into `bronze_staging`.
async fn stage(
    tx: &Transaction<'_>,
    source: Box<dyn Read + Send>,
    name: String,
    pinned: Option<Format>,
    keys: KeySpec,
    checks: Option<Checks>,
    payload_jsonb: bool,
) -> Result<Staged, LoadError> {
    let (chunks, mut received) = mpsc::channel::<Bytes>(4);
    let parser = tokio::task::spawn_blocking(move || {
        encode(source, &name, pinned, keys, checks, payload_jsonb, &chunks)
    });
    let sink = tx
        .copy_in(
            "COPY pg_temp.bronze_staging (record_key, record_hash, payload, source_line, reject, raw)
             FROM STDIN (FORMAT binary)",
        )
        .await?;
    futures_util::pin_mut!(sink);
    let mut copy_failed = None;
    while let Some(chunk) = received.recv().await {
        if let Err(e) = sink.send(chunk).await {
            copy_failed = Some(e);
            break;
        }
    }
    drop(received);
    let parsed = parser
        .await
        .map_err(|e| LoadError::Transient(format!("parser thread failed: {e}")))?;
    match (parsed, copy_failed) {
        (Ok(_), Some(e)) | (Err(Encode::ConsumerGone), Some(e)) => Err(e.into()),
        (Err(Encode::Read(e)), _) => Err(e.into()),
        (Err(Encode::Thread(reason)), _) => Err(LoadError::Transient(reason)),
        (Err(Encode::ConsumerGone), None) => {
            Err(LoadError::Transient("COPY stream ended early".into()))
        }
        (Ok(staged), None) => {
            sink.finish().await?;
            Ok(staged)
        }
    }
}

enum Encode {
    Read(ReadError),
    /// A thread of the load died: a bug, retried like a fault.
    Thread(String),
    /// The database side stopped listening; its own error says why.
    ConsumerGone,
}

/// A file with more bad records than this, and more bad than good, is not a data file
/// with defects but the wrong file (binary, another format): it is rejected whole.
const MAX_REJECTS: i64 = 1000;

/// The blocking half: parse, canonicalise, check, hash, key and encode rows into COPY
/// chunks, with inference beside it on a second thread. Bad records become staging
/// rows with a reason, so they travel the same stream.
fn encode(
    source: Box<dyn Read + Send>,
    name: &str,
    pinned: Option<Format>,
    keys: KeySpec,
    checks: Option<Checks>,
    payload_jsonb: bool,
    chunks: &mpsc::Sender<Bytes>,
) -> Result<Staged, Encode> {
    let (mut records, detected) = format::open(source, name, pinned).map_err(Encode::Read)?;
    let inferrer = checks.as_ref().map(|_| records.inferrer());
    std::thread::scope(|scope| {
        let mut inference = inferrer.map(|i| Background::spawn(scope, i));
        let stream = Stream {
            keys,
            checks,
            payload_jsonb,
            chunks,
        };
        let counts = stream.run(&mut records, &detected, inference.as_mut())?;
        let inferrer = inference
            .map(Background::finish)
            .transpose()
            .map_err(|e| Encode::Thread(e.to_string()))?;
        Ok(Staged {
            records: counts.good,
            rejects: counts.bad,
            keys_may_repeat: counts.keys_may_repeat,
            detected,
            inferrer,
        })
    })
}

/// What `encode` streams with.
struct Stream<'a> {
    keys: KeySpec,
    checks: Option<Checks>,
    payload_jsonb: bool,
    chunks: &'a mpsc::Sender<Bytes>,
}

/// Records staged as good and as rejects.
struct Counts {
    good: i64,
    bad: i64,
    keys_may_repeat: bool,
}

impl Stream<'_> {
    /// Inference observes the records that load: a refused record must not move the
    /// schema (under `freeze` it would refuse the whole file), and its defect is on
    /// record in `bronze.rejects` already.
    fn run(
        mut self,
        records: &mut Records,
        detected: &Detected,
        mut inference: Option<&mut Background<'_>>,
    ) -> Result<Counts, Encode> {
        if let Some(checks) = &mut self.checks {
            checks.set_delimited(matches!(detected.format, Format::Csv | Format::Tsv));
        }
        let mut encoder = CopyEncoder::default();
        let mut json = Vec::with_capacity(4096);
        let mut key = Vec::with_capacity(128);
        let mut repeats = Repeats::default();
        let (mut good, mut bad, mut unreadable) = (0i64, 0i64, 0i64);
        loop {
            let line = match records.next_into(&mut json) {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(ReadError::Record { line, reason, raw }) => {
                    bad += 1;
                    unreadable += 1;
                    if unreadable > MAX_REJECTS && unreadable > good {
                        let reason = format!(
                            "{unreadable} of the first {} records are unreadable ({reason})",
                            bad + good
                        );
                        return Err(Encode::Read(ReadError::Malformed { line, reason }));
                    }
                    if let Some(inference) = inference.as_deref_mut() {
                        inference.rejected(line);
                    }
                    encode_reject(&mut encoder, line, &reason, &raw);
                    continue;
                }
                Err(e) => return Err(Encode::Read(e)),
            };
            let checked = self.checks.as_mut().map_or(Ok(()), |c| c.check(&json));
            let hash = record_hash(&json);
            let keyed = checked.and_then(|()| self.keys.record_key(&json, &hash, &mut key));
            if let Err(reason) = keyed {
                bad += 1;
                encode_reject(&mut encoder, line, &reason, &String::from_utf8_lossy(&json));
                continue;
            }
            if let Some(inference) = inference.as_deref_mut() {
                records.observe(line, &json, inference);
            }
            repeats.note(&key);
            good += 1;
            encoder.row(6);
            encoder.text(&key);
            encoder.bytea(&hash);
            if self.payload_jsonb {
                encoder.jsonb(&json);
            } else {
                encoder.text(&json);
            }
            encoder.int8(i64::try_from(line).unwrap_or(i64::MAX));
            encoder.null();
            encoder.null();
            if let Some(chunk) = encoder.take_full() {
                self.send(chunk)?;
            }
        }
        self.send(encoder.finish())?;
        Ok(Counts {
            good,
            bad,
            keys_may_repeat: repeats.maybe(),
        })
    }

    fn send(&self, chunk: Bytes) -> Result<(), Encode> {
        self.chunks
            .blocking_send(chunk)
            .map_err(|_| Encode::ConsumerGone)
    }
}

fn encode_reject(encoder: &mut CopyEncoder, line: u64, reason: &str, raw: &str) {
    encoder.row(6);
    encoder.null();
    encoder.null();
    encoder.null();
    encoder.int8(i64::try_from(line).unwrap_or(i64::MAX));
    encoder.text(reason.as_bytes());
    encoder.text(raw.as_bytes());
}

/// The set-based statements that turn the staged records into versions.
///
/// Versions of a key are ordered by source order, `(source_ts, load_id, source_line)`:
/// the object's last-modified time first, arrival only to break ties. A record is a
/// new version when its hash differs from the version before it in that order (the
/// one before it in the same file, or the table's latest older version); so files that
/// arrive late slot in behind newer ones and the current state is the same as if
/// they had arrived in order. Version numbers count arrivals and are never rewritten.
struct Merge<'a> {
    tx: &'a Transaction<'a>,
    dest: &'a Destination,
    table: String,
    lineage: &'a Lineage,
    load_id: i64,
    schema_version: i32,
    /// `Some(true)` when every loaded record passed the dataset's JSON Schema.
    validated: Option<bool>,
}

/// What the merge did.
struct Merged {
    rejected: i64,
    inserted: i64,
    updated: i64,
    deleted: i64,
    /// Records whose key an earlier record of the file had.
    key_duplicates: i64,
}

/// The columns every new version row is written with, in the order the statements
/// below select them.
const VERSION_COLUMNS: &str = "record_key, version, record_hash, change_type, is_current,
    valid_from, valid_to, payload, source_bucket, source_key, source_version_id,
    source_etag, source_line, source_ts, load_id, schema_version, validated";

impl Merge<'_> {
    /// Picks the cheapest statements that give the same versions. Most files bring
    /// each key once, in order: into a new table they are all inserts (indexes built
    /// after), into an existing one a single join with the current rows finds what
    /// changed. Repeated keys and late files take the general path.
    async fn run(
        &self,
        new_table: bool,
        staged: &Staged,
        snapshot: bool,
    ) -> Result<Merged, LoadError> {
        let rejected = if staged.rejects > 0 {
            self.rejects().await?
        } else {
            0
        };
        if new_table {
            if let Some(inserted) = self.fill_new_table().await? {
                return Ok(Merged {
                    rejected,
                    inserted,
                    updated: 0,
                    deleted: 0,
                    key_duplicates: 0,
                });
            }
            store::create_dataset_indexes(self.tx, self.dest).await?;
        }
        // Real row counts for the planner (temporary tables are never auto-analysed);
        // a small sample is enough.
        self.tx
            .batch_execute(
                "SET LOCAL default_statistics_target = 10; ANALYZE pg_temp.bronze_staging",
            )
            .await?;
        let key_duplicates = if staged.keys_may_repeat {
            self.key_duplicates().await?
        } else {
            0
        };
        let late = !new_table && self.arrived_late().await?;
        let (inserted, updated) = if key_duplicates == 0 && !late {
            self.changed_only().await?
        } else {
            self.new_versions(late).await?
        };
        // A file with rejected records is not a complete snapshot: deleting the keys of
        // the records it failed to read would lose data.
        let deleted = if snapshot && rejected == 0 && !new_table {
            self.snapshot_deletes().await?
        } else {
            0
        };
        // A key can get a new current row as an `insert` too (after its `delete`).
        if (!new_table && inserted + updated + deleted > 0) || late {
            self.close_superseded(late).await?;
        }
        Ok(Merged {
            rejected,
            inserted,
            updated,
            deleted,
            key_duplicates,
        })
    }

    /// A new table: every record is version 1 of its key, inserted by one statement,
    /// and the indexes are built after. A key the file has twice fails the primary
    /// key; then none of it is kept (`None`) and the general path runs. No key repeats
    /// in most files, and this is cheaper than looking for repeats first.
    async fn fill_new_table(&self) -> Result<Option<i64>, LoadError> {
        self.tx.batch_execute("SAVEPOINT bronze_fill").await?;
        let sql = format!(
            "INSERT INTO {} ({VERSION_COLUMNS})
             SELECT record_key, 1, record_hash, 'insert', true, $1, NULL, payload::jsonb,
                    $2, $3, $4, $5, source_line, $1, $6, $7, $8
             FROM pg_temp.bronze_staging WHERE reject IS NULL",
            self.table
        );
        let filled = match self.execute_raw(&sql).await {
            Ok(n) => store::create_dataset_indexes(self.tx, self.dest)
                .await
                .map(|()| n),
            Err(e) => Err(e),
        };
        match filled {
            Ok(n) => {
                self.tx
                    .batch_execute("RELEASE SAVEPOINT bronze_fill")
                    .await?;
                Ok(Some(i64::try_from(n).unwrap_or(i64::MAX)))
            }
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                self.tx
                    .batch_execute("ROLLBACK TO SAVEPOINT bronze_fill")
                    .await?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// In order, no key twice: a record is new when its hash differs from the current
    /// row's. Only the changed records are joined back to their payloads.
    async fn changed_only(&self) -> Result<(i64, i64), LoadError> {
        let table = &self.table;
        let changed = format!(
            "CREATE TEMP TABLE bronze_changed ON COMMIT DROP AS
             SELECT s.ctid AS tid, s.record_key, s.record_hash, s.source_line,
                    c.record_key IS NOT NULL AS found, c.record_hash AS prior_hash
             FROM pg_temp.bronze_staging s
             LEFT JOIN {table} c ON c.record_key = s.record_key AND c.is_current
             WHERE s.reject IS NULL AND c.record_hash IS DISTINCT FROM s.record_hash"
        );
        if self.tx.execute(&changed, &[]).await? == 0 {
            self.tx
                .batch_execute(
                    "CREATE TEMP TABLE bronze_touched (record_key text COLLATE \"C\", version integer,
                         change_type text, is_current boolean, late boolean) ON COMMIT DROP",
                )
                .await?;
            return Ok((0, 0));
        }
        // Version numbers count arrivals: a key's top version may be a late one that is
        // not current, so the number comes from the top, not from the current row.
        let insert = format!(
            "CREATE TEMP TABLE bronze_touched ON COMMIT DROP AS
             WITH inserted AS (
                 INSERT INTO {table} ({VERSION_COLUMNS})
                 SELECT ch.record_key,
                        CASE WHEN ch.found THEN (SELECT max(version) FROM {table} m
                                                 WHERE m.record_key = ch.record_key) + 1
                             ELSE 1 END,
                        ch.record_hash,
                        CASE WHEN ch.prior_hash IS NULL THEN 'insert' ELSE 'update' END,
                        true, $1, NULL, st.payload::jsonb, $2, $3, $4, $5, ch.source_line, $1,
                        $6, $7, $8
                 FROM pg_temp.bronze_changed ch
                 JOIN pg_temp.bronze_staging st ON st.ctid = ch.tid
                 RETURNING record_key, version, change_type, is_current, false AS late
             )
             SELECT * FROM inserted"
        );
        self.execute(&insert).await?;
        self.touched_counts().await
    }

    /// (inserted, updated) among the rows this load wrote.
    async fn touched_counts(&self) -> Result<(i64, i64), LoadError> {
        let row = self
            .tx
            .query_one(
                "SELECT count(*) FILTER (WHERE change_type = 'insert'),
                        count(*) FILTER (WHERE change_type = 'update')
                 FROM pg_temp.bronze_touched",
                &[],
            )
            .await?;
        Ok((row.get(0), row.get(1)))
    }
    /// Runs a statement whose parameters are the lineage of the new rows:
    /// `$1` source_ts, `$2` bucket, `$3` key, `$4` version id, `$5` etag, `$6` load id,
    /// `$7` schema version, `$8` validated.
    async fn execute(&self, sql: &str) -> Result<u64, LoadError> {
        Ok(self.execute_raw(sql).await?)
    }

    async fn execute_raw(&self, sql: &str) -> Result<u64, tokio_postgres::Error> {
        let l = self.lineage;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
            &l.source_ts,
            &l.bucket,
            &l.key,
            &l.version_id,
            &l.etag,
            &self.load_id,
            &self.schema_version,
            &self.validated,
        ];
        self.tx.execute(sql, &params).await
    }

    /// Records whose key an earlier record of the same file had.
    async fn key_duplicates(&self) -> Result<i64, LoadError> {
        let row = self
            .tx
            .query_one(
                "SELECT coalesce(sum(n - 1), 0)::bigint FROM (
                     SELECT count(*) AS n FROM pg_temp.bronze_staging
                     WHERE reject IS NULL GROUP BY record_key) k",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    async fn rejects(&self) -> Result<i64, LoadError> {
        let n = self
            .tx
            .execute(
                "INSERT INTO bronze.rejects (load_id, line, raw, reason)
                 SELECT $1, source_line, raw, reject FROM pg_temp.bronze_staging
                 WHERE reject IS NOT NULL",
                &[&self.load_id],
            )
            .await?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// Whether an earlier load of the dataset came from a newer source than this one.
    /// Only then can a key have versions after this file's; most loads arrive in
    /// order and take the cheaper path.
    async fn arrived_late(&self) -> Result<bool, LoadError> {
        let row = self
            .tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM bronze.loads
                                WHERE tenant = $1 AND dataset = $2 AND status = 'loaded'
                                  AND id <> $3 AND source_ts > $4)",
                &[
                    &self.dest.tenant.as_str(),
                    &self.dest.dataset.as_str(),
                    &self.load_id,
                    &self.lineage.source_ts,
                ],
            )
            .await?;
        Ok(row.get(0))
    }

    /// The general path: keys repeated in the file, or a file older than loads already
    /// made. Inserts the records that changed; returns (inserted, updated).
    async fn new_versions(&self, late: bool) -> Result<(i64, i64), LoadError> {
        let table = &self.table;
        // In order, the version before a file's first record of a key is the current
        // one, found by one join; the top version number is looked up only for keys
        // that get a new version. Late, both neighbours in source order are needed.
        let (prior, top) = if late {
            (
                format!(
                    "SELECT k.record_key, k.last_nth, before.record_hash AS prior_hash,
                            (SELECT max(version) FROM {table} m
                             WHERE m.record_key = k.record_key) AS top,
                            after.found IS NOT NULL AS later, after.record_hash AS next_hash
                     FROM (SELECT record_key, n_in_file AS last_nth FROM staged WHERE nth = 1) k
                     LEFT JOIN LATERAL (
                         SELECT t.record_hash FROM {table} t
                         WHERE t.record_key = k.record_key AND t.source_ts <= $1
                         ORDER BY t.source_ts DESC, t.load_id DESC, t.source_line DESC NULLS FIRST
                         LIMIT 1
                     ) before ON true
                     LEFT JOIN LATERAL (
                         SELECT true AS found, t.record_hash FROM {table} t
                         WHERE t.record_key = k.record_key AND t.source_ts > $1
                         ORDER BY t.source_ts, t.load_id, t.source_line NULLS FIRST
                         LIMIT 1
                     ) after ON true"
                ),
                "coalesce(top, 0)".to_owned(),
            )
        } else {
            (
                format!(
                    "SELECT k.record_key, k.last_nth, c.record_hash AS prior_hash,
                            c.record_key IS NOT NULL AS top, false AS later,
                            NULL::bytea AS next_hash
                     FROM (SELECT record_key, n_in_file AS last_nth FROM staged WHERE nth = 1) k
                     LEFT JOIN {table} c ON c.record_key = k.record_key AND c.is_current"
                ),
                format!(
                    "CASE WHEN top THEN (SELECT max(version) FROM {table} m
                                         WHERE m.record_key = kept.record_key) ELSE 0 END"
                ),
            )
        };
        let sql = format!(
            "CREATE TEMP TABLE bronze_touched ON COMMIT DROP AS
             WITH staged AS (
                 SELECT record_key, record_hash, source_line,
                        lag(record_hash) OVER w AS prev_in_file,
                        row_number() OVER w AS nth,
                        count(*) OVER (PARTITION BY record_key) AS n_in_file
                 FROM pg_temp.bronze_staging WHERE reject IS NULL
                 WINDOW w AS (PARTITION BY record_key ORDER BY source_line)
             ), prior AS (
                 {prior}
             ), changed AS (
                 SELECT s.*, p.top, p.later,
                        CASE WHEN s.nth = 1 THEN p.prior_hash ELSE s.prev_in_file END AS before_hash,
                        s.nth = p.last_nth AND s.record_hash = p.next_hash AS same_as_next
                 FROM staged s JOIN prior p USING (record_key)
             ), kept AS (
                 SELECT c.*, row_number() OVER k AS n, count(*) OVER (PARTITION BY record_key) AS n_kept
                 FROM changed c
                 WHERE c.before_hash IS DISTINCT FROM c.record_hash AND NOT coalesce(c.same_as_next, false)
                 WINDOW k AS (PARTITION BY record_key ORDER BY source_line)
             ), inserted AS (
                 INSERT INTO {table} ({VERSION_COLUMNS})
                 SELECT kept.record_key, {top} + n, kept.record_hash,
                        CASE WHEN n = 1 AND before_hash IS NULL THEN 'insert' ELSE 'update' END,
                        n = n_kept AND NOT later, $1, CASE WHEN n < n_kept THEN $1::timestamptz END,
                        st.payload::jsonb, $2, $3, $4, $5, kept.source_line, $1, $6, $7, $8
                 FROM kept
                 JOIN pg_temp.bronze_staging st
                   ON st.record_key = kept.record_key AND st.source_line = kept.source_line
                 RETURNING record_key, version, change_type, is_current,
                           NOT is_current AND valid_to IS NULL AS late
             )
             SELECT * FROM inserted"
        );
        self.execute(&sql).await?;
        self.touched_counts().await
    }

    /// For snapshot datasets: a `delete` version for every current key the file lacks,
    /// unless a newer file already spoke for it.
    async fn snapshot_deletes(&self) -> Result<i64, LoadError> {
        let table = &self.table;
        let sql = format!(
            "WITH gone AS (
                 SELECT c.record_key, (SELECT max(version) FROM {table} m
                                        WHERE m.record_key = c.record_key) AS top
                 FROM {table} c
                 WHERE c.is_current AND c.change_type <> 'delete' AND c.source_ts <= $1
                   AND c.load_id <> $6
                   AND NOT EXISTS (SELECT 1 FROM pg_temp.bronze_staging s
                                   WHERE s.record_key = c.record_key)
             ), deleted AS (
                 INSERT INTO {table} ({VERSION_COLUMNS})
                 SELECT record_key, top + 1, NULL, 'delete', true, $1, NULL, NULL, $2, $3, $4,
                        $5, NULL, $1, $6, $7, $8
                 FROM gone
                 RETURNING record_key, version, change_type, is_current, false AS late
             )
             INSERT INTO pg_temp.bronze_touched SELECT * FROM deleted"
        );
        let n = self.execute(&sql).await?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// Ends the versions this load superseded: the previous current row of each key
    /// that got a new current one. When the file arrived late, keys whose new versions
    /// are older than the current get their validity chain recomputed in source order.
    async fn close_superseded(&self, late: bool) -> Result<(), LoadError> {
        let table = &self.table;
        // Its real size, so the planner looks up the touched keys by index instead of
        // scanning the whole dataset table.
        self.tx
            .batch_execute("ANALYZE pg_temp.bronze_touched")
            .await?;
        let close = format!(
            "UPDATE {table} t SET is_current = false, valid_to = $1
             FROM (SELECT DISTINCT record_key FROM pg_temp.bronze_touched
                   WHERE is_current AND version > 1) k
             WHERE t.record_key = k.record_key AND t.is_current AND t.load_id <> $2"
        );
        self.tx
            .execute(&close, &[&self.lineage.source_ts, &self.load_id])
            .await?;
        if !late {
            return Ok(());
        }
        let rechain = format!(
            "WITH ordered AS (
                 SELECT t.record_key, t.version,
                        lead(t.valid_from) OVER w AS next_from,
                        row_number() OVER w_desc = 1 AS last,
                        CASE WHEN t.change_type = 'delete' THEN 'delete'
                             WHEN coalesce(lag(t.change_type) OVER w, 'delete') = 'delete' THEN 'insert'
                             ELSE 'update' END AS change
                 FROM {table} t
                 JOIN (SELECT DISTINCT record_key FROM pg_temp.bronze_touched WHERE late) k
                   USING (record_key)
                 WINDOW w AS (PARTITION BY t.record_key
                              ORDER BY t.source_ts, t.load_id, t.source_line NULLS FIRST, t.version),
                        w_desc AS (PARTITION BY t.record_key
                              ORDER BY t.source_ts DESC, t.load_id DESC,
                                       t.source_line DESC NULLS LAST, t.version DESC)
             )
             UPDATE {table} t SET is_current = o.last, valid_to = o.next_from, change_type = o.change
             FROM ordered o
             WHERE t.record_key = o.record_key AND t.version = o.version
               AND (t.is_current, t.valid_to, t.change_type)
                   IS DISTINCT FROM (o.last, o.next_from, o.change)"
        );
        self.tx.execute(&rechain, &[]).await?;
        Ok(())
    }
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

/// Records a rejected file in one transaction: a `rejected` load with the reason, the
/// line that condemned it, and the ledger verdict when the file came from a bucket.
pub async fn record_rejection(
    client: &mut tokio_postgres::Client,
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
    let tx = client.transaction().await?;
    let load_id = store::start_load(&tx, object_id, dest, lineage, "rejected").await?;
    store::finish_load(
        &tx,
        load_id,
        None,
        &LoadCounts::default(),
        0,
        Some(&located),
    )
    .await?;
    let line = line.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
    store::add_reject(&tx, load_id, line, reason).await?;
    if let Some(id) = object_id {
        store::set_status(
            &tx,
            id,
            store::Status::Rejected,
            Some(load_id),
            Some(&located),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(load_id)
}

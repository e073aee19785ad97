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
use tokio_postgres::Transaction;

use crate::copy::CopyEncoder;
use crate::format::{self, Detected, ReadError};
use crate::hash::record_hash;
use crate::keys::Destination;
use crate::store::{self, Lineage, LoadCounts};

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

impl From<ReadError> for LoadError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Source(io) => LoadError::Transient(format!("reading the source: {io}")),
            ReadError::Malformed { line, reason } => LoadError::Rejected {
                line: Some(line),
                reason,
            },
            ReadError::Unsupported(reason) => LoadError::Rejected { line: None, reason },
        }
    }
}

/// What a successful load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub load_id: i64,
    pub detected: Detected,
    pub counts: LoadCounts,
    pub duration_ms: i64,
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
    let started = Instant::now();
    store::lock_dataset(tx, dest).await?;
    store::ensure_dataset_table(tx, dest).await?;
    let load_id = store::start_load(tx, object_id, dest, lineage, "loaded").await?;
    tx.batch_execute(
        "CREATE TEMP TABLE bronze_staging (
             record_key text, record_hash bytea, payload jsonb, source_line bigint
         ) ON COMMIT DROP",
    )
    .await?;

    let bytes = Arc::new(AtomicU64::new(0));
    let counted = Box::new(Counting {
        inner: source,
        bytes: Arc::clone(&bytes),
    });
    let (staged, detected) = stage(tx, counted, lineage.key.clone()).await?;

    let inserted = merge(tx, dest, lineage, load_id).await?;
    let counts = LoadCounts {
        records_in: staged,
        inserted,
        unchanged: staged - inserted,
        bytes: i64::try_from(bytes.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
        ..LoadCounts::default()
    };
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let compression = detected.gzip.then_some("gzip");
    store::finish_load(
        tx,
        load_id,
        Some(detected.format.name()),
        compression,
        &counts,
        duration_ms,
        None,
    )
    .await?;
    Ok(Loaded {
        load_id,
        detected,
        counts,
        duration_ms,
    })
}

/// Streams the records into `bronze_staging`; returns how many and what was detected.
async fn stage(
    tx: &Transaction<'_>,
    source: Box<dyn Read + Send>,
    name: String,
) -> Result<(i64, Detected), LoadError> {
    let (chunks, mut received) = mpsc::channel::<Bytes>(4);
    let parser = tokio::task::spawn_blocking(move || encode(source, &name, &chunks));
    let sink = tx
        .copy_in(
            "COPY pg_temp.bronze_staging (record_key, record_hash, payload, source_line)
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
        (Err(Encode::ConsumerGone), None) => {
            Err(LoadError::Transient("COPY stream ended early".into()))
        }
        (Ok((records, detected)), None) => {
            let copied = sink.finish().await?;
            debug_assert_eq!(copied, records);
            Ok((i64::try_from(records).unwrap_or(i64::MAX), detected))
        }
    }
}

enum Encode {
    Read(ReadError),
    /// The database side stopped listening; its own error says why.
    ConsumerGone,
}

/// The blocking half: parse, canonicalise, hash and encode rows into COPY chunks.
fn encode(
    source: Box<dyn Read + Send>,
    name: &str,
    chunks: &mpsc::Sender<Bytes>,
) -> Result<(u64, Detected), Encode> {
    let (mut records, detected) = format::open(source, name).map_err(Encode::Read)?;
    let mut encoder = CopyEncoder::default();
    let mut json = Vec::with_capacity(4096);
    let mut key = [0u8; 64];
    let mut count = 0u64;
    while let Some(line) = records.next_into(&mut json).map_err(Encode::Read)? {
        let hash = record_hash(&json);
        // 32 bytes always encode into 64 hex digits.
        let _ = hex::encode_to_slice(hash, &mut key);
        encoder.row(4);
        encoder.text(&key);
        encoder.bytea(&hash);
        encoder.jsonb(&json);
        encoder.int8(i64::try_from(line).unwrap_or(i64::MAX));
        count += 1;
        if let Some(chunk) = encoder.take_full() {
            chunks
                .blocking_send(chunk)
                .map_err(|_| Encode::ConsumerGone)?;
        }
    }
    chunks
        .blocking_send(encoder.finish())
        .map_err(|_| Encode::ConsumerGone)?;
    Ok((count, detected))
}

/// Inserts the staged records the dataset does not hold yet. With no business key,
/// a record's key is its hash: identical records are stored once, repeats counted as
/// unchanged.
async fn merge(
    tx: &Transaction<'_>,
    dest: &Destination,
    lineage: &Lineage,
    load_id: i64,
) -> Result<i64, LoadError> {
    let table = store::dataset_table(dest);
    let sql = format!(
        "WITH staged AS (
             SELECT DISTINCT ON (record_key) record_key, record_hash, payload, source_line
             FROM pg_temp.bronze_staging ORDER BY record_key, source_line
         ), inserted AS (
             INSERT INTO {table} (record_key, version, record_hash, change_type, is_current,
                 payload, source_bucket, source_key, source_version_id, source_etag,
                 source_line, load_id, schema_version)
             SELECT s.record_key, 1, s.record_hash, 'insert', true, s.payload, $1, $2, $3,
                 $4, s.source_line, $5, 1
             FROM staged s
             WHERE NOT EXISTS (
                 SELECT 1 FROM {table} t WHERE t.record_key = s.record_key AND t.is_current)
             RETURNING 1
         )
         SELECT count(*) FROM inserted"
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &lineage.bucket,
                &lineage.key,
                &lineage.version_id,
                &lineage.etag,
                &load_id,
            ],
        )
        .await?;
    Ok(row.get(0))
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

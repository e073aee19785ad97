//! The first load of a dataset: its records COPY straight into the new table.
//!
//! Every record of a first file is the first version of its key, so staging it only to
//! copy it again into the table doubled the server's work: staging cost a temporary
//! table as large as the file, and the insert from it read that back and wrote it
//! again. Here the first read writes the table's own rows, frozen, and the indexes are
//! built after. Two things are only known at the end of the file, and each one sends
//! the load back to staging, with the file read again:
//! - a key that came twice (the primary key fails to build): versions need an order;
//! - a schema version other than the one the rows were written with (a dataset whose
//!   table is new but whose schema history is not, and whose file changes it).
//!
//! Both are rare in a first file, and a savepoint undoes the attempt.

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use super::job::{Decided, Job};
use super::merge::Merged;
use super::stage::Target;
use super::LoadError;
use crate::copy::Constant;
use crate::store::{self, Savepoint};

/// The columns after key, hash, line and payload, in the order of [`constant`].
pub(super) const CONSTANT_COLUMNS: &str = "version, change_type, is_current, valid_from, \
    source_bucket, source_key, source_version_id, source_etag, source_ts, load_id, \
    schema_version, validated";

/// Why a first fill was undone, and the file goes through staging instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    KeysRepeat,
    SchemaVersion,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::KeysRepeat => "a key came twice",
            Why::SchemaVersion => "the file changed the schema version",
        }
    }
}

/// Reads `source` into the job's new, empty table. The schema version the rows carry
/// is the one the dataset would keep if this file fits it: the current one, or 1 for
/// a dataset that has none.
pub(super) async fn first_fill(
    job: &Job<'_>,
    source: Box<dyn std::io::Read + Send>,
) -> Result<Result<(Decided, Merged), Why>, LoadError> {
    let tx = job.tx;
    let table = store::dataset_table(job.dest);
    // COPY FREEZE needs the table new in the current subtransaction: the truncate
    // makes it so (the table is empty), and rolling back to the savepoint restores it.
    let savepoint = Savepoint::begin(tx, "bronze_fill").await?;
    tx.batch_execute(&format!("TRUNCATE {table}")).await?;
    let predicted = match job.current {
        Some(current) => current.number,
        None if job.options.checks => 1,
        None => 0,
    };
    let constant = constant(job, predicted)?;
    let (staged, bytes) = job.read(source, Target::Table { table, constant }).await?;
    let read = job.decide(staged, bytes)?;
    let version = read.decision.version().map_or(0, |(n, _)| n);
    if read.staged.records > 0 && version != predicted {
        savepoint.undo().await?;
        return Ok(Err(Why::SchemaVersion));
    }
    job.record_schema(&read.decision).await?;
    match store::create_dataset_indexes(tx, job.dest).await {
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            savepoint.undo().await?;
            return Ok(Err(Why::KeysRepeat));
        }
        indexed => indexed?,
    }
    savepoint.release().await?;
    let merged = Merged::unversioned(read.staged.records);
    Ok(Ok((read, merged)))
}

/// The fields every row of the load shares, in the order of [`CONSTANT_COLUMNS`].
fn constant(job: &Job<'_>, schema_version: i32) -> Result<Constant, LoadError> {
    let l = job.lineage;
    let fields: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 12] = [
        (&1i32, Type::INT4),
        (&"insert", Type::TEXT),
        (&true, Type::BOOL),
        (&l.source_ts, Type::TIMESTAMPTZ),
        (&l.bucket, Type::TEXT),
        (&l.key, Type::TEXT),
        (&l.version_id, Type::TEXT),
        (&l.etag, Type::TEXT),
        (&l.source_ts, Type::TIMESTAMPTZ),
        (&job.load_id, Type::INT8),
        (&schema_version, Type::INT4),
        (&job.validated(), Type::BOOL),
    ];
    let mut constant = Constant::default();
    for (value, ty) in &fields {
        constant
            .push(*value, ty)
            .map_err(|e| LoadError::Transient(format!("encoding the load's lineage: {e}")))?;
    }
    Ok(constant)
}

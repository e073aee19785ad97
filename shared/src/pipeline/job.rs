//! One load's fixed inputs and the steps every path shares: reading the file (into
//! staging or into a new table), deciding what its schema does to the dataset's, and
//! the merge statements over what was staged.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio_postgres::Transaction;

use super::merge::{Merge, Reread};
use super::stage::{self, stage, Payloads, Rules, Staged, Target};
use super::{LoadError, Options, Reopen};
use crate::contract::{compile_json_schema, Checks, Contract};
use crate::format::{Format, ReadSettings};
use crate::identity::KeySpec;
use crate::infer::Report;
use crate::keys::Destination;
use crate::registry::{self, Decision};
use crate::schema::Schema;
use crate::store::{self, DatasetSettings, Lineage};

/// One load's fixed inputs: where, from what, under which settings.
pub(super) struct Job<'a> {
    pub tx: &'a Transaction<'a>,
    pub dest: &'a Destination,
    pub lineage: &'a Lineage,
    pub settings: &'a DatasetSettings,
    pub current: Option<&'a registry::Version>,
    pub options: Options,
    pub load_id: i64,
}

/// A read of the file, and what its schema does to the dataset's.
pub(super) struct Decided {
    pub staged: Staged,
    pub inference: Option<Report>,
    pub decision: Decision,
    /// Bytes read from the source (compressed, as stored).
    pub bytes: u64,
}

impl Job<'_> {
    /// Reads `source` into a new staging table, decides and records its schema: the
    /// first step of every path but the first fill.
    pub(super) async fn stage(
        &self,
        source: Box<dyn Read + Send>,
        payloads: Payloads,
    ) -> Result<Decided, LoadError> {
        create_staging(self.tx, payloads).await?;
        let (staged, bytes) = self.read(source, Target::Staging(payloads)).await?;
        // Memory for the merge's sorts and hashes so they do not spill to disk, and no
        // JIT: compiling the merge costs more than it saves.
        self.tx
            .batch_execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off")
            .await?;
        let read = self.decide(staged, bytes)?;
        self.record_schema(&read.decision).await?;
        Ok(read)
    }

    /// The statements that merge what `read` staged, with payloads from staging or,
    /// given `reread`, from a second read of the file.
    pub(super) fn merge<'a>(&'a self, read: &Decided, reread: Option<&'a dyn Reopen>) -> Merge<'a> {
        Merge {
            tx: self.tx,
            dest: self.dest,
            table: store::dataset_table(self.dest),
            lineage: self.lineage,
            load_id: self.load_id,
            schema_version: read.decision.version().map_or(0, |(n, _)| n),
            validated: self.validated(),
            reread: reread.map(|source| Reread {
                source,
                name: self.lineage.key.clone(),
                read: self.read_settings(),
            }),
        }
    }

    /// Reads `source` into `target`, counting the bytes it reads.
    pub(super) async fn read(
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
    pub(super) fn read_settings(&self) -> ReadSettings {
        ReadSettings {
            format: self.settings.format,
            encoding: self.settings.encoding,
            limits: self.options.limits,
        }
    }

    /// The record-level checks the dataset's settings ask for, when checks are on.
    pub(super) fn checks(&self) -> Result<Option<Checks>, LoadError> {
        if !self.options.checks {
            return Ok(None);
        }
        record_checks(self.settings, self.current).map(Some)
    }

    /// `Some(true)` when every loaded record passed the dataset's JSON Schema.
    pub(super) fn validated(&self) -> Option<bool> {
        (self.options.checks && self.settings.json_schema.is_some()).then_some(true)
    }

    /// What the file's schema does to the dataset's; a refused file is rejected.
    pub(super) fn decide(&self, staged: Staged, bytes: u64) -> Result<Decided, LoadError> {
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

    pub(super) async fn record_schema(&self, decision: &Decision) -> Result<(), LoadError> {
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
    inference: Option<&Report>,
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
    let observed = report.schema();
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

//! The first read of a file: parse, canonicalise, check, hash, key and infer every
//! record, and COPY it: into staging (with its payload only when the file cannot be
//! read again, see [`super::payloads`]), or into a new dataset table (see
//! [`super::fill`]).

use std::io::Read;

use tokio_postgres::Transaction;

use super::copy_in::{copy_in, Produce, Stop};
use super::LoadError;
use crate::contract::Checks;
use crate::copy::{Constant, CopyEncoder};
use crate::format::{self, Certainty, Detected, Format, Raw, ReadError, ReadSettings, Records};
use crate::hash::{record_hash, RecordsDigest};
use crate::identity::KeySpec;
use crate::infer::{Background, Inferrer, Observe};
use crate::jsonb_order::JsonbOrder;
use crate::policy::{OnError, Tally};
use crate::rejects::Rejects;
use crate::repeats::Repeats;
use crate::store::QuotedTable;

/// What the parser staged.
pub(super) struct Staged {
    /// Records staged as good (not rejected).
    pub records: i64,
    /// The records refused: all counted, the first few kept to be written.
    pub rejects: Rejects,
    /// The lines of the file.
    pub lines: u64,
    /// `false` when no key came twice, for certain.
    pub keys_may_repeat: bool,
    /// The good records' keys and hashes, in order.
    pub digest: [u8; 32],
    pub detected: Detected,
    pub inferrer: Option<Inferrer>,
}

impl Staged {
    /// What was refused of the file, for its error policy.
    pub fn tally(&self) -> Tally {
        Tally {
            records: u64::try_from(self.records).unwrap_or(0) + self.rejects.count,
            rejected_records: self.rejects.count,
            lines: self.lines,
            rejected_lines: self.rejects.lines,
        }
    }
}

/// Where the first read's rows go.
pub(super) enum Target {
    /// `pg_temp.bronze_staging`.
    Staging(Payloads),
    /// The new table `table`, as the first version of each record: key, hash, line
    /// and payload, then `constant` (version, lineage, load, schema version).
    Table {
        table: QuotedTable,
        constant: Constant,
    },
}

impl Target {
    /// The fields of each row: those its COPY names.
    fn fields(&self) -> i16 {
        match self {
            Target::Staging(Payloads::Staged) => 5,
            Target::Staging(Payloads::Reread) => 4,
            Target::Table { constant, .. } => 4 + constant.count(),
        }
    }
}

/// What a load stages of each record, besides its key, hash, line and ordinal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Payloads {
    /// The payload as jsonb: the server parses it while the client parses on.
    Staged,
    /// Nothing: the second read brings the payloads of the new versions.
    Reread,
}

/// How the first read treats each record.
pub(super) struct Rules {
    pub read: ReadSettings,
    pub keys: KeySpec,
    pub checks: Option<Checks>,
    pub on_error: OnError,
}

/// Streams the records into `target`.
pub(super) async fn stage(
    tx: &Transaction<'_>,
    source: Box<dyn Read + Send>,
    name: String,
    rules: Rules,
    target: Target,
) -> Result<Staged, LoadError> {
    let sql = match &target {
        Target::Staging(Payloads::Staged) => "COPY pg_temp.bronze_staging (record_key, \
            record_hash, source_line, ordinal, payload) FROM STDIN (FORMAT binary)"
            .to_owned(),
        Target::Staging(Payloads::Reread) => "COPY pg_temp.bronze_staging (record_key, \
            record_hash, source_line, ordinal) FROM STDIN (FORMAT binary)"
            .to_owned(),
        // FREEZE: the table is new in this subtransaction, so its rows can be written
        // visible to all, and the next load's join with them neither sets their hint
        // bits nor dirties their pages.
        Target::Table { table, .. } => format!(
            "COPY {table} (record_key, record_hash, source_line, payload, {}) \
             FROM STDIN (FORMAT binary, FREEZE)",
            super::fill::CONSTANT_COLUMNS
        ),
    };
    copy_in(tx, &sql, move |out| {
        encode(source, &name, rules, target, out)
    })
    .await
}

/// A file with more bad records than this, and more bad than good, is not a data file
/// with defects but the wrong file (binary, another format): it is rejected whole.
const MAX_REJECTS: u64 = 1000;

/// The blocking half: parse, canonicalise, check, hash, key and encode rows into COPY
/// chunks, with inference beside it on a second thread. Bad records are counted and
/// the first few kept, to be written after the COPY.
fn encode(
    source: Box<dyn Read + Send>,
    name: &str,
    rules: Rules,
    target: Target,
    out: &Produce,
) -> Result<Staged, Stop> {
    let (mut records, detected) = format::open(source, name, &rules.read)?;
    if detected.certainty == Certainty::Unsure && rules.on_error != OnError::Continue {
        return Err(LoadError::Rejected {
            line: None,
            reason: format!(
                "cannot tell the file's encoding: it reads as {}, but the detector is \
                 unsure; pin it with `bronze datasets set … --encoding NAME`",
                detected.encoding.name()
            ),
        }
        .into());
    }
    let inferrer = rules
        .checks
        .as_ref()
        .map(|_| Inferrer::for_records(&records));
    std::thread::scope(|scope| {
        let mut inference = inferrer.map(|i| Background::spawn(scope, i));
        let stream = Stream {
            keys: rules.keys,
            checks: rules.checks,
            on_error: rules.on_error,
            target,
            rejects: Rejects::new(rules.read.limits.stored_rejects),
            out,
        };
        let counts = stream.run(&mut records, &detected, inference.as_mut())?;
        let inferrer = inference
            .map(Background::finish)
            .transpose()
            .map_err(|e| LoadError::Transient(e.to_string()))?;
        Ok(Staged {
            records: counts.good,
            rejects: counts.rejects,
            lines: records.lines(),
            keys_may_repeat: counts.keys_may_repeat,
            digest: counts.digest,
            detected,
            inferrer,
        })
    })
}

/// What `encode` streams with.
struct Stream<'a> {
    keys: KeySpec,
    checks: Option<Checks>,
    on_error: OnError,
    target: Target,
    rejects: Rejects,
    out: &'a Produce,
}

/// Records staged as good, and those refused.
struct Counts {
    good: i64,
    rejects: Rejects,
    keys_may_repeat: bool,
    digest: [u8; 32],
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
    ) -> Result<Counts, Stop> {
        if let Some(checks) = &mut self.checks {
            checks.set_delimited(matches!(detected.format, Format::Csv | Format::Tsv));
        }
        let mut encoder = CopyEncoder::default();
        let mut json = Vec::with_capacity(4096);
        let mut key = Vec::with_capacity(128);
        let mut wire = JsonbOrder::default();
        let mut repeats = Repeats::default();
        let mut digest = RecordsDigest::default();
        if let Some(header) = records.header() {
            self.keys.bind(header);
        }
        let (mut good, mut unreadable) = (0i64, 0u64);
        // Every record the reader returns, good or bad, takes the next ordinal: its
        // place in the file, counted the same way by the second read.
        let mut ordinal = 0i64;
        loop {
            ordinal += 1;
            let line = match records.next_into(&mut json) {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(ReadError::Record {
                    line,
                    lines,
                    reason,
                    raw,
                }) => {
                    unreadable += 1;
                    let seen = u64::try_from(good).unwrap_or(0) + self.rejects.count + 1;
                    if unreadable > MAX_REJECTS && unreadable > seen - unreadable {
                        let reason = format!(
                            "{unreadable} of the first {seen} records are unreadable ({reason})"
                        );
                        return Err(ReadError::Malformed { line, reason }.into());
                    }
                    if let Some(inference) = inference.as_deref_mut() {
                        inference.rejected(line);
                    }
                    self.reject(line, lines, &reason, &raw, good)?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let checked = self.checks.as_mut().map_or(Ok(()), |c| c.check(&json));
            let hash = record_hash(&json);
            let spans = records.value_spans();
            let keyed = checked.and_then(|()| self.keys.record_key(&json, &hash, spans, &mut key));
            if let Err(reason) = keyed {
                let lines = records.lines().saturating_sub(line) + 1;
                self.reject(line, lines, &reason, &Raw::of(&json), good)?;
                continue;
            }
            if let Some(inference) = inference.as_deref_mut() {
                inference.record(records, line, &json);
            }
            repeats.note(&key);
            digest.add(&key, &hash);
            good += 1;
            encoder.row(self.target.fields());
            encoder.text(&key);
            encoder.bytea(&hash);
            encoder.int8(i64::try_from(line).unwrap_or(i64::MAX));
            match &self.target {
                Target::Staging(payloads) => {
                    encoder.int8(ordinal);
                    if *payloads == Payloads::Staged {
                        encoder.jsonb(records.jsonb_text(&json, &mut wire));
                    }
                }
                Target::Table { constant, .. } => {
                    encoder.jsonb(records.jsonb_text(&json, &mut wire));
                    encoder.constant(constant);
                }
            }
            if let Some(chunk) = encoder.take_full() {
                self.out.send(chunk)?;
            }
        }
        self.out.send(encoder.finish())?;
        Ok(Counts {
            good,
            rejects: self.rejects,
            keys_may_repeat: repeats.maybe(),
            digest: digest.finish(),
        })
    }

    /// Counts a refused record; stops the read when the error policy already skips
    /// the file, whatever follows.
    fn reject(
        &mut self,
        line: u64,
        lines: u64,
        reason: &str,
        raw: &Raw,
        good: i64,
    ) -> Result<(), Stop> {
        self.rejects.add(line, lines, reason, Some(raw));
        let tally = Tally {
            records: u64::try_from(good).unwrap_or(0) + self.rejects.count,
            rejected_records: self.rejects.count,
            lines,
            rejected_lines: self.rejects.lines,
        };
        if self.on_error.skip_early(&tally) {
            return Err(LoadError::Rejected {
                line: None,
                reason: skipped(&self.on_error, &tally, &self.rejects),
            }
            .into());
        }
        Ok(())
    }
}

/// Why a file is skipped by its error policy, with its first bad record.
pub(super) fn skipped(on_error: &OnError, tally: &Tally, rejects: &Rejects) -> String {
    let verdict = on_error.verdict(tally).unwrap_or_default();
    match rejects.first() {
        Some(first) => format!("{verdict}; the first: {first}"),
        None => verdict,
    }
}

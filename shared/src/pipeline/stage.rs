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
use crate::format::{self, Detected, Format, ReadError, Records};
use crate::hash::{record_hash, RecordsDigest};
use crate::identity::KeySpec;
use crate::infer::{Background, Inferrer, Observe};
use crate::jsonb_order::JsonbOrder;
use crate::repeats::Repeats;

/// What the parser staged.
pub(super) struct Staged {
    /// Records staged as good (not rejected).
    pub records: i64,
    pub rejects: i64,
    /// `false` when no key came twice, for certain.
    pub keys_may_repeat: bool,
    /// The good records' keys and hashes, in order.
    pub digest: [u8; 32],
    pub detected: Detected,
    pub inferrer: Option<Inferrer>,
    /// The rejected records of a read into a dataset table (none into staging).
    pub held: Held,
}

/// Where the first read's rows go.
pub(super) enum Target {
    /// `pg_temp.bronze_staging`.
    Staging(Payloads),
    /// The new table `table`, as the first version of each record: key, hash, line
    /// and payload, then `constant` (version, lineage, load, schema version).
    /// Rejected records have no place there and are held, see [`Held`].
    Table { table: String, constant: Constant },
}

impl Target {
    /// The fields of each row: those its COPY names.
    fn fields(&self) -> i16 {
        match self {
            Target::Staging(Payloads::Staged) => 7,
            Target::Staging(Payloads::Reread) => 6,
            Target::Table { constant, .. } => 4 + constant.count(),
        }
    }
}

/// Rejected records of a read into a dataset table, held in memory to be written
/// after its COPY. A few bad records are common in a first file and cost nothing
/// more; past [`Held::BOUND`] the read stops and the file is read again into staging,
/// where rejects travel the same stream as the records, so memory stays bounded.
#[derive(Debug, Default)]
pub(super) struct Held {
    pub lines: Vec<i64>,
    pub reasons: Vec<String>,
    pub raws: Vec<String>,
    bytes: usize,
}

impl Held {
    /// Bytes held at most: reasons, raw text, and what each entry costs besides.
    const BOUND: usize = 4 << 20;
    const ENTRY: usize = 104;

    /// More were rejected than are held: the read stopped there, and what it staged
    /// is not the file.
    pub fn overflowed(&self) -> bool {
        self.bytes > Self::BOUND
    }

    fn hold(&mut self, line: u64, reason: &str, raw: &str) {
        self.bytes += reason.len() + raw.len() + Self::ENTRY;
        if self.overflowed() {
            return;
        }
        self.lines.push(i64::try_from(line).unwrap_or(i64::MAX));
        self.reasons.push(reason.to_owned());
        self.raws.push(raw.to_owned());
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

/// Streams the records into `target`.
pub(super) async fn stage(
    tx: &Transaction<'_>,
    source: Box<dyn Read + Send>,
    name: String,
    pinned: Option<Format>,
    keys: KeySpec,
    checks: Option<Checks>,
    target: Target,
) -> Result<Staged, LoadError> {
    let sql = match &target {
        Target::Staging(Payloads::Staged) => "COPY pg_temp.bronze_staging (record_key, \
            record_hash, source_line, ordinal, reject, raw, payload) FROM STDIN (FORMAT binary)"
            .to_owned(),
        Target::Staging(Payloads::Reread) => "COPY pg_temp.bronze_staging (record_key, \
            record_hash, source_line, ordinal, reject, raw) FROM STDIN (FORMAT binary)"
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
        encode(source, &name, pinned, keys, checks, target, out)
    })
    .await
}

/// A file with more bad records than this, and more bad than good, is not a data file
/// with defects but the wrong file (binary, another format): it is rejected whole.
const MAX_REJECTS: i64 = 1000;

/// The blocking half: parse, canonicalise, check, hash, key and encode rows into COPY
/// chunks, with inference beside it on a second thread. Bad records become staging
/// rows with a reason, so they travel the same stream, or are held (into a table).
fn encode(
    source: Box<dyn Read + Send>,
    name: &str,
    pinned: Option<Format>,
    keys: KeySpec,
    checks: Option<Checks>,
    target: Target,
    out: &Produce,
) -> Result<Staged, Stop> {
    let (mut records, detected) = format::open(source, name, pinned)?;
    let inferrer = checks.as_ref().map(|_| records.inferrer());
    std::thread::scope(|scope| {
        let mut inference = inferrer.map(|i| Background::spawn(scope, i));
        let stream = Stream {
            keys,
            checks,
            target,
            held: Held::default(),
            out,
        };
        let counts = stream.run(&mut records, &detected, inference.as_mut())?;
        let inferrer = inference
            .map(Background::finish)
            .transpose()
            .map_err(|e| LoadError::Transient(e.to_string()))?;
        Ok(Staged {
            records: counts.good,
            rejects: counts.bad,
            keys_may_repeat: counts.keys_may_repeat,
            digest: counts.digest,
            detected,
            inferrer,
            held: counts.held,
        })
    })
}

/// What `encode` streams with.
struct Stream<'a> {
    keys: KeySpec,
    checks: Option<Checks>,
    target: Target,
    held: Held,
    out: &'a Produce,
}

/// Records staged as good and as rejects.
struct Counts {
    good: i64,
    bad: i64,
    keys_may_repeat: bool,
    digest: [u8; 32],
    held: Held,
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
        let (mut good, mut bad, mut unreadable) = (0i64, 0i64, 0i64);
        // Every record the reader returns, good or bad, takes the next ordinal: its
        // place in the file, counted the same way by the second read.
        let mut ordinal = 0i64;
        while !self.held.overflowed() {
            ordinal += 1;
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
                        return Err(ReadError::Malformed { line, reason }.into());
                    }
                    if let Some(inference) = inference.as_deref_mut() {
                        inference.rejected(line);
                    }
                    self.reject(&mut encoder, line, ordinal, &reason, &raw);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let checked = self.checks.as_mut().map_or(Ok(()), |c| c.check(&json));
            let hash = record_hash(&json);
            let spans = records.value_spans();
            let keyed = checked.and_then(|()| self.keys.record_key(&json, &hash, spans, &mut key));
            if let Err(reason) = keyed {
                bad += 1;
                let raw = String::from_utf8_lossy(&json);
                self.reject(&mut encoder, line, ordinal, &reason, &raw);
                continue;
            }
            if let Some(inference) = inference.as_deref_mut() {
                records.observe(line, &json, inference);
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
                    encoder.null();
                    encoder.null();
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
            bad,
            keys_may_repeat: repeats.maybe(),
            digest: digest.finish(),
            held: self.held,
        })
    }

    fn reject(
        &mut self,
        encoder: &mut CopyEncoder,
        line: u64,
        ordinal: i64,
        reason: &str,
        raw: &str,
    ) {
        let Target::Staging(payloads) = self.target else {
            self.held.hold(line, reason, raw);
            return;
        };
        encoder.row(self.target.fields());
        encoder.null();
        encoder.null();
        encoder.int8(i64::try_from(line).unwrap_or(i64::MAX));
        encoder.int8(ordinal);
        encoder.text(reason.as_bytes());
        encoder.text(raw.as_bytes());
        if payloads == Payloads::Staged {
            encoder.null();
        }
    }
}

//! The first read of a file: parse, canonicalise, check, hash, key and infer every
//! record, and stage it — with its payload only when the dataset's table is new (see
//! [`super::payloads`] for the others).

use std::io::Read;

use tokio_postgres::Transaction;

use super::copy_in::{copy_in, Produce, Stop};
use super::LoadError;
use crate::contract::Checks;
use crate::copy::CopyEncoder;
use crate::format::{self, Detected, Format, ReadError, Records};
use crate::hash::record_hash;
use crate::identity::KeySpec;
use crate::infer::{Background, Inferrer, Observe};
use crate::repeats::Repeats;

/// What the parser staged.
pub(super) struct Staged {
    /// Records staged as good (not rejected).
    pub records: i64,
    pub rejects: i64,
    /// `false` when no key came twice, for certain.
    pub keys_may_repeat: bool,
    pub detected: Detected,
    pub inferrer: Option<Inferrer>,
}

/// What a load stages of each record, besides its key, hash, line and ordinal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Payloads {
    /// The payload as jsonb: the server parses it while the client parses on.
    Staged,
    /// Nothing: the second read brings the payloads of the new versions.
    Reread,
}

/// Streams the records into `pg_temp.bronze_staging`.
pub(super) async fn stage(
    tx: &Transaction<'_>,
    source: Box<dyn Read + Send>,
    name: String,
    pinned: Option<Format>,
    keys: KeySpec,
    checks: Option<Checks>,
    payloads: Payloads,
) -> Result<Staged, LoadError> {
    let columns = match payloads {
        Payloads::Staged => "record_key, record_hash, source_line, ordinal, reject, raw, payload",
        Payloads::Reread => "record_key, record_hash, source_line, ordinal, reject, raw",
    };
    let sql = format!("COPY pg_temp.bronze_staging ({columns}) FROM STDIN (FORMAT binary)");
    copy_in(tx, &sql, move |out| {
        encode(source, &name, pinned, keys, checks, payloads, out)
    })
    .await
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
    payloads: Payloads,
    out: &Produce,
) -> Result<Staged, Stop> {
    let (mut records, detected) = format::open(source, name, pinned)?;
    let inferrer = checks.as_ref().map(|_| records.inferrer());
    std::thread::scope(|scope| {
        let mut inference = inferrer.map(|i| Background::spawn(scope, i));
        let stream = Stream {
            keys,
            checks,
            payloads,
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
            detected,
            inferrer,
        })
    })
}

/// What `encode` streams with.
struct Stream<'a> {
    keys: KeySpec,
    checks: Option<Checks>,
    payloads: Payloads,
    out: &'a Produce,
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
    ) -> Result<Counts, Stop> {
        if let Some(checks) = &mut self.checks {
            checks.set_delimited(matches!(detected.format, Format::Csv | Format::Tsv));
        }
        let mut encoder = CopyEncoder::default();
        let mut json = Vec::with_capacity(4096);
        let mut key = Vec::with_capacity(128);
        let mut repeats = Repeats::default();
        if let Some(header) = records.header() {
            self.keys.bind(header);
        }
        let (mut good, mut bad, mut unreadable) = (0i64, 0i64, 0i64);
        // Every record the reader returns, good or bad, takes the next ordinal: its
        // place in the file, counted the same way by the second read.
        let mut ordinal = 0i64;
        loop {
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
            good += 1;
            self.row(&mut encoder);
            encoder.text(&key);
            encoder.bytea(&hash);
            encoder.int8(i64::try_from(line).unwrap_or(i64::MAX));
            encoder.int8(ordinal);
            encoder.null();
            encoder.null();
            if self.payloads == Payloads::Staged {
                encoder.jsonb(&json);
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
        })
    }

    fn row(&self, encoder: &mut CopyEncoder) {
        encoder.row(match self.payloads {
            Payloads::Staged => 7,
            Payloads::Reread => 6,
        });
    }

    fn reject(&self, encoder: &mut CopyEncoder, line: u64, ordinal: i64, reason: &str, raw: &str) {
        self.row(encoder);
        encoder.null();
        encoder.null();
        encoder.int8(i64::try_from(line).unwrap_or(i64::MAX));
        encoder.int8(ordinal);
        encoder.text(reason.as_bytes());
        encoder.text(raw.as_bytes());
        if self.payloads == Payloads::Staged {
            encoder.null();
        }
    }
}

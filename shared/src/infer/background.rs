//! Inference on a thread of its own, beside the thread that parses, hashes and encodes:
//! it is the larger half of a load's client work, and the two halves share nothing
//! but the records. Records travel in batches of reused buffers, so the handoff costs
//! a copy of the record's bytes and no allocation; a bounded queue keeps memory flat
//! when inference falls behind.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use super::{Inferrer, Observe};

/// Bytes of records per batch: large enough that a batch costs nothing per record.
const BATCH_BYTES: usize = 128 * 1024;
/// Records per batch, for runs of rejects, which bring no bytes.
const BATCH_ENTRIES: usize = 8 * 1024;
/// Full batches waiting for the inference thread.
const QUEUED: usize = 2;

/// Records on their way to inference, in the order they were read.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// Where each delimited field ends, from the start of its record.
    field_ends: Vec<usize>,
    entries: Vec<Entry>,
}

enum Entry {
    /// A delimited record of `fields` fields.
    Fields {
        line: u64,
        fields: usize,
    },
    /// A JSON record of `len` bytes of canonical JSON.
    Json {
        line: u64,
        len: usize,
    },
    Rejected {
        line: u64,
    },
}

impl Batch {
    fn replay(&self, inferrer: &mut Inferrer) {
        let (mut at, mut field) = (0, 0);
        for entry in &self.entries {
            match *entry {
                Entry::Fields { line, fields } => {
                    let ends = &self.field_ends[field..field + fields];
                    let len = ends.last().copied().unwrap_or(0);
                    inferrer.delimited(line, &self.bytes[at..at + len], ends);
                    at += len;
                    field += fields;
                }
                Entry::Json { line, len } => {
                    inferrer.json(line, &self.bytes[at..at + len]);
                    at += len;
                }
                Entry::Rejected { line } => inferrer.rejected(line),
            }
        }
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.field_ends.clear();
        self.entries.clear();
    }
}

/// The sending end: observes records like an [`Inferrer`] and hands them over.
pub struct Background<'scope> {
    batch: Batch,
    full: SyncSender<Batch>,
    empty: Receiver<Batch>,
    worker: ScopedJoinHandle<'scope, Inferrer>,
}

/// The inference thread stopped by panicking.
#[derive(Debug, thiserror::Error)]
#[error("the inference thread failed")]
pub struct Failed;

impl<'scope> Background<'scope> {
    /// Starts `inferrer` on a thread of `scope`.
    pub fn spawn<'env>(scope: &'scope Scope<'scope, 'env>, mut inferrer: Inferrer) -> Self {
        let (full, batches) = sync_channel::<Batch>(QUEUED);
        let (recycle, empty) = sync_channel::<Batch>(QUEUED + 1);
        let worker = scope.spawn(move || {
            for mut batch in batches {
                batch.replay(&mut inferrer);
                batch.clear();
                // The sender may be gone already: then the batch is simply dropped.
                let _ = recycle.try_send(batch);
            }
            inferrer
        });
        Self {
            batch: Batch::default(),
            full,
            empty,
            worker,
        }
    }

    /// Sends the last records and returns the inference of them all.
    pub fn finish(mut self) -> Result<Inferrer, Failed> {
        self.send();
        drop(self.full);
        self.worker.join().map_err(|_| Failed)
    }

    fn entry_added(&mut self) {
        if self.batch.bytes.len() >= BATCH_BYTES || self.batch.entries.len() >= BATCH_ENTRIES {
            self.send();
        }
    }

    fn send(&mut self) {
        if self.batch.entries.is_empty() {
            return;
        }
        let next = self.empty.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        // Fails only when the thread is gone, and `finish` reports that.
        let _ = self.full.send(batch);
    }
}

impl Observe for Background<'_> {
    fn delimited(&mut self, line: u64, bytes: &[u8], ends: &[usize]) {
        self.batch.bytes.extend_from_slice(bytes);
        self.batch.field_ends.extend_from_slice(ends);
        let fields = ends.len();
        self.batch.entries.push(Entry::Fields { line, fields });
        self.entry_added();
    }

    fn json(&mut self, line: u64, json: &[u8]) {
        self.batch.bytes.extend_from_slice(json);
        let len = json.len();
        self.batch.entries.push(Entry::Json { line, len });
        self.entry_added();
    }

    fn rejected(&mut self, line: u64) {
        self.batch.entries.push(Entry::Rejected { line });
        self.entry_added();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Detected, Encoding, Format};

    fn detected(format: Format) -> Detected {
        Detected {
            format,
            gzip: false,
            encoding: Encoding::UTF_8,
            certainty: crate::format::Certainty::Certain,
            dialect: None,
        }
    }

    /// Many batches' worth of records, with empty fields, rejects between them and JSON
    /// records: the thread's report equals the report of the same calls made in place.
    #[test]
    fn inference_in_the_background_sees_what_it_would_see_in_place() {
        let names = ["id".to_owned(), "when".to_owned(), "note".to_owned()];
        let mut direct = Inferrer::with_columns(&names);
        let report = std::thread::scope(|scope| {
            let mut background = Background::spawn(scope, Inferrer::with_columns(&names));
            for i in 0..40_000u64 {
                let id = i.to_string();
                let when = format!("2026-{:02}-{:02}", i % 12 + 1, i % 28 + 1);
                let note = if i % 7 == 0 { "" } else { "n/a text" };
                let bytes = format!("{id}{when}{note}");
                let ends = [id.len(), id.len() + when.len(), bytes.len()];
                if i % 1000 == 999 {
                    direct.rejected(i + 2);
                    background.rejected(i + 2);
                    continue;
                }
                direct.delimited(i + 2, bytes.as_bytes(), &ends);
                background.delimited(i + 2, bytes.as_bytes(), &ends);
            }
            background.finish().unwrap().report(&detected(Format::Csv))
        });
        assert_eq!(report, direct.report(&detected(Format::Csv)));
        assert_eq!(report.records, 39_960);
        assert_eq!(report.first_rejected_lines[0], 1001);

        let mut direct = Inferrer::default();
        let report = std::thread::scope(|scope| {
            let mut background = Background::spawn(scope, Inferrer::default());
            for i in 0..20_000u64 {
                let json = format!(r#"{{"a":{i},"b":"x{}","c":{{"d":true}}}}"#, i % 13);
                direct.json(i + 1, json.as_bytes());
                background.json(i + 1, json.as_bytes());
            }
            background
                .finish()
                .unwrap()
                .report(&detected(Format::Ndjson))
        });
        assert_eq!(report, direct.report(&detected(Format::Ndjson)));
        assert_eq!(report.columns[0].max.as_deref(), Some("19999"));
    }
}

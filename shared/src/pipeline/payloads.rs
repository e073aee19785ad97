//! The second read of a file loaded into a table that has rows: the payloads of the
//! records the merge found new, and only those.
//!
//! Most records of a file loaded again are unchanged, and staging their payloads was
//! most of the server's work (copying them in, then scanning past them in the join
//! with the current rows). So the first read stages keys and hashes, the merge plans
//! the new versions, and this reads the file again for their payloads. Each payload
//! travels with its hash: the insert joins on both, so a file that changed between the
//! two reads inserts fewer rows than planned, and the load fails (and is retried)
//! instead of storing a payload under another record's hash.

use std::io::Read;

use futures_util::TryStreamExt;
use tokio_postgres::Transaction;

use super::copy_in::{copy_in, Produce, Stop};
use super::LoadError;
use crate::copy::CopyEncoder;
use crate::format::{self, ReadError, ReadSettings};
use crate::hash::record_hash;
use crate::jsonb_order::JsonbOrder;

/// The records (by ordinal, their place in the file) whose payloads are wanted.
#[derive(Default)]
struct Wanted {
    bits: Vec<u64>,
    count: u64,
}

impl Wanted {
    fn insert(&mut self, ordinal: u64) {
        let word = usize::try_from(ordinal / 64).unwrap_or(usize::MAX);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let bit = 1 << (ordinal % 64);
        self.count += u64::from(self.bits[word] & bit == 0);
        self.bits[word] |= bit;
    }

    fn contains(&self, ordinal: u64) -> bool {
        let word = usize::try_from(ordinal / 64).unwrap_or(usize::MAX);
        self.bits
            .get(word)
            .is_some_and(|w| w & (1 << (ordinal % 64)) != 0)
    }
}

/// Reads the ordinals of `pg_temp.bronze_new` (one bit per record of the file, so a
/// million-record file costs 125 KB), then `source` again, and stages the payloads of
/// those records in `pg_temp.bronze_payloads`.
pub(super) async fn stage(
    tx: &Transaction<'_>,
    source: Box<dyn Read + Send>,
    name: String,
    read: ReadSettings,
) -> Result<(), LoadError> {
    let mut wanted = Wanted::default();
    let rows = tx
        .query_raw(
            "SELECT ordinal FROM pg_temp.bronze_new",
            std::iter::empty::<i64>(),
        )
        .await?;
    futures_util::pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        wanted.insert(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0));
    }
    tx.batch_execute(
        "CREATE TEMP TABLE bronze_payloads (ordinal bigint, record_hash bytea, payload text)
         ON COMMIT DROP",
    )
    .await?;
    copy_in(
        tx,
        "COPY pg_temp.bronze_payloads (ordinal, record_hash, payload) FROM STDIN (FORMAT binary)",
        move |out| encode(source, &name, &read, &wanted, out),
    )
    .await
}

/// Ordinals count every record the reader returns, good or bad, exactly as the first
/// read counted them.
fn encode(
    source: Box<dyn Read + Send>,
    name: &str,
    read: &ReadSettings,
    wanted: &Wanted,
    out: &Produce,
) -> Result<(), Stop> {
    let reread = |reason: String| {
        LoadError::Transient(format!("{name} read differently the second time: {reason}"))
    };
    let (mut records, _) = format::open(source, name, read).map_err(|e| match e {
        ReadError::Source(_) => Stop::from(e),
        other => reread(other.to_string()).into(),
    })?;
    let mut encoder = CopyEncoder::default();
    let mut json = Vec::with_capacity(4096);
    let mut wire = JsonbOrder::default();
    let (mut ordinal, mut staged) = (0u64, 0u64);
    while staged < wanted.count {
        ordinal += 1;
        match records.next_into(&mut json) {
            Ok(Some(_)) if wanted.contains(ordinal) => {
                encoder.row(3);
                encoder.int8(i64::try_from(ordinal).unwrap_or(i64::MAX));
                encoder.bytea(&record_hash(&json));
                encoder.text(records.jsonb_text(&json, &mut wire));
                staged += 1;
                if let Some(chunk) = encoder.take_full() {
                    out.send(chunk)?;
                }
            }
            Ok(Some(_)) | Err(ReadError::Record { .. }) => {}
            Ok(None) => return Err(reread(format!("it ended at record {ordinal}")).into()),
            Err(e @ ReadError::Source(_)) => return Err(e.into()),
            Err(e) => return Err(reread(e.to_string()).into()),
        }
    }
    out.send(encoder.finish())?;
    Ok(())
}

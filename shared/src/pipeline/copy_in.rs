//! Binary `COPY … FROM STDIN` fed by a producer on a blocking thread: it parses and
//! encodes while the database side sends, through a small bounded channel, so memory
//! stays flat in the file size.

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_postgres::Transaction;

use super::LoadError;
use crate::format::ReadError;

/// Why a producer stopped early.
pub(super) enum Stop {
    Fault(LoadError),
    /// The database side stopped listening; its own error says why.
    ConsumerGone,
}

impl From<LoadError> for Stop {
    fn from(e: LoadError) -> Self {
        Stop::Fault(e)
    }
}

impl From<ReadError> for Stop {
    fn from(e: ReadError) -> Self {
        Stop::Fault(e.into())
    }
}

/// The producer's end of the stream.
pub(super) struct Produce {
    chunks: mpsc::Sender<Bytes>,
}

impl Produce {
    pub(super) fn send(&self, chunk: Bytes) -> Result<(), Stop> {
        self.chunks
            .blocking_send(chunk)
            .map_err(|_| Stop::ConsumerGone)
    }
}

/// Runs `sql` (a binary COPY from STDIN) with the rows `produce` encodes. A fault of
/// the producer (the file's) is reported before the database's, which is often only
/// its consequence.
pub(super) async fn copy_in<T: Send + 'static>(
    tx: &Transaction<'_>,
    sql: &str,
    produce: impl FnOnce(&Produce) -> Result<T, Stop> + Send + 'static,
) -> Result<T, LoadError> {
    let (chunks, mut received) = mpsc::channel::<Bytes>(4);
    let producer = tokio::task::spawn_blocking(move || produce(&Produce { chunks }));
    let sink = tx.copy_in(sql).await?;
    futures_util::pin_mut!(sink);
    let mut copy_failed = None;
    let mut first = true;
    while let Some(chunk) = received.recv().await {
        if let Err(e) = sink.send(chunk).await {
            copy_failed = Some(e);
            break;
        }
        if std::mem::take(&mut first) {
            crate::fault::point("copy").await;
        }
    }
    drop(received);
    let produced = producer
        .await
        .map_err(|e| LoadError::Transient(format!("parser thread failed: {e}")))?;
    match (produced, copy_failed) {
        (Err(Stop::Fault(e)), _) => Err(e),
        (Ok(_) | Err(Stop::ConsumerGone), Some(e)) => Err(e.into()),
        (Err(Stop::ConsumerGone), None) => {
            Err(LoadError::Transient("COPY stream ended early".into()))
        }
        (Ok(produced), None) => {
            sink.finish().await?;
            Ok(produced)
        }
    }
}

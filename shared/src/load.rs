//! The load handler: SQS batches of load tasks in, rows in PostgreSQL out, with a
//! partial batch response listing only what is worth retrying.

use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::get_object::GetObjectError;
use futures_util::future::BoxFuture;
use tokio_util::io::SyncIoBridge;
use tracing::{error, info, warn, Instrument};

use crate::aws::describe;
use crate::db::Db;
use crate::format::SourceRead;
use crate::keys::Destination;
use crate::limits::Limits;
use crate::metrics::{Metrics, ObjectFigures, Verdict};
use crate::pipeline::{self, LoadError, Loaded, Options, Reopen};
use crate::store::{self, Attempt, Claim, Lineage, Status};
use crate::task::LoadTask;

/// What load needs, built once per process.
pub struct Loader {
    /// Reads the objects, by version or ETag.
    pub s3: aws_sdk_s3::Client,
    /// The ledger and the bronze tables.
    pub db: Db,
    /// What one file may ask of this process (see [`Limits::from_env`]).
    pub limits: Limits,
    /// Where a task that cannot be read is sent at once; without one it goes there
    /// by its queue's redrive, after its receives are spent.
    pub dead_letters: Option<DeadLetters>,
    /// Where each object's figures go (EMF in Lambda, `/metrics` locally).
    pub metrics: Metrics,
    /// Retries this process could not note in the ledger yet (`Unnoted::default()`).
    pub unnoted: Unnoted,
}

/// Retries a process could not note in the ledger because the database was out of
/// reach when the attempt ended (an outage longer than the attempt): each object's row
/// still says `loading`, which the next delivery would count as an attempt that died.
/// They are written at the process's next connection, before any attempt begins; a
/// process that is gone by then leaves them to [`store::begin_attempt`], which tells a
/// restarted server's cut from a death.
#[derive(Debug, Default)]
pub struct Unnoted(std::sync::Mutex<Vec<RetryNote>>);

/// One retry waiting to be noted.
#[derive(Debug)]
struct RetryNote {
    id: i64,
    attempt: i32,
    reason: String,
}

/// Bounds the notes kept: a batch brings at most ten tasks, so this many is an outage
/// of dozens of batches; the oldest go first (their rows may read as deaths).
const MAX_UNNOTED: usize = 1_000;

impl Unnoted {
    fn keep(&self, note: RetryNote) {
        let mut notes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if notes.len() >= MAX_UNNOTED {
            notes.remove(0);
        }
        notes.push(note);
    }

    fn take(&self) -> Vec<RetryNote> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// The load queue's dead-letter queue (`LOAD_DLQ_URL` in Lambda).
pub struct DeadLetters {
    /// Sends to the queue.
    pub sqs: aws_sdk_sqs::Client,
    /// The dead-letter queue's URL.
    pub url: String,
}

/// Why a message is no load task: it never will be, whatever the retries.
#[derive(Debug, thiserror::Error)]
#[error("unreadable load task: {0}")]
pub struct BadTask(#[source] serde_json::Error);

/// How one task ended, when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The object's rows are in their table.
    Loaded(Loaded),
    /// The file is bad; the reason is recorded, and it is never retried.
    Rejected {
        /// The line that condemned it, when one did.
        line: Option<u64>,
        /// Why, as `bronze.rejects` and the ledger record it.
        reason: String,
    },
    /// The object is not to be loaded (deleted, archived, no valid destination).
    Skipped {
        /// Why, as the ledger records it.
        reason: String,
    },
    /// The object can never be loaded as things are (the function may not read it, or
    /// attempts at it keep dying): marked `failed` for a human, not retried.
    Failed {
        /// Why, as the ledger records it.
        reason: String,
    },
    /// Another delivery of the task already reached a verdict.
    AlreadyDone(Status),
}

/// The `Instant` of a deadline given in milliseconds since the Unix epoch (Lambda's
/// `Context::deadline`). A deadline not in the future when the invocation starts is no
/// real one: Lambda never invokes with no time left, while local emulators send the
/// invoke time or nothing (`cargo lambda watch`); then there is none (`None`).
pub fn deadline_at(epoch_millis: u64) -> Option<Instant> {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(epoch_millis);
    let left = at.duration_since(SystemTime::now()).ok()?;
    Some(Instant::now() + left)
}

impl Loader {
    /// Handles a batch, one message after another on the process's connection.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_until(event, None).await
    }

    /// [`Loader::handle`] within an invocation that ends at `deadline` (Lambda's): each
    /// attempt gets what is left of it, less a margin to give up cleanly, and a
    /// message with no time left is not started but left for its redelivery.
    pub async fn handle_until(
        &self,
        event: SqsEvent,
        deadline: Option<Instant>,
    ) -> SqsBatchResponse {
        self.metrics.invoked("load");
        let mut response = SqsBatchResponse::default();
        for message in event.records {
            let handled = match self.budget(deadline) {
                Some(budget) => self.handle_message(&message, budget).await,
                None => {
                    warn!(message_id = ?message.message_id, "No time left in this invocation; the task waits for its redelivery.");
                    Err(LoadError::Transient(
                        "no time left in the invocation".into(),
                    ))
                }
            };
            if handled.is_err() {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// The time an attempt may take: `BRONZE_MAX_LOAD_SECONDS`, or less when the
    /// invocation ends sooner; `None` when what is left is not worth starting.
    fn budget(&self, deadline: Option<Instant>) -> Option<Duration> {
        let most = Duration::from_secs(self.limits.load_seconds);
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        budget(most, left)
    }

    async fn handle_message(
        &self,
        message: &SqsMessage,
        budget: Duration,
    ) -> Result<Outcome, LoadError> {
        let body = message.body.as_deref().unwrap_or_default();
        match serde_json::from_str::<LoadTask>(body) {
            Ok(task) => self.load_within(&task, budget).await,
            Err(e) => self.dead_letter(message, body, BadTask(e)).await,
        }
    }

    /// Sends a task that can never be read to the dead-letter queue for a human, now,
    /// instead of retrying it until its receives are spent.
    async fn dead_letter(
        &self,
        message: &SqsMessage,
        body: &str,
        bad: BadTask,
    ) -> Result<Outcome, LoadError> {
        let reason = bad.to_string();
        let id = message.message_id.as_deref();
        let Some(dlq) = &self.dead_letters else {
            error!(message_id = id, body, reason, "Unreadable load task; it reaches the dead-letter queue when its receives are spent.");
            return Err(LoadError::Transient(reason));
        };
        let attribute = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(&reason)
            .build()
            .map_err(|e| LoadError::Transient(e.to_string()))?;
        let sent = dlq
            .sqs
            .send_message()
            .queue_url(&dlq.url)
            .message_body(body)
            .message_attributes("error", attribute)
            .send()
            .await;
        match sent {
            Ok(_) => {
                error!(
                    message_id = id,
                    body, reason, "Unreadable load task sent to the dead-letter queue."
                );
                Ok(Outcome::Skipped { reason })
            }
            Err(e) => Err(LoadError::Transient(format!(
                "{reason}; sending it to the dead-letter queue failed: {}",
                describe(&e)
            ))),
        }
    }

    /// Loads the object a task names, exactly once however often the task arrives,
    /// and logs one line about it.
    pub async fn load(&self, task: &LoadTask) -> Result<Outcome, LoadError> {
        let budget = Duration::from_secs(self.limits.load_seconds);
        self.load_within(task, budget).await
    }

    /// [`Loader::load`], giving up after `budget`.
    pub async fn load_within(
        &self,
        task: &LoadTask,
        budget: Duration,
    ) -> Result<Outcome, LoadError> {
        let started = Instant::now();
        // Every line logged for this object carries what names it; the load id is
        // added once the load has one.
        let dest = Destination::from_key(&task.key).ok();
        let span = tracing::info_span!(
            "object",
            object_id = task.object_id,
            bucket = %task.bucket,
            key = %task.key,
            tenant = dest.as_ref().map(|d| d.tenant.as_str()),
            dataset = dest.as_ref().map(|d| d.dataset.as_str()),
            load_id = tracing::field::Empty,
        );
        let attempt = self.load_task(task, budget).instrument(span.clone());
        let result = match tokio::time::timeout(budget, attempt).await {
            Ok(result) => result,
            Err(_) => self.gave_up(task, budget).instrument(span.clone()).await,
        };
        let _entered = span.enter();
        log_outcome(task, &result, started);
        self.count(task, &result, started.elapsed());
        result
    }

    /// The object's figures, to wherever this process sends them.
    fn count(&self, task: &LoadTask, result: &Result<Outcome, LoadError>, took: Duration) {
        let dest = Destination::from_key(&task.key).ok();
        let (verdict, loaded) = match result {
            Ok(Outcome::Loaded(loaded)) => (Some(Verdict::Loaded), Some(loaded)),
            Ok(Outcome::Rejected { .. }) => (Some(Verdict::Rejected), None),
            Ok(Outcome::Skipped { .. }) => (Some(Verdict::Skipped), None),
            Ok(Outcome::Failed { .. }) => (Some(Verdict::Failed), None),
            // A duplicate counted nothing new; a transient fault is retried.
            Ok(Outcome::AlreadyDone(_)) | Err(_) => return,
        };
        self.metrics.object(&ObjectFigures {
            function: "load",
            tenant: dest.as_ref().map(|d| d.tenant.as_str()),
            dataset: dest.as_ref().map(|d| d.dataset.as_str()),
            verdict,
            counts: loaded.map(|l| &l.counts),
            duration: took,
            lag: loaded.and_then(|l| SystemTime::now().duration_since(l.source_ts).ok()),
            quality_score: loaded.and_then(|l| l.quality_score),
        });
    }

    /// An attempt past its budget: its connection may be waiting for an answer that
    /// never comes (a stalled proxy, a half-dead peer), so it is closed, and its server
    /// session, which may not hear the close, is ended from a new connection (the
    /// load's idle timeout would end it too, but not while it waits in a COPY). The
    /// object waits for its retry.
    ///
    /// Three attempts out of time make the object `failed`, with advice, instead of a
    /// task retried into the dead-letter queue unseen.
    async fn gave_up(&self, task: &LoadTask, budget: Duration) -> Result<Outcome, LoadError> {
        if let Some(session) = self.db.discard().await {
            if let Err(e) = self.db.end(session).await {
                warn!(object_id = task.object_id, error = %e, "Could not end the stalled session.");
            }
        }
        let reason = format!(
            "the attempt did not finish within {:.1} s (what was left of the invocation, at \
             most BRONZE_MAX_LOAD_SECONDS={}): the database or S3 stopped answering, or the \
             file needs more time than that; retrying",
            budget.as_secs_f64(),
            self.limits.load_seconds
        );
        let advice = format!(
            "{} attempts ran out of time (the last had {:.1} s): the file is too large for \
             the function, or the database or S3 kept stalling; raise the function's timeout \
             (at most 900 s) and memory, and BRONZE_MAX_LOAD_SECONDS, then reload it",
            store::MAX_DEATHS,
            budget.as_secs_f64()
        );
        let out_of_time = Note::OutOfTime {
            reason: &reason,
            advice: &advice,
        };
        match self.note(task.object_id, out_of_time).await {
            Ok(true) => Ok(Outcome::Failed { reason: advice }),
            Ok(false) => Err(LoadError::Transient(reason)),
            Err(e) => {
                warn!(object_id = task.object_id, error = %e, "Could not note the retry in the ledger.");
                Err(LoadError::Transient(reason))
            }
        }
    }

    /// Notes a transient failure in the ledger (the row back to `pending`, with the
    /// reason), on a new connection when the fault closed the attempt's own: a row left
    /// `loading` would read, at the next delivery, as an attempt that died. When the
    /// database cannot be reached, the note is kept for the next connection.
    async fn note_retry(&self, id: i64, attempt: i32, reason: &str) {
        if let Err(e) = self.note(id, Note::Retry { attempt, reason }).await {
            warn!(object_id = id, error = %e, "Could not note the retry in the ledger; it is kept for the next connection.");
            self.unnoted.keep(RetryNote {
                id,
                attempt,
                reason: reason.to_owned(),
            });
        }
    }

    /// Writes the retries kept while the database was out of reach, on the connection
    /// an attempt is about to begin on: written first, so that the attempt does not
    /// take a kept retry's row for one that died. One that cannot be written fails the
    /// delivery before any attempt begins; it and the rest are kept.
    async fn note_kept(&self, client: &mut tokio_postgres::Client) -> Result<(), LoadError> {
        let mut kept = self.unnoted.take().into_iter();
        while let Some(next) = kept.next() {
            let note = Note::Retry {
                attempt: next.attempt,
                reason: &next.reason,
            };
            if let Err(e) = write_note(client, next.id, note).await {
                self.unnoted.keep(next);
                kept.for_each(|rest| self.unnoted.keep(rest));
                return Err(e);
            }
            info!(
                object_id = next.id,
                "Noted a retry kept while the database was out of reach."
            );
        }
        Ok(())
    }

    /// Ends the server session of a connection that broke under an attempt: a server
    /// that never heard it break (a black-holed path, a stalled proxy) keeps the
    /// session waiting, with the ledger row's lock, until its own timeouts.
    async fn end_broken_session(&self, id: i64) {
        if let Some(session) = self.db.discard().await {
            if let Err(e) = self.db.end(session).await {
                warn!(object_id = id, error = %e, "Could not end the broken connection's session.");
            }
        }
    }

    /// Writes `note` on the object's ledger row (see [`write_note`]) on the process's
    /// connection, reopened when the fault closed it; returns whether the object is now
    /// `failed`.
    async fn note(&self, id: i64, note: Note<'_>) -> Result<bool, LoadError> {
        let mut client = self
            .db
            .client()
            .await
            .map_err(|e| LoadError::Transient(e.to_string()))?;
        write_note(&mut client, id, note).await
    }

    async fn load_task(&self, task: &LoadTask, budget: Duration) -> Result<Outcome, LoadError> {
        let mut client = self
            .db
            .client()
            .await
            .map_err(|e| LoadError::Transient(e.to_string()))?;
        self.note_kept(&mut client).await?;
        let row = match store::begin_attempt(&mut client, task.object_id).await? {
            Attempt::Missing => {
                warn!(
                    object_id = task.object_id,
                    "Load task names no ledger row; dropped."
                );
                return Ok(Outcome::Skipped {
                    reason: "no ledger row".into(),
                });
            }
            Attempt::Busy => return Err(busy()),
            Attempt::Done(status) => return Ok(Outcome::AlreadyDone(status)),
            Attempt::GaveUp(reason) => return Ok(Outcome::Failed { reason }),
            Attempt::Started(row) => row,
        };
        let dest = match Destination::new(
            row.tenant.as_deref().unwrap_or_default(),
            row.dataset.as_deref().unwrap_or_default(),
        ) {
            Ok(dest) => dest,
            Err(e) => {
                let reason = e.to_string();
                store::set_status(
                    &*client,
                    task.object_id,
                    Status::Skipped,
                    None,
                    Some(&reason),
                )
                .await?;
                return Ok(Outcome::Skipped { reason });
            }
        };
        let lineage = Lineage {
            bucket: Some(task.bucket.clone()),
            key: task.key.clone(),
            version_id: task.version_id.clone(),
            etag: task.etag.clone(),
            source_ts: row.last_modified.unwrap_or_else(SystemTime::now),
        };

        let result = self
            .load_claimed(&mut client, task, &dest, &lineage, budget)
            .await;
        match result {
            Err(e) if e.is_transient() => {
                let broken = client.is_closed();
                drop(client);
                if broken {
                    self.end_broken_session(task.object_id).await;
                }
                self.note_retry(task.object_id, row.attempt, &e.to_string())
                    .await;
                Err(e)
            }
            Err(broken) => {
                let reason = format!("{broken}; a human must look, then reload it");
                let id = task.object_id;
                store::set_status(&*client, id, Status::Failed, None, Some(&reason)).await?;
                Ok(Outcome::Failed { reason })
            }
            ok => ok,
        }
    }

    async fn load_claimed(
        &self,
        client: &mut tokio_postgres::Client,
        task: &LoadTask,
        dest: &Destination,
        lineage: &Lineage,
        budget: Duration,
    ) -> Result<Outcome, LoadError> {
        let tx = client.transaction().await?;
        // The server ends the transaction of an attempt past its budget, or one whose
        // client went quiet, even when it never hears the connection close.
        // The statement timeout is a backstop a little past the budget: the attempt's
        // own clock should stop it first, so that it is counted as out of time.
        let budget = budget.as_millis().max(1);
        let statement = budget + 10_000;
        let idle = budget.min(u128::from(MAX_IDLE_SECONDS) * 1000);
        tx.batch_execute(&format!(
            "SET LOCAL statement_timeout = {statement}; \
             SET LOCAL idle_in_transaction_session_timeout = {idle}"
        ))
        .await?;
        match store::claim(&tx, task.object_id).await? {
            Claim::Owned => {}
            Claim::Busy => return Err(busy()),
            Claim::Done(status) => return Ok(Outcome::AlreadyDone(status)),
        }
        let mut object = S3Object {
            s3: self.s3.clone(),
            bucket: task.bucket.clone(),
            key: task.key.clone(),
            version_id: task.version_id.clone(),
            etag: task.etag.clone(),
        };
        let (source, etag) = match object.open().await? {
            Opened::Stream(source, etag) => (source, etag),
            Opened::Gone(reason) => {
                store::set_status(&tx, task.object_id, Status::Skipped, None, Some(&reason))
                    .await?;
                tx.commit().await?;
                return Ok(Outcome::Skipped { reason });
            }
            Opened::Forbidden(reason) => {
                store::set_status(&tx, task.object_id, Status::Failed, None, Some(&reason)).await?;
                tx.commit().await?;
                return Ok(Outcome::Failed { reason });
            }
        };
        crate::fault::point("open").await;
        // Pinned to the ETag these bytes came with, a second read gets them again or fails.
        object.etag = etag.or(object.etag);
        let id = Some(task.object_id);
        let options = Options {
            limits: self.limits,
            ..Options::default()
        };
        // The verdict on a bad file is written in this same transaction, under the
        // ledger row's lock: a second delivery waiting for it finds the verdict and
        // records nothing more.
        tx.batch_execute("SAVEPOINT bronze_load").await?;
        let loaded =
            match pipeline::load_with(&tx, source, Some(&object), dest, lineage, id, options).await
            {
                Ok(loaded) => loaded,
                Err(LoadError::Rejected { line, reason }) => {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT bronze_load")
                        .await?;
                    pipeline::record_rejection(&tx, dest, lineage, id, line, &reason).await?;
                    tx.commit().await?;
                    return Ok(Outcome::Rejected { line, reason });
                }
                Err(transient) => return Err(transient),
            };
        store::set_status(
            &tx,
            task.object_id,
            Status::Loaded,
            Some(loaded.load_id),
            None,
        )
        .await?;
        crate::fault::point("commit").await;
        tx.commit().await?;
        crate::fault::point("committed").await;
        Ok(Outcome::Loaded(loaded))
    }
}

/// An attempt's time: `most`, or what is `left` of the invocation less a margin kept
/// to close the connection, end its session, note the retry and answer (a tenth of
/// it, 2 to 15 s); `None` under a second.
fn budget(most: Duration, left: Option<Duration>) -> Option<Duration> {
    let Some(left) = left else {
        return Some(most);
    };
    let margin = (left / 10).clamp(Duration::from_secs(2), Duration::from_secs(15));
    let budget = left.checked_sub(margin)?.min(most);
    (budget >= Duration::from_secs(1)).then_some(budget)
}

/// The longest a load's transaction may sit idle (its client reading S3 again between
/// two statements, say) before the server ends it.
const MAX_IDLE_SECONDS: u64 = 120;

/// Writes `note` on the object's ledger row in a short transaction of its own; returns
/// whether the object is now `failed`. The session of an attempt that stalled may hold
/// the row until the server ends it: the note waits a little for it, never for ever.
async fn write_note(
    client: &mut tokio_postgres::Client,
    id: i64,
    note: Note<'_>,
) -> Result<bool, LoadError> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL lock_timeout = '5s'").await?;
    let failed = match note {
        Note::Retry { attempt, reason } => {
            store::mark_retry(&tx, id, attempt, reason).await?;
            false
        }
        Note::OutOfTime { reason, advice } => {
            store::mark_out_of_time(&tx, id, reason, advice).await?
        }
    };
    tx.commit().await?;
    Ok(failed)
}

/// What an attempt that did not finish notes on its ledger row.
enum Note<'a> {
    /// A fault that may pass: the row waits for its retry, with the reason, unless a
    /// newer attempt than `attempt` began.
    Retry { attempt: i32, reason: &'a str },
    /// The attempt ran out of time: counted like a death, `advice` once they are too many.
    OutOfTime { reason: &'a str, advice: &'a str },
}

fn busy() -> LoadError {
    LoadError::Transient("another worker is loading this object".into())
}

/// What a GET of the object gave.
enum Opened {
    /// Its bytes, and the ETag they came with.
    Stream(Box<dyn Read + Send>, Option<String>),
    /// Deleted, overwritten or archived: nothing to load, now or later.
    Gone(String),
    /// The function may not read it: retrying cannot help until a human grants it.
    Forbidden(String),
}

/// The object a load task names, read at the version (or ETag) the task saw.
struct S3Object {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    version_id: Option<String>,
    etag: Option<String>,
}

impl S3Object {
    /// Streams the exact version the ledger recorded, with the ETag it came with. Errors
    /// that no retry can mend are told apart from those that may pass (throttling,
    /// 5xx, expired credentials) by their status and code.
    async fn open(&self) -> Result<Opened, LoadError> {
        let mut request = self.s3.get_object().bucket(&self.bucket).key(&self.key);
        request = match (&self.version_id, &self.etag) {
            (Some(version), _) => request.version_id(version),
            (None, Some(etag)) => request.if_match(format!("\"{}\"", etag.trim_matches('"'))),
            (None, None) => request,
        };
        let e = match request.send().await {
            Ok(object) => {
                let etag = object.e_tag().map(str::to_owned);
                let body = SyncIoBridge::new(object.body.into_async_read());
                return Ok(Opened::Stream(Box::new(SourceRead(body)), etag));
            }
            Err(e) => e,
        };
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.code().unwrap_or_default().to_owned();
        let at = format!("GET s3://{}/{}", self.bucket, self.key);
        let archived = e
            .as_service_error()
            .is_some_and(GetObjectError::is_invalid_object_state);
        match (status, code.as_str()) {
            (Some(404 | 412), _) => Ok(Opened::Gone(
                "object was deleted or overwritten before it was loaded".into(),
            )),
            _ if archived => Ok(Opened::Gone(format!(
                "{at}: the object is archived ({}); restore it, then reload it",
                describe(&e)
            ))),
            (Some(403), "AccessDenied" | "AllAccessDisabled") => Ok(Opened::Forbidden(format!(
                "{at}: access denied ({}); the load function may not read this object \
                 (a KMS key it cannot use? a bucket policy?); grant it, then reload it",
                describe(&e)
            ))),
            (_, code) if code.starts_with("KMS.") => Ok(Opened::Forbidden(format!(
                "{at}: the object's KMS key cannot be used ({}); fix the key, then reload it",
                describe(&e)
            ))),
            _ => Err(LoadError::Transient(format!("{at}: {}", describe(&e)))),
        }
    }
}

impl Reopen for S3Object {
    fn reopen(&self) -> BoxFuture<'_, Result<Box<dyn Read + Send>, LoadError>> {
        Box::pin(async move {
            match self.open().await? {
                Opened::Stream(source, _) => Ok(source),
                Opened::Gone(_) | Opened::Forbidden(_) => Err(LoadError::Transient(format!(
                    "s3://{}/{} was overwritten or deleted between its two reads",
                    self.bucket, self.key
                ))),
            }
        })
    }
}

/// The one line per object: what happened, with its figures.
fn log_outcome(task: &LoadTask, result: &Result<Outcome, LoadError>, started: Instant) {
    let (bucket, key, object_id) = (&task.bucket, &task.key, task.object_id);
    let duration_ms = started.elapsed().as_millis();
    match result {
        Ok(Outcome::Loaded(loaded)) => info!(
            bucket,
            key,
            object_id,
            load_id = loaded.load_id,
            format = loaded.detected.format.name(),
            gzip = loaded.detected.gzip,
            records = loaded.counts.records_in,
            inserted = loaded.counts.inserted,
            updated = loaded.counts.updated,
            unchanged = loaded.counts.unchanged,
            deleted = loaded.counts.deleted,
            rejected = loaded.counts.rejected,
            bytes = loaded.counts.bytes,
            schema_version = loaded.schema_version,
            new_version = loaded.new_version,
            quality_score = loaded.quality_score,
            duration_ms,
            "Object loaded."
        ),
        Ok(Outcome::Rejected { line, reason }) => warn!(
            bucket,
            key, object_id, line, reason, duration_ms, "Object rejected."
        ),
        Ok(Outcome::Skipped { reason }) => info!(
            bucket,
            key, object_id, reason, duration_ms, "Object skipped."
        ),
        Ok(Outcome::Failed { reason }) => error!(
            bucket,
            key, object_id, reason, duration_ms, "Object failed; a human must look at it."
        ),
        Ok(Outcome::AlreadyDone(status)) => info!(
            bucket,
            key,
            object_id,
            status = status.as_str(),
            duration_ms,
            "Object already handled; duplicate task ignored."
        ),
        Err(e) => {
            warn!(bucket, key, object_id, error = %e, duration_ms, "Load failed, will retry.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_gets_what_is_left_less_a_margin_and_never_more_than_its_bound() {
        let secs = Duration::from_secs;
        let most = secs(900);
        assert_eq!(budget(most, None), Some(most), "no deadline: the bound");
        assert_eq!(
            budget(most, Some(secs(300))),
            Some(secs(285)),
            "a tenth, at most 15 s"
        );
        assert_eq!(budget(most, Some(secs(30))), Some(secs(27)));
        assert_eq!(
            budget(most, Some(secs(5))),
            Some(secs(3)),
            "at least 2 s kept"
        );
        assert_eq!(budget(most, Some(secs(3))), Some(secs(1)));
        assert_eq!(
            budget(secs(60), Some(secs(300))),
            Some(secs(60)),
            "the bound first"
        );
        assert_eq!(budget(most, Some(Duration::from_millis(2_900))), None);
        assert_eq!(budget(most, Some(Duration::ZERO)), None);
    }

    #[test]
    fn a_deadline_in_epoch_millis_becomes_an_instant() {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        let later = u64::try_from((now + Duration::from_secs(60)).as_millis()).unwrap();
        let left = deadline_at(later)
            .unwrap()
            .saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(58) && left <= Duration::from_secs(60),
            "{left:?}"
        );
        assert_eq!(
            deadline_at(1_000),
            None,
            "an emulator's deadline in the past"
        );
    }
}

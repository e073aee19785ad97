//! The load handler: SQS batches of load tasks in, rows in PostgreSQL out, with a
//! partial batch response listing only what is worth retrying.

use std::io::Read;
use std::time::{Instant, SystemTime};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::future::BoxFuture;
use tokio_util::io::SyncIoBridge;
use tracing::{error, info, warn};

use crate::aws::describe;
use crate::db::Db;
use crate::format::SourceRead;
use crate::keys::Destination;
use crate::pipeline::{self, LoadError, Loaded, Reopen};
use crate::store::{self, Claim, Lineage, Status};
use crate::task::LoadTask;

/// What load needs, built once per process.
pub struct Loader {
    pub s3: aws_sdk_s3::Client,
    pub db: Db,
}

/// How one task ended, when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Loaded(Loaded),
    Rejected {
        line: Option<u64>,
        reason: String,
    },
    Skipped {
        reason: String,
    },
    /// Another delivery of the task already reached a verdict.
    AlreadyDone(Status),
}

impl Loader {
    /// Handles a batch, one message after another on the process's connection.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for message in event.records {
            if self.handle_message(&message).await.is_err() {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    async fn handle_message(&self, message: &SqsMessage) -> Result<Outcome, LoadError> {
        let body = message.body.as_deref().unwrap_or_default();
        let task: LoadTask = serde_json::from_str(body).map_err(|e| {
            // A task that does not parse never will: it goes to the DLQ for a human.
            error!(message_id = ?message.message_id, body, error = %e, "Unreadable load task.");
            LoadError::Transient(format!("unreadable load task: {e}"))
        })?;
        self.load(&task).await
    }

    /// Loads the object a task names, exactly once however often the task arrives,
    /// and logs one line about it.
    pub async fn load(&self, task: &LoadTask) -> Result<Outcome, LoadError> {
        let started = Instant::now();
        let result = self.load_task(task).await;
        log_outcome(task, &result, started);
        result
    }

    async fn load_task(&self, task: &LoadTask) -> Result<Outcome, LoadError> {
        let mut client = self
            .db
            .client()
            .await
            .map_err(|e| LoadError::Transient(e.to_string()))?;
        let Some(row) = store::begin_attempt(&*client, task.object_id).await? else {
            warn!(
                object_id = task.object_id,
                "Load task names no ledger row; dropped."
            );
            return Ok(Outcome::Skipped {
                reason: "no ledger row".into(),
            });
        };
        if row.status.is_final() {
            return Ok(Outcome::AlreadyDone(row.status));
        }
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

        let result = self.load_claimed(&mut client, task, &dest, &lineage).await;
        match result {
            Err(LoadError::Rejected { line, reason }) => {
                let id = Some(task.object_id);
                pipeline::record_rejection(&mut client, &dest, &lineage, id, line, &reason).await?;
                Ok(Outcome::Rejected { line, reason })
            }
            Err(LoadError::Transient(reason)) => {
                // Best effort: the database may be what failed.
                let _ = store::mark_failed(&*client, task.object_id, &reason).await;
                Err(LoadError::Transient(reason))
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
    ) -> Result<Outcome, LoadError> {
        let tx = client.transaction().await?;
        match store::claim(&tx, task.object_id).await? {
            Claim::Owned => {}
            Claim::Busy => {
                return Err(LoadError::Transient(
                    "another worker is loading this object".into(),
                ))
            }
            Claim::Done(status) => return Ok(Outcome::AlreadyDone(status)),
        }
        let mut object = S3Object {
            s3: self.s3.clone(),
            bucket: task.bucket.clone(),
            key: task.key.clone(),
            version_id: task.version_id.clone(),
            etag: task.etag.clone(),
        };
        let Some((source, etag)) = object.open().await? else {
            let reason = "object was deleted or overwritten before it was loaded".to_owned();
            store::set_status(&tx, task.object_id, Status::Skipped, None, Some(&reason)).await?;
            tx.commit().await?;
            return Ok(Outcome::Skipped { reason });
        };
        // Pinned to the ETag these bytes came with, a second read gets them again or fails.
        object.etag = etag.or(object.etag);
        let id = Some(task.object_id);
        let loaded = pipeline::load(&tx, source, Some(&object), dest, lineage, id).await?;
        store::set_status(
            &tx,
            task.object_id,
            Status::Loaded,
            Some(loaded.load_id),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(Outcome::Loaded(loaded))
    }
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
    /// Streams the exact version the ledger recorded, with the ETag it came with;
    /// `None` if it no longer exists.
    async fn open(&self) -> Result<Option<(Box<dyn Read + Send>, Option<String>)>, LoadError> {
        let mut request = self.s3.get_object().bucket(&self.bucket).key(&self.key);
        request = match (&self.version_id, &self.etag) {
            (Some(version), _) => request.version_id(version),
            (None, Some(etag)) => request.if_match(format!("\"{}\"", etag.trim_matches('"'))),
            (None, None) => request,
        };
        match request.send().await {
            Ok(object) => {
                let etag = object.e_tag().map(str::to_owned);
                let body = SyncIoBridge::new(object.body.into_async_read());
                Ok(Some((Box::new(SourceRead(body)), etag)))
            }
            Err(e)
                if e.raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 404 | 412)) =>
            {
                Ok(None)
            }
            Err(e) => Err(LoadError::Transient(format!(
                "GET s3://{}/{}: {}",
                self.bucket,
                self.key,
                describe(&e)
            ))),
        }
    }
}

impl Reopen for S3Object {
    fn reopen(&self) -> BoxFuture<'_, Result<Box<dyn Read + Send>, LoadError>> {
        Box::pin(async move {
            match self.open().await? {
                Some((source, _)) => Ok(source),
                None => Err(LoadError::Transient(format!(
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

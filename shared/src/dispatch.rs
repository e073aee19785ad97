//! The dispatch handler: S3 notifications in, one ledger row and one load task per
//! object out.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use serde_json::Value;
use tracing::{error, info, warn};

use crate::admission::Admission;
use crate::aws::describe;
use crate::db::Db;
use crate::events::{self, ObjectCreated};
use crate::keys::Destination;
use crate::metrics::{Metrics, ObjectFigures, Verdict};
use crate::store::{self, NewObject, Status};
use crate::task::LoadTask;

/// What dispatch needs, built once per process.
pub struct Dispatcher {
    /// HEADs each object for its version, ETag and size.
    pub s3: aws_sdk_s3::Client,
    /// Sends the load tasks.
    pub sqs: aws_sdk_sqs::Client,
    /// The queue load tasks go to.
    pub load_queue_url: String,
    /// The ledger.
    pub db: Db,
    /// Where skipped objects are counted (EMF in Lambda, `/metrics` locally).
    pub metrics: Metrics,
    /// Which tenants, writers and how much may be loaded.
    pub admission: Admission,
}

/// What dispatch did with one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatched {
    /// Recorded (or found pending) and its load task sent.
    Queued,
    /// The ledger had it already, with this status: nothing sent.
    Known(Status),
    /// Recorded as `skipped`, for this reason (no valid destination, gone).
    Skipped(String),
}

/// A failure worth a retry: the object stays unrecorded or unqueued.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Transient(String);

impl From<crate::db::DbError> for Transient {
    fn from(e: crate::db::DbError) -> Self {
        Transient(e.to_string())
    }
}

impl From<tokio_postgres::Error> for Transient {
    fn from(e: tokio_postgres::Error) -> Self {
        Transient(format!("database: {}", describe(&e)))
    }
}

impl Dispatcher {
    /// Handles one invocation. SQS deliveries that failed are listed for retry; for the
    /// other sources a failure fails the invocation, so Lambda retries it.
    pub async fn handle(&self, event: &Value) -> Result<SqsBatchResponse, Transient> {
        self.metrics.invoked("dispatch");
        let mut response = SqsBatchResponse::default();
        for delivery in events::deliveries(event) {
            let outcome = match delivery.objects {
                Ok(objects) => self.dispatch_all(&objects).await,
                Err(e) => {
                    // Unreadable now means unreadable forever: let it reach the DLQ.
                    error!(message_id = ?delivery.message_id, error = %e, "Unreadable notification.");
                    Err(Transient(e.to_string()))
                }
            };
            match (outcome, delivery.message_id) {
                (Ok(()), _) => {}
                (Err(_), Some(id)) => {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    response.batch_item_failures.push(failure);
                }
                (Err(e), None) => return Err(e),
            }
        }
        Ok(response)
    }

    async fn dispatch_all(&self, objects: &[ObjectCreated]) -> Result<(), Transient> {
        for object in objects {
            if let Err(e) = self.dispatch(object).await.map(drop) {
                warn!(bucket = %object.bucket, key = %object.key, error = %e, "Dispatch failed, will retry.");
                return Err(e);
            }
        }
        Ok(())
    }

    /// Records one object in the ledger and queues its load task, as a notification
    /// of it would; `bronze backfill` sends listed objects this same way.
    pub async fn dispatch(&self, object: &ObjectCreated) -> Result<Dispatched, Transient> {
        let destination = Destination::from_key(&object.key);
        let head = self.head(object).await?;
        let skip = match (&destination, &head) {
            (Err(e), _) => Some(e.to_string()),
            (Ok(_), None) => Some("object no longer exists".to_owned()),
            (Ok(dest), Some(_)) => {
                let db = self.db.client().await?;
                self.admission
                    .refuse(&*db, dest, object.principal.as_deref())
                    .await?
            }
        };
        let (tenant, dataset) = match &destination {
            Ok(d) => (Some(d.tenant.as_str()), Some(d.dataset.as_str())),
            Err(_) => (None, None),
        };
        let version_id = head
            .as_ref()
            .and_then(|h| h.version_id())
            .filter(|v| *v != "null")
            .or(object.version_id.as_deref());
        let etag = head
            .as_ref()
            .and_then(|h| h.e_tag())
            .map(|e| e.trim_matches('"'))
            .or(object.etag.as_deref());
        let last_modified = head
            .as_ref()
            .and_then(|h| h.last_modified())
            .and_then(|t| std::time::SystemTime::try_from(*t).ok());
        let new = NewObject {
            bucket: &object.bucket,
            key: &object.key,
            version_id,
            etag,
            size: head
                .as_ref()
                .and_then(|h| h.content_length())
                .or(object.size),
            sequencer: object.sequencer.as_deref(),
            last_modified,
            tenant,
            dataset,
            skip: skip.as_deref(),
        };
        let recorded = {
            let db = self.db.client().await?;
            store::record_object(&*db, &new).await?
        };
        if recorded.status != Status::Pending {
            info!(bucket = %object.bucket, key = %object.key, object_id = recorded.id,
                status = recorded.status.as_str(), reason = skip.as_deref(), new = recorded.new,
                "Object not queued.");
            return Ok(match skip {
                Some(reason) if recorded.new => {
                    self.metrics.object(&ObjectFigures {
                        function: "dispatch",
                        tenant,
                        dataset,
                        verdict: Some(Verdict::Skipped),
                        ..ObjectFigures::default()
                    });
                    Dispatched::Skipped(reason)
                }
                _ => Dispatched::Known(recorded.status),
            });
        }
        crate::fault::point("recorded").await;
        // A pending row seen again may be one whose task was never sent (a crash
        // between the two steps): send it again; load ignores a second delivery.
        let task = LoadTask {
            object_id: recorded.id,
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            version_id: version_id.map(str::to_owned),
            etag: etag.map(str::to_owned),
        };
        self.send(&task).await?;
        info!(bucket = %object.bucket, key = %object.key, object_id = recorded.id,
            new = recorded.new, "Object queued for load.");
        Ok(Dispatched::Queued)
    }

    /// HEADs the object: `None` when it is gone (deleted or overwritten since).
    async fn head(&self, object: &ObjectCreated) -> Result<Option<HeadObjectOutput>, Transient> {
        let result = self
            .s3
            .head_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone())
            .send()
            .await;
        match result {
            Ok(head) => Ok(Some(head)),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(Transient(format!(
                "HEAD s3://{}/{}: {}",
                object.bucket,
                object.key,
                describe(&e)
            ))),
        }
    }

    async fn send(&self, task: &LoadTask) -> Result<(), Transient> {
        // A LoadTask is plain strings and integers: serialising it cannot fail.
        let body = serde_json::to_string(task).map_err(|e| Transient(e.to_string()))?;
        self.sqs
            .send_message()
            .queue_url(&self.load_queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| Transient(format!("sending load task: {}", describe(&e))))?;
        Ok(())
    }
}

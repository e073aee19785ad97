//! Objects put back through load on purpose: after a contract was relaxed, a file
//! rejected under it may now load; after a human fixed what made one `failed`, it may
//! too. A reload is a new attempt and a new load: versioning keeps it idempotent
//! (unchanged records write nothing), and the ledger keeps the history of attempts.

use tokio_postgres::GenericClient;

use crate::aws::describe;
use crate::keys::Destination;
use crate::task::LoadTask;

/// Which objects to reload.
#[derive(Debug, Clone)]
pub enum Which {
    /// One ledger row.
    Object(i64),
    /// The object a load read.
    Load(i64),
    /// A dataset's objects in this status (`rejected`, `failed`, `skipped`, `loaded`).
    Dataset {
        /// The dataset.
        dest: Destination,
        /// The status of its objects to reload.
        status: String,
    },
}

/// Why a reload stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The ledger could not be read or written.
    #[error("database: {}", crate::aws::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// Sending a load task failed.
    #[error("sending the load task of object {id}: {reason}")]
    Send {
        /// The object whose task was not sent.
        id: i64,
        /// SQS's error.
        reason: String,
    },
}

/// Marks the objects `pending` again, with a fresh count of deaths, and sends each its
/// load task; returns the object ids. Loads of local files (`bronze ingest`) have no
/// ledger row and cannot be reloaded this way.
pub async fn reload(
    db: &impl GenericClient,
    sqs: &aws_sdk_sqs::Client,
    load_queue_url: &str,
    which: &Which,
) -> Result<Vec<i64>, ReloadError> {
    // A row `loading` is being loaded (or was left by an attempt that died, which the
    // next delivery mends): it is not taken from under its worker.
    let update = |filter: &str| {
        format!(
            "UPDATE bronze.objects
             SET status = 'pending', deaths = 0, error = 'reload requested', updated_at = now()
             WHERE {filter} AND status <> 'loading'
             RETURNING id, bucket, key, version_id, etag"
        )
    };
    let rows = match which {
        Which::Object(id) => db.query(&update("id = $1"), &[id]).await?,
        Which::Load(id) => {
            let filter = "id = (SELECT object_id FROM bronze.loads WHERE id = $1)";
            db.query(&update(filter), &[id]).await?
        }
        Which::Dataset { dest, status } => {
            let filter = "tenant = $1 AND dataset = $2 AND status = $3";
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                [&dest.tenant.as_str(), &dest.dataset.as_str(), status];
            db.query(&update(filter), &params).await?
        }
    };
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let task = LoadTask {
            object_id: row.get(0),
            bucket: row.get(1),
            key: row.get(2),
            version_id: row.get(3),
            etag: row.get(4),
        };
        // A LoadTask is plain strings and integers: serialising it cannot fail.
        let body = serde_json::to_string(&task).unwrap_or_default();
        sqs.send_message()
            .queue_url(load_queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| ReloadError::Send {
                id: task.object_id,
                reason: describe(&e),
            })?;
        ids.push(task.object_id);
    }
    Ok(ids)
}

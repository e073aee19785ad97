//! The object ledger (`bronze.objects`): one row per object version, the heart of
//! idempotency under at-least-once delivery.

use std::time::SystemTime;

use tokio_postgres::{GenericClient, Transaction};

/// Ledger status of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Recorded, a load task sent or to be sent; also after a fault that may pass.
    Pending,
    /// An attempt holds it, or one left it by dying.
    Loading,
    /// Its rows are in its table.
    Loaded,
    /// The file is bad: never retried.
    Rejected,
    /// Not to be loaded: no valid destination, deleted or archived.
    Skipped,
    /// Given up on: a human must look (`bronze reload`).
    Failed,
}

impl Status {
    /// The name stored in `bronze.objects.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Loading => "loading",
            Status::Loaded => "loaded",
            Status::Rejected => "rejected",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "pending" => Status::Pending,
            "loading" => Status::Loading,
            "loaded" => Status::Loaded,
            "rejected" => Status::Rejected,
            "skipped" => Status::Skipped,
            _ => Status::Failed,
        }
    }

    /// A verdict was reached: nothing more will happen to the object by itself
    /// (`failed` waits for a human, and `bronze reload`).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Loaded | Status::Rejected | Status::Skipped | Status::Failed
        )
    }
}

/// An object as dispatch records it.
#[derive(Debug, Clone)]
pub struct NewObject<'a> {
    /// The bucket it landed in.
    pub bucket: &'a str,
    /// Its key, decoded.
    pub key: &'a str,
    /// Its version id, on a versioned bucket.
    pub version_id: Option<&'a str>,
    /// Its ETag.
    pub etag: Option<&'a str>,
    /// Its size in bytes.
    pub size: Option<i64>,
    /// S3's ordering of events for one key.
    pub sequencer: Option<&'a str>,
    /// When S3 last modified it: the source order of its records' versions.
    pub last_modified: Option<std::time::SystemTime>,
    /// The tenant its key names, when valid.
    pub tenant: Option<&'a str>,
    /// The dataset its key names, when valid.
    pub dataset: Option<&'a str>,
    /// `Some(reason)` records the object as skipped.
    pub skip: Option<&'a str>,
}

/// The ledger row for an object, newly made or found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The ledger row's id: what load tasks name.
    pub id: i64,
    /// Its status now.
    pub status: Status,
    /// Whether this call made it (a repeat finds the first).
    pub new: bool,
}

/// Records an object once per (bucket, key, version); a repeat finds the first row.
pub async fn record_object(
    db: &impl GenericClient,
    obj: &NewObject<'_>,
) -> Result<Recorded, tokio_postgres::Error> {
    let version_key = match (obj.version_id, obj.etag) {
        (Some(v), _) => v.to_owned(),
        (None, e) => format!("etag:{}", e.unwrap_or_default()),
    };
    let status = if obj.skip.is_some() {
        Status::Skipped
    } else {
        Status::Pending
    };
    let inserted = db
        .query_opt(
            "INSERT INTO bronze.objects (bucket, key, version_key, version_id, etag, size,
                 sequencer, last_modified, tenant, dataset, status, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (bucket, key, version_key) DO NOTHING
             RETURNING id",
            &[
                &obj.bucket,
                &obj.key,
                &version_key,
                &obj.version_id,
                &obj.etag,
                &obj.size,
                &obj.sequencer,
                &obj.last_modified,
                &obj.tenant,
                &obj.dataset,
                &status.as_str(),
                &obj.skip,
            ],
        )
        .await?;
    if let Some(row) = inserted {
        return Ok(Recorded {
            id: row.get(0),
            status,
            new: true,
        });
    }
    let row = db
        .query_one(
            "SELECT id, status FROM bronze.objects
             WHERE bucket = $1 AND key = $2 AND version_key = $3",
            &[&obj.bucket, &obj.key, &version_key],
        )
        .await?;
    Ok(Recorded {
        id: row.get(0),
        status: Status::parse(row.get(1)),
        new: false,
    })
}

/// A ledger row as load needs it.
#[derive(Debug, Clone)]
pub struct ObjectRow {
    /// Its status after the attempt began.
    pub status: Status,
    /// The tenant recorded at dispatch.
    pub tenant: Option<String>,
    /// The dataset recorded at dispatch.
    pub dataset: Option<String>,
    /// When S3 last modified the object.
    pub last_modified: Option<SystemTime>,
    /// Which attempt this is (`attempts` once counted): a note written later names it,
    /// so it never touches a newer attempt's row.
    pub attempt: i32,
}

/// Attempts that may die (the process killed: out of memory, timed out) before the
/// object is marked `failed`: each death is redelivered by SQS, and a file that kills
/// the function will kill it again.
pub const MAX_DEATHS: i32 = 3;

/// What a delivery found when it came to load an object.
#[derive(Debug, Clone)]
pub enum Attempt {
    /// This attempt is counted and the row marked `loading`.
    Started(ObjectRow),
    /// Another worker holds the row: a load in progress.
    Busy,
    /// A verdict was reached before: a late duplicate task changes nothing.
    Done(Status),
    /// Attempts at it kept dying: now `failed`, with this reason.
    GaveUp(String),
    /// No ledger row has the task's id.
    Missing,
}

/// Counts an attempt at loading `id` and marks it `loading`. The row is locked first:
/// a row left `loading` that no worker holds was left by an attempt that died, which
/// is noted as the reason; after [`MAX_DEATHS`] of them the object is `failed`.
///
/// Unless the server restarted since that attempt began: then its connection was cut
/// under it (a restart, a failover), and the attempt, which could not reach the
/// database to say so, is noted as a database fault, not a death. A process that died
/// just before such a restart is forgiven its death: a rare miscount, on the side of
/// one more retry, where the other way three outages make a good file `failed`.
pub async fn begin_attempt(
    client: &mut tokio_postgres::Client,
    id: i64,
) -> Result<Attempt, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL lock_timeout = '5s'").await?;
    let locked = tx
        .query_opt(
            "SELECT status, attempts, deaths, tenant, dataset, last_modified,
                 updated_at < pg_postmaster_start_time()
             FROM bronze.objects WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await;
    let row = match locked {
        Ok(Some(row)) => row,
        Ok(None) => return Ok(Attempt::Missing),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            return Ok(Attempt::Busy)
        }
        Err(e) => return Err(e),
    };
    let status = Status::parse(row.get(0));
    if status.is_final() {
        return Ok(Attempt::Done(status));
    }
    let (attempts, deaths): (i32, i32) = (row.get(1), row.get(2));
    let left = status == Status::Loading;
    let cut_by_restart: bool = row.get(6);
    let died = left && !cut_by_restart;
    let deaths = deaths + i32::from(died);
    if died && deaths >= MAX_DEATHS {
        let reason = format!(
            "{deaths} attempts died before they finished (killed: out of memory or past the \
             function's timeout?); the file may be too large for the function: raise its \
             memory or timeout, then reload it"
        );
        tx.execute(
            "UPDATE bronze.objects SET status = 'failed', deaths = $2, error = $3,
                 updated_at = now() WHERE id = $1",
            &[&id, &deaths, &reason],
        )
        .await?;
        tx.commit().await?;
        return Ok(Attempt::GaveUp(reason));
    }
    let note = match (left, died) {
        (true, true) => Some(format!(
            "attempt {attempts} died before it finished (killed, out of memory or timed out); retrying"
        )),
        (true, false) => Some(format!(
            "attempt {attempts} was cut by a restart of the database; retrying"
        )),
        (false, _) => None,
    };
    tx.execute(
        "UPDATE bronze.objects
         SET attempts = attempts + 1, deaths = $2, status = 'loading',
             error = coalesce($3, error), updated_at = now()
         WHERE id = $1",
        &[&id, &deaths, &note],
    )
    .await?;
    tx.commit().await?;
    Ok(Attempt::Started(ObjectRow {
        status: Status::Loading,
        tenant: row.get(3),
        dataset: row.get(4),
        last_modified: row.get(5),
        attempt: attempts + 1,
    }))
}

/// Notes a transient failure of attempt `attempt`: the object waits for its retry,
/// unless another delivery reached a verdict or began an attempt of its own meanwhile
/// (a note written late, once the database is back, must not undo either).
pub async fn mark_retry(
    db: &impl GenericClient,
    id: i64,
    attempt: i32,
    reason: &str,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE bronze.objects SET status = 'pending', error = $2, updated_at = now()
         WHERE id = $1 AND attempts = $3
             AND status NOT IN ('loaded', 'rejected', 'skipped', 'failed')",
        &[&id, &reason, &attempt],
    )
    .await?;
    Ok(())
}

/// Notes an attempt that ran out of time (its budget, or what was left of the
/// invocation): counted with the attempts that died, since a file that cannot finish
/// in the time the function has will not at the next try either. After [`MAX_DEATHS`]
/// the object is `failed` with `advice`; before, it waits for its retry with `reason`.
/// Returns whether it is now `failed`.
pub async fn mark_out_of_time(
    db: &impl GenericClient,
    id: i64,
    reason: &str,
    advice: &str,
) -> Result<bool, tokio_postgres::Error> {
    let row = db
        .query_opt(
            "UPDATE bronze.objects
             SET deaths = deaths + 1,
                 status = CASE WHEN deaths + 1 >= $4 THEN 'failed' ELSE 'pending' END,
                 error = CASE WHEN deaths + 1 >= $4 THEN $3 ELSE $2 END,
                 updated_at = now()
             WHERE id = $1 AND status NOT IN ('loaded', 'rejected', 'skipped', 'failed')
             RETURNING status",
            &[&id, &reason, &advice, &MAX_DEATHS],
        )
        .await?;
    Ok(row.is_some_and(|row| row.get::<_, &str>(0) == "failed"))
}

/// Whether this transaction now owns the object's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This transaction holds the row until it ends.
    Owned,
    /// Another worker holds it right now; try again later.
    Busy,
    /// A verdict was reached meanwhile.
    Done(Status),
}

/// Locks the ledger row for the rest of the transaction, so two deliveries of one task
/// never load the same object twice. Short row locks (another delivery counting its
/// attempt) are waited out; a lock still held after a few seconds is a load in
/// progress, and this delivery is told to come back later.
pub async fn claim(tx: &Transaction<'_>, id: i64) -> Result<Claim, tokio_postgres::Error> {
    tx.batch_execute("SET LOCAL lock_timeout = '5s'").await?;
    let row = tx
        .query_opt(
            "SELECT status FROM bronze.objects WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await;
    let status = match row {
        Ok(row) => row.map(|r| Status::parse(r.get(0))),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            return Ok(Claim::Busy)
        }
        Err(e) => return Err(e),
    };
    tx.batch_execute("SET LOCAL lock_timeout = 0").await?;
    Ok(match status {
        None => Claim::Busy,
        Some(status) if status.is_final() => Claim::Done(status),
        Some(_) => Claim::Owned,
    })
}

/// Sets an object's verdict (or `failed` with the transient reason).
pub async fn set_status(
    db: &impl GenericClient,
    id: i64,
    status: Status,
    load_id: Option<i64>,
    error: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE bronze.objects
         SET status = $2, load_id = coalesce($3, load_id), error = $4, updated_at = now()
         WHERE id = $1",
        &[&id, &status.as_str(), &load_id, &error],
    )
    .await?;
    Ok(())
}

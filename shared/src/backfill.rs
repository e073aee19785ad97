//! Loading what is already in a bucket, or what a lost notification left behind: the
//! bucket is listed, and every object the ledger does not know goes through dispatch
//! exactly as its notification would have. No age limit: the ledger, not a time
//! window, says what was loaded, so running it twice queues nothing the second time.

use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use crate::aws::describe;
use crate::db::DbError;
use crate::dispatch::{Dispatched, Dispatcher};
use crate::events::ObjectCreated;
use aws_sdk_s3::types::Object;
use futures_util::StreamExt;

/// Objects dispatched at once.
const CONCURRENCY: usize = 16;

/// Where and what to list.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The bucket.
    pub bucket: String,
    /// Only keys under this prefix.
    pub prefix: Option<String>,
    /// Only objects modified after this instant.
    pub modified_after: Option<SystemTime>,
    /// At most this many keys scanned, whatever the filter (a reconcile run's bound,
    /// so a bucket of old objects cannot make it list without end); `None` for all.
    pub max: Option<u64>,
    /// Count what would be queued, and queue nothing.
    pub dry_run: bool,
}

/// What a backfill did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Keys the listing went through, before the filter.
    pub scanned: u64,
    /// Objects listed that fit the filter.
    pub listed: u64,
    /// Of them, objects the ledger had already (by key and ETag).
    pub known: u64,
    /// Of them, objects sent to load (or that would be, in a dry run).
    pub queued: u64,
    /// Of them, objects recorded as skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Where the listing stopped, for a bounded run to go on from.
    pub next_key: Option<String>,
}

/// Why a backfill stopped.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// Listing the bucket failed.
    #[error("listing s3://{bucket}: {reason}")]
    List {
        /// The bucket.
        bucket: String,
        /// S3's error.
        reason: String,
    },
    /// The ledger could not be read.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The ledger query failed.
    #[error("database: {}", crate::aws::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// Dispatching an object failed (S3, SQS or the database).
    #[error("dispatching s3://{bucket}/{key}: {reason}")]
    Dispatch {
        /// The bucket.
        bucket: String,
        /// The object's key.
        key: String,
        /// Why dispatch failed.
        reason: String,
    },
}

/// Lists `listing.bucket` page by page (any number of objects) and dispatches every
/// object the ledger does not know; `progress` sees the counts after each page.
pub async fn backfill(
    dispatcher: &Dispatcher,
    listing: &Listing,
    start_after: Option<String>,
    mut progress: impl FnMut(&Counts),
) -> Result<Counts, BackfillError> {
    let mut counts = Counts::default();
    let mut token: Option<String> = None;
    loop {
        let page = dispatcher
            .s3
            .list_objects_v2()
            .bucket(&listing.bucket)
            .set_prefix(listing.prefix.clone())
            .set_start_after(start_after.clone().filter(|_| token.is_none()))
            .set_continuation_token(token.clone())
            .send()
            .await
            .map_err(|e| BackfillError::List {
                bucket: listing.bucket.clone(),
                reason: describe(&e),
            })?;
        let room = listing.max.map_or(usize::MAX, |max| {
            usize::try_from(max.saturating_sub(counts.scanned)).unwrap_or(usize::MAX)
        });
        let scanned = &page.contents()[..page.contents().len().min(room)];
        counts.scanned += scanned.len() as u64;
        let objects: Vec<&Object> = scanned
            .iter()
            .filter(|o| o.key().is_some_and(|k| !k.ends_with('/')))
            .filter(|o| newer(o, listing.modified_after))
            .collect();
        let known = known(dispatcher, &listing.bucket, &objects).await?;
        let bounded = scanned.len() < page.contents().len();
        if let Some(last) = scanned.last().and_then(Object::key) {
            counts.next_key = Some(last.to_owned());
        }
        let mut todo = Vec::new();
        for object in objects {
            let key = object.key().unwrap_or_default().to_owned();
            counts.listed += 1;
            let etag = object.e_tag().map(|e| e.trim_matches('"').to_owned());
            if known.contains(&(key.clone(), etag.clone().unwrap_or_default())) {
                counts.known += 1;
            } else if listing.dry_run {
                counts.queued += 1;
            } else {
                todo.push(ObjectCreated {
                    bucket: listing.bucket.clone(),
                    key,
                    size: object.size(),
                    etag,
                    version_id: None,
                    sequencer: None,
                    principal: None,
                });
            }
        }
        // A few objects at a time: each is a HEAD, a ledger row and a message, and
        // their round trips overlap; the ledger's connection still takes them in turn.
        let mut dispatched = futures_util::stream::iter(&todo)
            .map(|created| async move { (created, dispatcher.dispatch(created).await) })
            .buffer_unordered(CONCURRENCY);
        while let Some((created, outcome)) = dispatched.next().await {
            match outcome {
                Ok(Dispatched::Queued) => counts.queued += 1,
                Ok(Dispatched::Known(_)) => counts.known += 1,
                Ok(Dispatched::Skipped(reason)) => *counts.skipped.entry(reason).or_default() += 1,
                Err(e) => {
                    return Err(BackfillError::Dispatch {
                        bucket: listing.bucket.clone(),
                        key: created.key.clone(),
                        reason: e.to_string(),
                    })
                }
            }
        }
        progress(&counts);
        if bounded {
            return Ok(counts);
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            counts.next_key = None;
            return Ok(counts);
        }
    }
}

fn newer(object: &Object, after: Option<SystemTime>) -> bool {
    let Some(after) = after else {
        return true;
    };
    object
        .last_modified()
        .and_then(|t| SystemTime::try_from(*t).ok())
        .is_some_and(|t| t > after)
}

/// The (key, ETag) of the page's objects that the ledger has: one query per page.
async fn known(
    dispatcher: &Dispatcher,
    bucket: &str,
    objects: &[&Object],
) -> Result<HashSet<(String, String)>, BackfillError> {
    let keys: Vec<&str> = objects.iter().filter_map(|o| o.key()).collect();
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let client = dispatcher.db.client().await?;
    let rows = client
        .query(
            "SELECT key, coalesce(etag, '') FROM bronze.objects
             WHERE bucket = $1 AND key = ANY($2)",
            &[&bucket, &keys],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

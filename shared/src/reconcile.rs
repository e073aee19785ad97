//! The scheduled safety net for lost notifications (S3's event notifications do not
//! promise delivery): each run backfills the objects modified in a recent window,
//! scanning at most a bounded number of keys, and goes on next time where it stopped
//! (`bronze.reconcile` keeps the place), so it never floods the load queue.

use std::time::{Duration, SystemTime};

use crate::backfill::{backfill, BackfillError, Counts, Listing};
use crate::dispatch::Dispatcher;

/// One bucket's reconcile runs.
pub struct Reconciler {
    /// Dispatches what the ledger does not know, like a notification.
    pub dispatcher: Dispatcher,
    /// The landing bucket.
    pub bucket: String,
    /// Objects modified this long ago at most are looked at.
    pub window: Duration,
    /// Keys scanned per run.
    pub max_keys: u64,
}

impl Reconciler {
    /// One run: from where the last one stopped, through at most `max_keys` keys.
    pub async fn run(&self) -> Result<Counts, BackfillError> {
        let client = self.dispatcher.db.client().await?;
        let start_after: Option<String> = client
            .query_opt(
                "SELECT next_key FROM bronze.reconcile WHERE bucket = $1",
                &[&self.bucket],
            )
            .await?
            .and_then(|row| row.get(0));
        drop(client);
        let listing = Listing {
            bucket: self.bucket.clone(),
            prefix: None,
            modified_after: SystemTime::now().checked_sub(self.window),
            max: Some(self.max_keys),
            dry_run: false,
        };
        let counts = backfill(&self.dispatcher, &listing, start_after, |_| {}).await?;
        let client = self.dispatcher.db.client().await?;
        client
            .execute(
                "INSERT INTO bronze.reconcile (bucket, next_key) VALUES ($1, $2)
                 ON CONFLICT (bucket) DO UPDATE
                 SET next_key = excluded.next_key, updated_at = now()",
                &[&self.bucket, &counts.next_key],
            )
            .await?;
        Ok(counts)
    }
}

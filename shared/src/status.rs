//! `bronze status`: what needs a human, from the ledger and the queues: the backlog
//! by status and its age, each dataset's last load, recent rejects, queue depths and
//! dead letters. `--check` turns it into an exit status for a cron job or a deploy.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::report::rfc3339_opt;
use crate::runner::Queues;

/// Objects of the ledger in one status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backlog {
    /// `pending`, `loading` or `failed`.
    pub status: String,
    /// How many.
    pub objects: i64,
    /// Seconds since the oldest of them last changed.
    pub oldest_seconds: i64,
}

/// A dataset's last load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastLoad {
    /// The tenant.
    pub tenant: String,
    /// The dataset.
    pub dataset: String,
    /// The load.
    pub load_id: i64,
    /// `loaded` or `rejected`.
    pub status: String,
    /// When it finished, RFC 3339.
    pub finished_at: Option<String>,
    /// Records it read.
    pub records: i64,
    /// Its quality score.
    pub quality_score: Option<f64>,
}

/// A queue's depth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueDepth {
    /// Which queue: landing, load, or their dead-letter queues.
    pub name: String,
    /// Messages waiting.
    pub visible: i64,
    /// Messages received and not yet deleted.
    pub in_flight: i64,
}

/// Everything `bronze status` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// Objects without a verdict, by status.
    pub backlog: Vec<Backlog>,
    /// Each dataset's last load, most recent first.
    pub datasets: Vec<LastLoad>,
    /// Records rejected in the last 24 hours.
    pub rejects_24h: i64,
    /// The queues' depths, when they could be reached.
    pub queues: Option<Vec<QueueDepth>>,
    /// What needs a human; empty when nothing does.
    pub problems: Vec<String>,
}

/// The ledger's part of the status; `queues` adds the queues'. A backlog older than
/// `stale` is a problem.
pub async fn status(
    db: &impl GenericClient,
    queues: Option<Vec<QueueDepth>>,
    stale: Duration,
) -> Result<Status, tokio_postgres::Error> {
    let backlog: Vec<Backlog> = db
        .query(
            "SELECT status, count(*), extract(epoch FROM now() - min(updated_at))::bigint
             FROM bronze.objects WHERE status IN ('pending', 'loading', 'failed')
             GROUP BY status ORDER BY status",
            &[],
        )
        .await?
        .iter()
        .map(|r| Backlog {
            status: r.get(0),
            objects: r.get(1),
            oldest_seconds: r.get(2),
        })
        .collect();
    let datasets = db
        .query(
            "SELECT DISTINCT ON (tenant, dataset) tenant, dataset, id, status, finished_at,
                    records_in, quality_score
             FROM bronze.loads ORDER BY tenant, dataset, id DESC",
            &[],
        )
        .await?
        .iter()
        .map(|r| LastLoad {
            tenant: r.get(0),
            dataset: r.get(1),
            load_id: r.get(2),
            status: r.get(3),
            finished_at: rfc3339_opt(r.get(4)),
            records: r.get(5),
            quality_score: r.get(6),
        })
        .collect();
    let rejects_24h: i64 = db
        .query_one(
            "SELECT coalesce(sum(rejected), 0)::bigint FROM bronze.loads
             WHERE started_at > now() - interval '24 hours'",
            &[],
        )
        .await?
        .get(0);
    let problems = problems(&backlog, queues.as_deref(), stale);
    Ok(Status {
        backlog,
        datasets,
        rejects_24h,
        queues,
        problems,
    })
}

fn problems(backlog: &[Backlog], queues: Option<&[QueueDepth]>, stale: Duration) -> Vec<String> {
    let mut found = Vec::new();
    for b in backlog {
        match b.status.as_str() {
            "failed" => found.push(format!(
                "{} object(s) failed: `bronze loads --status failed` says why, `bronze reload` \
                 retries them",
                b.objects
            )),
            _ if b.oldest_seconds > i64::try_from(stale.as_secs()).unwrap_or(i64::MAX) => found
                .push(format!(
                    "{} object(s) {} for up to {} s, longer than {} s",
                    b.objects,
                    b.status,
                    b.oldest_seconds,
                    stale.as_secs()
                )),
            _ => {}
        }
    }
    for q in queues.into_iter().flatten() {
        if q.name.ends_with("dlq") && q.visible + q.in_flight > 0 {
            found.push(format!(
                "{} holds {} message(s): `bronze replay --from {}` after the fault is mended",
                q.name,
                q.visible + q.in_flight,
                q.name
            ));
        }
    }
    found
}

/// The depths of the runner's (or a stack's) queues.
pub async fn queue_depths(
    sqs: &aws_sdk_sqs::Client,
    queues: &Queues,
) -> Result<Vec<QueueDepth>, String> {
    let named = [
        ("landing", &queues.landing),
        ("load", &queues.load),
        ("landing-dlq", &queues.landing_dlq),
        ("load-dlq", &queues.load_dlq),
    ];
    let mut depths = Vec::with_capacity(named.len());
    for (name, queue) in named {
        let out = sqs
            .get_queue_attributes()
            .queue_url(&queue.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| crate::aws::describe(&e))?;
        let read = |attribute: QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(&attribute))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        depths.push(QueueDepth {
            name: name.to_owned(),
            visible: read(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: read(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        });
    }
    Ok(depths)
}

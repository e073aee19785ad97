//! The commands that run bronze in production: `status`, `backfill`, `replay`,
//! `reload`. Thin over the library's `status`, `backfill`, `replay` and `reload`.

use std::io::IsTerminal;
use std::time::Duration;

use bronze::aws;
use bronze::backfill::{self, Listing};
use bronze::db::Db;
use bronze::dispatch::Dispatcher;
use bronze::keys::Destination;
use bronze::reload::{self, Which};
use bronze::replay::Replayed;
use bronze::runner::{self, Queues};
use bronze::status;
use clap::{Args, ValueEnum};

use crate::ops::{print_table, reader};
use crate::table::{Column, Table};

#[derive(Args)]
pub struct QueueArgs {
    /// Prefix of the queue names (`<prefix>-landing`, `<prefix>-load` and their DLQs).
    #[arg(long, default_value = "bronze")]
    queue_prefix: String,
}

#[derive(Args)]
pub struct StatusArgs {
    /// One JSON document instead of tables.
    #[arg(long)]
    json: bool,
    /// Exit 1, saying what, when something needs a human (a dead letter, a failed
    /// object, a backlog older than --stale).
    #[arg(long)]
    check: bool,
    /// Seconds a pending or loading object may wait before it is a problem.
    #[arg(long, default_value_t = 3600)]
    stale: u64,
    #[command(flatten)]
    queues: QueueArgs,
}

#[derive(Args)]
pub struct BackfillArgs {
    /// `s3://BUCKET[/PREFIX]`: the objects to load if the ledger does not know them.
    url: String,
    /// Only objects modified after this instant (RFC 3339, e.g. 2026-11-01T00:00:00Z).
    #[arg(long)]
    modified_after: Option<String>,
    /// Count what would be queued; queue nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    queues: QueueArgs,
}

/// A dead-letter queue to replay.
#[derive(Clone, Copy, ValueEnum)]
pub enum DeadLetters {
    /// The load tasks that failed: back to the load queue.
    LoadDlq,
    /// The notifications dispatch could not handle: back to the landing queue.
    LandingDlq,
}

#[derive(Args)]
pub struct ReplayArgs {
    /// Which dead-letter queue.
    #[arg(long, value_enum)]
    from: DeadLetters,
    /// At most this many messages.
    #[arg(long)]
    max: Option<u64>,
    #[command(flatten)]
    queues: QueueArgs,
}

#[derive(Args)]
pub struct ReloadArgs {
    /// One object of the ledger.
    #[arg(long, conflicts_with_all = ["load", "dataset"])]
    object: Option<i64>,
    /// The object a load read.
    #[arg(long, conflicts_with = "dataset")]
    load: Option<i64>,
    /// A dataset's objects (TENANT DATASET) in --status.
    #[arg(long, num_args = 2, value_names = ["TENANT", "DATASET"])]
    dataset: Vec<String>,
    /// The status of the dataset's objects to reload.
    #[arg(long, default_value = "rejected", value_parser = ["rejected", "failed", "skipped", "loaded"])]
    status: String,
    #[command(flatten)]
    queues: QueueArgs,
}

async fn queues(args: &QueueArgs) -> Result<(aws_sdk_sqs::Client, Queues), String> {
    let config = aws::sdk_config().await;
    let sqs = aws::sqs(&config);
    let queues = runner::find_queues(&sqs, &args.queue_prefix)
        .await
        .map_err(|e| e.to_string())?;
    Ok((sqs, queues))
}

pub async fn status(args: StatusArgs) -> Result<(), String> {
    let depths = match queues(&args.queues).await {
        Ok((sqs, queues)) => status::queue_depths(&sqs, &queues).await.ok(),
        Err(_) => None,
    };
    let db = reader();
    let client = db.client().await.map_err(|e| e.to_string())?;
    let status = status::status(&*client, depths, Duration::from_secs(args.stale))
        .await
        .map_err(|e| e.to_string())?;
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&status).map_err(|e| e.to_string())?
        );
    } else {
        print_status(&status)?;
    }
    if args.check && !status.problems.is_empty() {
        return Err(format!(
            "needs a human:\n  {}",
            status.problems.join("\n  ")
        ));
    }
    Ok(())
}

fn print_status(status: &status::Status) -> Result<(), String> {
    let mut backlog = Table::new(&[
        Column::text("LEDGER"),
        Column::number("OBJECTS"),
        Column::number("OLDEST S"),
    ]);
    for b in &status.backlog {
        backlog.row([
            b.status.clone(),
            b.objects.to_string(),
            b.oldest_seconds.to_string(),
        ]);
    }
    if backlog.is_empty() {
        say!("ledger: nothing pending, loading or failed");
    } else {
        print_table(&backlog)?;
    }
    let mut datasets = Table::new(&[
        Column::text("TENANT"),
        Column::text("DATASET"),
        Column::number("LAST LOAD"),
        Column::text("STATUS"),
        Column::text("FINISHED"),
        Column::number("RECORDS"),
        Column::number("SCORE"),
    ]);
    for d in &status.datasets {
        datasets.row([
            d.tenant.clone(),
            d.dataset.clone(),
            d.load_id.to_string(),
            d.status.clone(),
            d.finished_at.clone().unwrap_or_else(|| "-".into()),
            d.records.to_string(),
            d.quality_score
                .map_or_else(|| "-".into(), |s| format!("{s:.3}")),
        ]);
    }
    print_table(&datasets)?;
    say!("rejected records, last 24 hours: {}", status.rejects_24h);
    match &status.queues {
        Some(queues) => {
            let mut table = Table::new(&[
                Column::text("QUEUE"),
                Column::number("WAITING"),
                Column::number("IN FLIGHT"),
            ]);
            for q in queues {
                table.row([
                    q.name.clone(),
                    q.visible.to_string(),
                    q.in_flight.to_string(),
                ]);
            }
            print_table(&table)?;
        }
        None => say!("queues: not reachable"),
    }
    for problem in &status.problems {
        say!("problem: {problem}");
    }
    Ok(())
}

pub async fn backfill(args: BackfillArgs) -> Result<(), String> {
    let (bucket, prefix) = parse_s3_url(&args.url)?;
    let modified_after = args
        .modified_after
        .as_deref()
        .map(parse_instant)
        .transpose()?;
    let config = aws::sdk_config().await;
    let (s3, sqs) = (aws::s3(&config), aws::sqs(&config));
    let queues = runner::find_queues(&sqs, &args.queues.queue_prefix)
        .await
        .map_err(|e| e.to_string())?;
    let dispatcher = Dispatcher {
        s3,
        sqs,
        load_queue_url: queues.load.url.clone(),
        db: Db::from_env(None),
        metrics: bronze::metrics::Metrics::default(),
        admission: bronze::admission::Admission::from_env().map_err(|e| e.to_string())?,
    };
    let listing = Listing {
        bucket,
        prefix,
        modified_after,
        max: None,
        dry_run: args.dry_run,
    };
    let terminal = std::io::stderr().is_terminal();
    let counts = backfill::backfill(&dispatcher, &listing, None, |c| {
        if terminal {
            eprint!(
                "\rlisted {}  known {}  queued {}",
                c.listed, c.known, c.queued
            );
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    if terminal {
        eprintln!();
    }
    say!(
        "{}",
        serde_json::to_string(&counts).map_err(|e| e.to_string())?
    );
    Ok(())
}

pub async fn replay(args: ReplayArgs) -> Result<(), String> {
    let (sqs, queues) = queues(&args.queues).await?;
    let (dead, source) = match args.from {
        DeadLetters::LoadDlq => (&queues.load_dlq, &queues.load),
        DeadLetters::LandingDlq => (&queues.landing_dlq, &queues.landing),
    };
    let replayed = match args.max {
        Some(max) => bronze::replay::replay(&sqs, dead, source, Some(max))
            .await
            .map(Replayed::Moved),
        None => bronze::replay::replay_all(&sqs, dead, source).await,
    }
    .map_err(|e| e.to_string())?;
    match replayed {
        Replayed::Moved(moved) => {
            say!(
                "moved {moved} message(s) from {} to {}",
                dead.url,
                source.url
            );
        }
        Replayed::MoveTask { handle } => {
            say!(
                "SQS is moving {}'s messages to {} (task {handle})",
                dead.url,
                source.url
            );
        }
    }
    Ok(())
}

pub async fn reload(args: ReloadArgs) -> Result<(), String> {
    let which = match (args.object, args.load, args.dataset.as_slice()) {
        (Some(id), _, _) => Which::Object(id),
        (_, Some(id), _) => Which::Load(id),
        (_, _, [tenant, dataset]) => Which::Dataset {
            dest: Destination::new(tenant, dataset).map_err(|e| e.to_string())?,
            status: args.status.clone(),
        },
        _ => return Err("say what to reload: --object ID, --load ID or --dataset T D".into()),
    };
    let (sqs, queues) = queues(&args.queues).await?;
    let db = Db::from_env(None);
    let client = db.client().await.map_err(|e| e.to_string())?;
    let ids = reload::reload(&*client, &sqs, &queues.load.url, &which)
        .await
        .map_err(|e| e.to_string())?;
    say!("reloading {} object(s): {ids:?}", ids.len());
    Ok(())
}

/// `s3://bucket[/prefix]` as (bucket, prefix).
fn parse_s3_url(url: &str) -> Result<(String, Option<String>), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url:?}: expected s3://BUCKET[/PREFIX]"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("{url:?}: no bucket"));
    }
    Ok((
        bucket.to_owned(),
        Some(prefix.to_owned()).filter(|p| !p.is_empty()),
    ))
}

/// An RFC 3339 instant, as the AWS SDK reads them.
fn parse_instant(text: &str) -> Result<std::time::SystemTime, String> {
    aws_sdk_s3::primitives::DateTime::from_str(
        text,
        aws_sdk_s3::primitives::DateTimeFormat::DateTime,
    )
    .ok()
    .and_then(|t| std::time::SystemTime::try_from(t).ok())
    .ok_or_else(|| format!("{text:?}: expected an RFC 3339 instant such as 2026-11-01T00:00:00Z"))
}

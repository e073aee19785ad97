//! Running bronze in production, against moto and PostgreSQL: objects loaded that no
//! notification announced, dead letters replayed, rejected files reloaded, and a
//! status that says when a human is needed.

use std::time::Duration;

use bronze::backfill::{self, Listing};
use bronze::contract::Contract;
use bronze::keys::Destination;
use bronze::load::Outcome;
use bronze::reconcile::Reconciler;
use bronze::reload::{self, Which};
use bronze::replay::{replay, replay_all, Replayed};
use bronze::runner::{self, Stage};
use bronze::status;
use bronze::store::{self, DatasetSettings};
use bronze::task::LoadTask;
use bronze_tests::{connect, Bench, Result};

/// Loads every task on the load queue, as Lambda would, until it is empty.
async fn load_all(bench: &Bench) -> Result<usize> {
    let loader = bench.loader();
    let mut handled = 0;
    loop {
        let n = runner::poll_once(&bench.sqs, &bench.queues.load, Stage::Load(&loader), 1).await?;
        if n == 0 {
            return Ok(handled);
        }
        handled += n;
    }
}

async fn purge(bench: &Bench, url: &str) -> Result {
    bench.sqs.purge_queue().queue_url(url).send().await?;
    Ok(())
}

/// GIVEN 1,000 objects put in a bucket before bronze was set up on it (no
/// notification, ever), WHEN backfilled, THEN each loads exactly once, and a second
/// backfill queues nothing.
#[tokio::test]
async fn objects_put_before_setup_are_loaded_once_by_backfill() -> Result {
    let bench = Bench::new(30).await?;
    let bucket = format!("{}-before", bench.settings.bucket);
    bench.s3.create_bucket().bucket(&bucket).send().await?;
    let n = 1000;
    let puts = (0..n).map(|i| {
        let s3 = bench.s3.clone();
        let bucket = bucket.clone();
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(format!("acme/orders/2026/{i:04}.csv"))
                .body(format!("id,v\n{i},x\n").into_bytes().into())
                .send()
                .await
        }
    });
    for put in futures_util::future::join_all(puts).await {
        put?;
    }
    bench
        .s3
        .put_object()
        .bucket(&bucket)
        .key("bad-tenant!/orders/x.csv")
        .body(b"id\n1\n".to_vec().into())
        .send()
        .await?;
    let listing = Listing {
        bucket: bucket.clone(),
        ..Listing::default()
    };
    let dispatcher = bench.dispatcher();
    let dry = backfill::backfill(
        &dispatcher,
        &Listing {
            dry_run: true,
            ..listing.clone()
        },
        None,
        |_| {},
    )
    .await?;
    assert_eq!((dry.listed, dry.queued), (n + 1, n + 1));
    assert_eq!(bench.count("SELECT count(*) FROM bronze.objects").await?, 0);
    let first = backfill::backfill(&dispatcher, &listing, None, |_| {}).await?;
    assert_eq!((first.listed, first.known, first.queued), (n + 1, 0, n));
    assert_eq!(
        first.skipped.values().sum::<u64>(),
        1,
        "{:?}",
        first.skipped
    );
    assert_eq!(load_all(&bench).await?, n as usize);
    let loaded = "SELECT count(*) FROM bronze.objects WHERE status = 'loaded'";
    assert_eq!(bench.count(loaded).await?, n as i64);
    let once = "SELECT count(*) FROM bronze.loads WHERE status = 'loaded'";
    assert_eq!(bench.count(once).await?, n as i64, "one load per object");
    assert_eq!(
        bench
            .count("SELECT count(*) FROM tenant_acme.orders")
            .await?,
        n as i64
    );
    let second = backfill::backfill(&dispatcher, &listing, None, |_| {}).await?;
    assert_eq!((second.known, second.queued), (n + 1, 0));
    bench.finish().await
}

#[tokio::test]
async fn dead_letters_are_replayed_and_status_says_when_a_human_is_needed() -> Result {
    let bench = Bench::new(30).await?;
    let key = "acme/orders/a.csv";
    bench.put(key, "id,v\n1,x\n").await?;
    runner::poll_once(
        &bench.sqs,
        &bench.queues.landing,
        Stage::Dispatch(&bench.dispatcher()),
        0,
    )
    .await?;
    // The load task dead-lettered, as after a database outage longer than its retries.
    let received = bench
        .sqs
        .receive_message()
        .queue_url(&bench.queues.load.url)
        .wait_time_seconds(1)
        .send()
        .await?;
    let task = received.messages()[0].clone();
    bench
        .sqs
        .send_message()
        .queue_url(&bench.queues.load_dlq.url)
        .message_body(task.body().unwrap_or_default())
        .send()
        .await?;
    bench
        .sqs
        .delete_message()
        .queue_url(&bench.queues.load.url)
        .receipt_handle(task.receipt_handle().unwrap_or_default())
        .send()
        .await?;
    let stale = Duration::from_secs(3600);
    let depths = status::queue_depths(&bench.sqs, &bench.queues).await?;
    let before = status::status(&bench.pg, Some(depths), stale).await?;
    assert!(
        before
            .problems
            .iter()
            .any(|p| p.contains("load-dlq holds 1")),
        "{:?}",
        before.problems
    );
    // By SQS's move task where the endpoint has one, else one by one (moto).
    match replay_all(&bench.sqs, &bench.queues.load_dlq, &bench.queues.load).await? {
        Replayed::Moved(moved) => assert_eq!(moved, 1),
        Replayed::MoveTask { handle } => assert!(!handle.is_empty()),
    }
    let mut loaded = 0;
    for _ in 0..20 {
        loaded += load_all(&bench).await?;
        if loaded > 0 {
            break;
        }
    }
    assert_eq!(loaded, 1);
    // One by one, a bound is kept.
    assert_eq!(
        replay(
            &bench.sqs,
            &bench.queues.load_dlq,
            &bench.queues.load,
            Some(5)
        )
        .await?,
        0
    );
    let depths = status::queue_depths(&bench.sqs, &bench.queues).await?;
    let after = status::status(&bench.pg, Some(depths), stale).await?;
    assert!(after.problems.is_empty(), "{:?}", after.problems);
    assert_eq!(after.datasets[0].records, 1);
    bench.finish().await
}

#[tokio::test]
async fn a_file_rejected_under_a_contract_loads_after_it_is_relaxed_and_reloaded() -> Result {
    let bench = Bench::new(30).await?;
    let dest = Destination::new("acme", "orders")?;
    let mut client = connect(&bench.url).await?;
    bronze::migrate::migrate(&mut client).await?;
    let mut settings = DatasetSettings {
        contract: Contract::Freeze,
        ..DatasetSettings::default()
    };
    store::set_dataset(&mut client, &dest, &settings).await?;
    let loader = bench.loader();
    let dispatcher = bench.dispatcher();
    for (key, body) in [
        ("acme/orders/1.csv", "id,v\n1,x\n"),
        ("acme/orders/2.csv", "id\n2\n"),
    ] {
        bench.put(key, body).await?;
        runner::poll_once(
            &bench.sqs,
            &bench.queues.landing,
            Stage::Dispatch(&dispatcher),
            0,
        )
        .await?;
        load_all(&bench).await?;
    }
    let rejected = "SELECT count(*) FROM bronze.objects WHERE status = 'rejected'";
    assert_eq!(
        bench.count(rejected).await?,
        1,
        "dropping `v` breaks the freeze"
    );
    settings.contract = Contract::Evolve;
    store::set_dataset(&mut client, &dest, &settings).await?;
    let which = Which::Dataset {
        dest: dest.clone(),
        status: "rejected".into(),
    };
    let ids = reload::reload(&bench.pg, &bench.sqs, &bench.queues.load.url, &which).await?;
    assert_eq!(ids.len(), 1);
    assert_eq!(load_all(&bench).await?, 1);
    let row = bench
        .pg
        .query_one(
            "SELECT status, attempts FROM bronze.objects WHERE id = $1",
            &[&ids[0]],
        )
        .await?;
    assert_eq!((row.get::<_, &str>(0), row.get::<_, i32>(1)), ("loaded", 2));
    let history = "SELECT count(*) FROM bronze.loads WHERE object_id = $1";
    let loads: i64 = bench.pg.query_one(history, &[&ids[0]]).await?.get(0);
    assert_eq!(loads, 2, "the rejected load and the reload");
    // A reload of a loaded object writes nothing new: its records are unchanged.
    let again = reload::reload(
        &bench.pg,
        &bench.sqs,
        &bench.queues.load.url,
        &Which::Object(ids[0]),
    )
    .await?;
    assert_eq!(again, ids);
    let task: LoadTask = LoadTask {
        object_id: ids[0],
        bucket: bench.settings.bucket.clone(),
        key: "acme/orders/2.csv".into(),
        version_id: None,
        etag: None,
    };
    purge(&bench, &bench.queues.load.url).await?;
    let outcome = loader.load(&task).await?;
    let Outcome::Loaded(loaded) = outcome else {
        panic!("expected loaded, got {outcome:?}");
    };
    assert_eq!((loaded.counts.inserted, loaded.counts.unchanged), (0, 1));
    bench.finish().await
}

#[tokio::test]
async fn a_lost_notification_is_loaded_by_one_reconcile_run_that_goes_on_where_it_stopped() -> Result
{
    let bench = Bench::new(30).await?;
    for name in ["a", "b", "c"] {
        bench
            .put(&format!("acme/orders/{name}.csv"), format!("id\n{name}\n"))
            .await?;
    }
    purge(&bench, &bench.queues.landing.url).await?;
    let reconciler = Reconciler {
        dispatcher: bench.dispatcher(),
        bucket: bench.settings.bucket.clone(),
        window: Duration::from_secs(3600),
        max_keys: 2,
    };
    // Two keys per run: the first run takes a and b, the second c, then from the top.
    let first = reconciler.run().await?;
    assert_eq!((first.scanned, first.queued), (2, 2));
    let second = reconciler.run().await?;
    assert_eq!(
        (second.scanned, second.queued, second.next_key),
        (1, 1, None)
    );
    assert_eq!(load_all(&bench).await?, 3);
    let third = reconciler.run().await?;
    assert_eq!((third.known, third.queued), (2, 0));
    let loaded = "SELECT count(*) FROM bronze.objects WHERE status = 'loaded'";
    assert_eq!(bench.count(loaded).await?, 3);
    bench.finish().await
}
